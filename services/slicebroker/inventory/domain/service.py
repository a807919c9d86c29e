"""The inventory's application service: what each RPC means, independent of gRPC and Redis.

Every method checks its input completely before it calls the store, so a refusal writes nothing.

Claim semantics (the broker relies on them):

1. Claims of one call are applied in order, each all-or-nothing and independent of the others.
2. A claim succeeds when every node exists, is schedulable and is at the generation the caller
   read, and every device exists, is healthy and is free or already held by the same grant.
   Each node the claim writes to gets its generation incremented once.
3. A claim whose devices are all already held by its grant is a replay: it succeeds, changes
   nothing, and reports the current generations (the expected ones are not checked then).
4. Several claims of one call may name the same node: a later claim sees the generation the
   earlier ones left, so the caller must expect `read + number of earlier successful claims on
   that node` — or, simpler, put claims on a shared node into one claim or separate calls.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence

from slicebroker.core.errors import (
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    SlicebrokerError,
)
from slicebroker.core.ids import check_name
from slicebroker.core.reasons import Reason
from slicebroker.inventory.domain.catalogue import Catalogue, load_catalogue
from slicebroker.inventory.domain.claims import validate_claims, validate_release
from slicebroker.inventory.domain.facility import parse_facility
from slicebroker.inventory.domain.model import (
    MAX_DEVICES_PER_NODE,
    ClaimFailure,
    ClaimOutcome,
    ClaimResult,
    DeviceClaim,
    LoadOutcome,
    Node,
    NodePage,
    NodeSpec,
    ReleaseOutcome,
    Sku,
    SkuCapacity,
)
from slicebroker.inventory.domain.store import InventoryStore

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


class InventoryService:
    def __init__(self, store: InventoryStore, catalogue: Catalogue | None = None) -> None:
        self._store = store
        self.catalogue = catalogue or load_catalogue()

    def list_skus(self) -> tuple[Sku, ...]:
        return tuple(self.catalogue)

    async def load_facility(self, text: str) -> LoadOutcome:
        facility = parse_facility(text, self.catalogue)
        outcome = await self._store.register(facility.nodes)
        if outcome.refused is not None:
            node = facility.nodes[outcome.refused]
            raise _shape_changed(node, outcome.refused_held, facility.paths[outcome.refused])
        return LoadOutcome(
            nodes_registered=outcome.registered, nodes_unchanged=outcome.unchanged, devices=facility.devices
        )

    async def register_node(self, node_id: str, site: str, rack: str, sku: str, device_count: int) -> Node:
        check_name("id", node_id)
        check_name("site", site)
        check_name("rack", rack)
        known = self.catalogue.require("sku", sku)
        if not 1 <= device_count <= MAX_DEVICES_PER_NODE:
            raise InvalidArgument("device_count", f"must be between 1 and {MAX_DEVICES_PER_NODE}, not {device_count}")
        spec = NodeSpec(node_id, site, rack, known.name, known.kind, device_count)
        outcome = await self._store.register([spec])
        if outcome.refused is not None:
            raise _shape_changed(spec, outcome.refused_held, "")
        return await self.get_node(node_id)

    async def get_node(self, node_id: str) -> Node:
        check_name("id", node_id)
        node = await self._store.get_node(node_id)
        if node is None:
            raise NotFound(
                f"node {node_id!r} is not registered",
                reason=Reason.NODE_NOT_FOUND,
                metadata={"node_id": node_id},
            )
        return node

    async def list_nodes(self, sku: str, page_size: int, page_token: str) -> NodePage:
        if sku:
            self.catalogue.require("sku", sku)
        if page_size < 0:
            raise InvalidArgument("page_size", f"must not be negative, not {page_size}")
        limit = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = decode_page_token(page_token, sku) if page_token else ""
        nodes, next_after = await self._store.list_nodes(sku, after, limit)
        token = encode_page_token(next_after, sku) if next_after else ""
        return NodePage(nodes=tuple(nodes), next_page_token=token)

    async def capacity(self) -> tuple[SkuCapacity, ...]:
        """Per SKU with registered nodes, in catalogue order."""
        counters = await self._store.capacity()
        return tuple(counters[sku.name] for sku in self.catalogue if sku.name in counters and counters[sku.name].nodes)

    async def claim(self, claims: Sequence[DeviceClaim]) -> tuple[ClaimResult, ...]:
        validate_claims(claims)
        outcomes = await self._store.claim(claims)
        return tuple(
            ClaimResult(claim.grant_id, _claim_error(claim, outcome), outcome.generations)
            for claim, outcome in zip(claims, outcomes, strict=True)
        )

    async def release(self, grant_ids: Sequence[str]) -> ReleaseOutcome:
        return await self._store.release(validate_release(grant_ids))

    async def holders(self) -> tuple[str, ...]:
        return tuple(await self._store.holders())


def _shape_changed(node: NodeSpec, held: int, path: str) -> FailedPrecondition:
    where = f" ({path})" if path else ""
    return FailedPrecondition(
        f"node {node.id!r}{where} has {held} held devices; its SKU or device count can change only "
        "once they are released",
        reason=Reason.NODE_SHAPE_CHANGED,
        metadata={"node_id": node.id, "held": held},
    )


def _claim_error(claim: DeviceClaim, outcome: ClaimOutcome) -> SlicebrokerError | None:
    """The error a refused claim reports: the reason, and the node / device / generations in metadata."""
    if outcome.failure is None:
        return None
    node = claim.nodes[outcome.node_index]
    meta: dict[str, object] = {"node_id": node.node_id}
    device = ""
    if outcome.device_index >= 0:
        device = node.device_ids[outcome.device_index]
        meta["device_id"] = device
    match outcome.failure:
        case ClaimFailure.NODE_NOT_FOUND:
            return NotFound(f"node {node.node_id!r} is not registered", reason=Reason.NODE_NOT_FOUND, metadata=meta)
        case ClaimFailure.NODE_NOT_SCHEDULABLE:
            return FailedPrecondition(
                f"node {node.node_id!r} is not schedulable", reason=Reason.NODE_NOT_SCHEDULABLE, metadata=meta
            )
        case ClaimFailure.GENERATION_CONFLICT:
            current = next((g.generation for g in outcome.generations if g.node_id == node.node_id), 0)
            meta |= {"expected_generation": node.expected_generation, "generation": current}
            return Conflict(
                f"node {node.node_id!r} is at generation {current}, not {node.expected_generation}: "
                "re-read it and choose again",
                reason=Reason.GENERATION_CONFLICT,
                metadata=meta,
            )
        case ClaimFailure.DEVICE_NOT_FOUND:
            return NotFound(
                f"node {node.node_id!r} has no device {device!r}",
                reason=Reason.DEVICE_NOT_FOUND,
                metadata=meta,
            )
        case ClaimFailure.DEVICE_UNHEALTHY:
            return FailedPrecondition(f"device {device!r} is unhealthy", reason=Reason.DEVICE_UNHEALTHY, metadata=meta)
        case ClaimFailure.DEVICE_TAKEN:
            return Conflict(f"device {device!r} is held by another grant", reason=Reason.DEVICE_TAKEN, metadata=meta)


def encode_page_token(after: str, sku: str) -> str:
    raw = json.dumps({"after": after, "sku": sku}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, sku: str) -> str:
    """The node id the page starts after. The token carries the filter it was issued for, so a
    token cannot silently be reused with another one."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        after, token_sku = raw["after"], raw["sku"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise InvalidArgument("page_token", "is not a page token this service issued") from None
    if not isinstance(after, str) or not isinstance(token_sku, str) or not after:
        raise InvalidArgument("page_token", "is not a page token this service issued")
    if token_sku != sku:
        raise InvalidArgument("page_token", f"was issued for sku filter {token_sku!r}, not {sku!r}")
    return after
