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
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

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
from slicebroker.inventory.domain.claims import check_host, resolve_slices, validate_claims, validate_release
from slicebroker.inventory.domain.facility import export_facility, parse_facility
from slicebroker.inventory.domain.mig import check_mig_layout
from slicebroker.inventory.domain.model import (
    MAX_DEVICES_PER_NODE,
    CapacityRow,
    ClaimFailure,
    ClaimOutcome,
    ClaimResult,
    DeviceClaim,
    LifecycleFailure,
    LifecycleOutcome,
    LoadOutcome,
    Node,
    NodePage,
    NodeSpec,
    NodeState,
    ReleaseOutcome,
    Sku,
    SkuCapacity,
    Subtree,
    WatchEvent,
    WatchEventType,
)
from slicebroker.inventory.domain.store import InventoryStore
from slicebroker.inventory.domain.topology import capacity_rows, check_group_by
from slicebroker.inventory.domain.watch import MAX_WATCH_BATCH, ChangeTail, chunks, events_for

DEVICE_NAME_RE = re.compile(r"^(?:gpu|npu)(?:0|[1-9][0-9]{0,2})$")
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


class InventoryService:
    def __init__(
        self,
        store: InventoryStore,
        catalogue: Catalogue | None = None,
        *,
        watch_block_ms: int = 1000,
        watch_buffer_events: int = 4096,
    ) -> None:
        self._store = store
        self.catalogue = catalogue or load_catalogue()
        self._watch_block_ms = watch_block_ms
        self._watch_batch = 1000
        # One reader of the change log for every Watch stream of this process.
        self._tail = ChangeTail(store, watch_block_ms, self._watch_batch, keep=watch_buffer_events)

    def list_skus(self, names: Sequence[str] = ()) -> tuple[Sku, ...]:
        """The SKUs named (canonical or Kubernetes resource names), all for none."""
        return self.catalogue.select("names", names)

    async def load_facility(self, text: str) -> LoadOutcome:
        facility = parse_facility(text, self.catalogue)
        outcome = await self._store.register(facility.nodes)
        if outcome.refused is not None:
            node = facility.nodes[outcome.refused]
            raise _shape_changed(node, outcome.refused_held, facility.paths[outcome.refused])
        return LoadOutcome(
            nodes_registered=outcome.registered, nodes_unchanged=outcome.unchanged, devices=facility.devices
        )

    async def register_node(
        self,
        node_id: str,
        site: str,
        rack: str,
        sku: str,
        device_count: int,
        *,
        hall: str = "",
        pod: str = "",
        nvlink_domain: str = "",
        leaf: str = "",
        spine: str = "",
        cpu_milli: int = 0,
        memory_mib: int = 0,
        mig_layout: Mapping[str, int] | None = None,
    ) -> Node:
        """Creates or updates the node. Every field is replaced by what this call says: a call
        without `mig_layout` clears a layout the node had (its devices are cut as requests come)."""
        check_name("id", node_id)
        check_host("", cpu_milli, memory_mib)
        check_name("site", site)
        check_name("rack", rack)
        for field, value in (("hall", hall), ("pod", pod), ("leaf", leaf), ("spine", spine)):
            if value:
                check_name(field, value)
        if pod and not hall:
            raise InvalidArgument("pod", "a pod sits in a hall: give hall too")
        if nvlink_domain == node_id:
            nvlink_domain = ""
        if nvlink_domain not in ("", rack):
            raise InvalidArgument(
                "nvlink_domain", f"must be empty (the node) or the rack {rack!r}, not {nvlink_domain!r}"
            )
        known = self.catalogue.require("sku", sku)
        if not 1 <= device_count <= MAX_DEVICES_PER_NODE:
            raise InvalidArgument("device_count", f"must be between 1 and {MAX_DEVICES_PER_NODE}, not {device_count}")
        layout = check_mig_layout("mig_layout", known, device_count, mig_layout or {})
        spec = NodeSpec(
            node_id,
            site,
            rack,
            known.name,
            known.kind,
            device_count,
            hall,
            pod,
            nvlink_domain,
            leaf,
            spine,
            cpu_milli,
            memory_mib,
            layout,
        )
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
        sliced = list(dict.fromkeys(n.node_id for c in claims for n in c.nodes if n.slices))
        if sliced:
            # Sizes depend on the node's SKU: read it (one pipelined round trip, slice claims only).
            # The script re-checks the SKU, so a reshape in between is a conflict, not a mis-size.
            found = await self._store.get_nodes(sliced)
            skus = {i: self.catalogue.require("sku", n.sku) for i, n in found.items() if n is not None}
            claims = resolve_slices(claims, skus)
        outcomes = await self._store.claim(claims)
        return tuple(
            ClaimResult(claim.grant_id, _claim_error(claim, outcome), outcome.generations)
            for claim, outcome in zip(claims, outcomes, strict=True)
        )

    async def release(self, grant_ids: Sequence[str]) -> ReleaseOutcome:
        return await self._store.release(validate_release(grant_ids))

    async def holders(self) -> tuple[str, ...]:
        return tuple(await self._store.holders())

    # -- topology ---------------------------------------------------------------------------------

    async def all_nodes(self, sku: str = "") -> AsyncIterator[Node]:
        after = ""
        while True:
            nodes, after = await self._store.list_nodes(sku, after, MAX_PAGE_SIZE)
            for node in nodes:
                yield node
            if not after:
                return

    async def export_facility(self, name: str = "exported") -> tuple[dict[str, Any], int, int]:
        """The registered nodes as a facility document (see facility.export_facility), with the
        node and device counts."""
        specs = [node.spec async for node in self.all_nodes()]
        return export_facility(name, specs), len(specs), sum(s.device_count for s in specs)

    async def query_capacity(self, subtree: Subtree, sku: str, group_by: str) -> tuple[CapacityRow, ...]:
        for field in ("site", "hall", "pod", "rack", "leaf"):
            if value := getattr(subtree, field):
                check_name(field, value)
        if sku:
            self.catalogue.require("sku", sku)
        check_group_by(group_by)
        # A full scan: an operator's question, not the broker's hot path (which keeps a Watch cache).
        nodes = [node async for node in self.all_nodes(sku)]
        return capacity_rows(nodes, subtree, group_by, self.catalogue)

    async def leaf_neighbours(self, node_id: str) -> tuple[str, tuple[str, ...]]:
        """The node's leaf and every node under it (the node included)."""
        node = await self.get_node(node_id)
        if not node.leaf:
            return "", (node.id,)
        return node.leaf, tuple(await self._store.leaf_members(node.leaf))

    # -- node lifecycle ---------------------------------------------------------------------------

    async def heartbeat(self, node_id: str, health: Sequence[tuple[str, bool]], now: int) -> Node:
        check_name("node_id", node_id)
        args = _health_args("devices", node_id, health)
        outcome = await self._store.lifecycle("heartbeat", node_id, 0, now, args)
        _lifecycle_error(node_id, 0, outcome)
        return await self.get_node(node_id)

    async def set_device_health(
        self, node_id: str, expected_generation: int, health: Sequence[tuple[str, bool]], now: int
    ) -> Node:
        check_name("node_id", node_id)
        _check_generation(expected_generation)
        args = _health_args("devices", node_id, health)
        if not args:
            raise InvalidArgument("devices", "must not be empty")
        outcome = await self._store.lifecycle("health", node_id, expected_generation, now, args)
        _lifecycle_error(node_id, expected_generation, outcome)
        return await self.get_node(node_id)

    async def set_node_state(
        self, node_id: str, expected_generation: int, state: str, now: int
    ) -> tuple[Node, tuple[str, ...]]:
        """Cordons, drains or reactivates the node; the grants holding devices there, for the broker."""
        check_name("node_id", node_id)
        _check_generation(expected_generation)
        if state not in set(NodeState):
            raise InvalidArgument("state", f"must be one of {', '.join(NodeState)}, not {state!r}")
        outcome = await self._store.lifecycle("state", node_id, expected_generation, now, [state])
        _lifecycle_error(node_id, expected_generation, outcome)
        return await self.get_node(node_id), outcome.detail

    async def remove_node(self, node_id: str, expected_generation: int, now: int) -> None:
        check_name("node_id", node_id)
        _check_generation(expected_generation)
        outcome = await self._store.lifecycle("remove", node_id, expected_generation, now)
        _lifecycle_error(node_id, expected_generation, outcome)

    # -- watch ------------------------------------------------------------------------------------

    async def watch(self, from_revision: int) -> AsyncIterator[WatchEvent]:
        """Node changes after `from_revision`, forever, one event at a time (see `watch_batches`)."""
        async for batch in self.watch_batches(from_revision, 1):
            for event in batch:
                yield event

    async def watch_batches(self, from_revision: int, max_batch: int) -> AsyncIterator[list[WatchEvent]]:
        """Node changes after `from_revision`, forever, in groups of at most `max_batch` events that
        were ready together (the sharing is described in watch.py).

        1. When the reader has nothing (0), is ahead of this log (another database) or behind
           its start (trimmed), send a snapshot: BEGIN, every node, END, all at the revision read
           before the nodes, so a change racing the snapshot is sent (again) afterwards.
        2. While behind the shared tail's buffer, read the log directly; a gap (trimmed while
           the reader lagged) starts over at 1.
        3. Then follow the shared tail.
        """
        if from_revision < 0:
            raise InvalidArgument("from_revision", f"must not be negative, not {from_revision}")
        if not 1 <= max_batch <= MAX_WATCH_BATCH:
            raise InvalidArgument("max_batch", f"must be between 1 and {MAX_WATCH_BATCH}, not {max_batch}")
        last = from_revision
        current = await self._store.revision()
        snapshot = last == 0 or last > current or last < await self._store.oldest_revision() - 1
        tail = self._tail
        tail.follow()
        try:
            while True:
                if snapshot:
                    last = await self._store.revision()
                    batch = [WatchEvent(WatchEventType.SNAPSHOT_BEGIN, last)]
                    async for node in self.all_nodes():
                        if len(batch) == max_batch:
                            yield batch
                            batch = []
                        batch.append(WatchEvent(WatchEventType.UPSERT, last, node.id, node))
                    if len(batch) == max_batch:
                        yield batch
                        batch = []
                    yield [*batch, WatchEvent(WatchEventType.SNAPSHOT_END, last)]
                    snapshot = False
                if tail.floor < 0 or last < tail.floor:
                    block = self._watch_block_ms if tail.floor < 0 else 0
                    changes = await self._store.changes_after(last, block, self._watch_batch)
                    if not changes:
                        if tail.floor < 0:
                            continue
                        # Behind the buffer yet the log has nothing after us: it was trimmed.
                        snapshot = True
                        continue
                    if changes[0].revision != last + 1:
                        snapshot = True
                        continue
                    for chunk in chunks(await events_for(self._store, changes), max_batch):
                        yield chunk
                    last = changes[-1].revision
                    continue
                await tail.wait_past(last)
                if last < tail.floor:
                    continue
                for chunk in chunks(tail.after(last), max_batch):
                    yield chunk
                    last = chunk[-1].revision
        finally:
            tail.unfollow()


def _check_generation(expected: int) -> None:
    if expected < 1:
        raise InvalidArgument(
            "expected_generation", f"must be the generation read from the node (1 or more), not {expected}"
        )


def _health_args(field: str, node_id: str, health: Sequence[tuple[str, bool]]) -> list[str]:
    """Device names and "1"/"0" for the lifecycle script; global ids ("<node>/gpu3") are accepted."""
    args: list[str] = []
    seen: set[str] = set()
    for i, (device, healthy) in enumerate(health):
        name = device.removeprefix(node_id + "/")
        if not DEVICE_NAME_RE.match(name):
            raise InvalidArgument(f"{field}[{i}].device", f"{device!r} is not a device of node {node_id!r}")
        if name in seen:
            raise InvalidArgument(f"{field}[{i}].device", f"device {name!r} is listed twice")
        seen.add(name)
        args += (name, "1" if healthy else "0")
    return args


def _lifecycle_error(node_id: str, expected: int, outcome: LifecycleOutcome) -> None:
    meta: dict[str, object] = {"node_id": node_id}
    match outcome.failure:
        case None:
            return None
        case LifecycleFailure.NODE_NOT_FOUND:
            raise NotFound(f"node {node_id!r} is not registered", reason=Reason.NODE_NOT_FOUND, metadata=meta)
        case LifecycleFailure.GENERATION_CONFLICT:
            raise Conflict(
                f"node {node_id!r} is at generation {outcome.generation}, not {expected}: re-read it and try again",
                reason=Reason.GENERATION_CONFLICT,
                metadata=meta | {"expected_generation": expected, "generation": outcome.generation},
            )
        case LifecycleFailure.DEVICE_NOT_FOUND:
            device = outcome.detail[0] if outcome.detail else ""
            raise NotFound(
                f"node {node_id!r} has no device {device!r}",
                reason=Reason.DEVICE_NOT_FOUND,
                metadata=meta | {"device_id": f"{node_id}/{device}"},
            )
        case LifecycleFailure.NODE_NOT_EMPTY:
            raise FailedPrecondition(
                f"node {node_id!r} still has devices held by {len(outcome.detail)} grants "
                f"({', '.join(outcome.detail[:5])}); drain it and release them first",
                reason=Reason.NODE_NOT_EMPTY,
                metadata=meta | {"grants": ",".join(outcome.detail)},
            )


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
        whole = len(node.device_ids)
        i = outcome.device_index
        device = node.device_ids[i] if i < whole else node.slices[i - whole].device_id
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
        case ClaimFailure.SLICE_CONFLICT:
            return Conflict(
                f"device {device!r} cannot take this slice next to what it carries: choose again",
                reason=Reason.DEVICE_TAKEN,
                metadata=meta | {"slice_conflict": True},
            )
        case ClaimFailure.HOST_RESOURCES_TAKEN:
            return Conflict(
                f"node {node.node_id!r} has not {node.cpu_milli} milli-CPU and {node.memory_mib} MiB of host "
                "memory left: choose again",
                reason=Reason.HOST_RESOURCES_TAKEN,
                metadata=meta | {"cpu_milli": node.cpu_milli, "memory_mib": node.memory_mib},
            )


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
