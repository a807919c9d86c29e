"""Checks on claim and release batches, made before the store is touched so that a bad item
refuses the whole call and writes nothing. Field names follow the request
("claims[0].nodes[1].device_ids[2]")."""

from __future__ import annotations

import re
from collections.abc import Sequence

from slicebroker.core.errors import InvalidArgument
from slicebroker.core.ids import check_grant_id, check_name
from slicebroker.inventory.domain.model import MAX_DEVICES_PER_NODE, DeviceClaim

# Bounds on one call: a batch is many grants' claims; a 512-GPU gang spans 64 eight-device nodes.
MAX_CLAIMS_PER_CALL = 10_000
MAX_NODES_PER_CLAIM = 1024
MAX_GRANTS_PER_RELEASE = 10_000

# "<node id>/<kind><index>", the index without leading zeros so that a device has one spelling.
DEVICE_ID_RE = re.compile(r"^(?P<node>[^/]+)/(?:gpu|npu)(?:0|[1-9][0-9]{0,2})$")


def _bounded(field: str, items: Sequence[object], most: int) -> None:
    if not items:
        raise InvalidArgument(field, "must not be empty")
    if len(items) > most:
        raise InvalidArgument(field, f"at most {most} items per call, not {len(items)}")


def validate_claims(claims: Sequence[DeviceClaim]) -> None:
    """Raises InvalidArgument for the first malformed item of the batch."""
    _bounded("claims", claims, MAX_CLAIMS_PER_CALL)
    for c, claim in enumerate(claims):
        check_grant_id(f"claims[{c}].grant_id", claim.grant_id)
        _bounded(f"claims[{c}].nodes", claim.nodes, MAX_NODES_PER_CLAIM)
        seen_nodes: set[str] = set()
        for n, node in enumerate(claim.nodes):
            path = f"claims[{c}].nodes[{n}]"
            check_name(f"{path}.node_id", node.node_id)
            if node.node_id in seen_nodes:
                raise InvalidArgument(f"{path}.node_id", f"node {node.node_id!r} is listed twice in this claim")
            seen_nodes.add(node.node_id)
            if node.expected_generation < 1:
                raise InvalidArgument(
                    f"{path}.expected_generation",
                    f"must be the generation read from the node (1 or more), not {node.expected_generation}",
                )
            _bounded(f"{path}.device_ids", node.device_ids, MAX_DEVICES_PER_NODE)
            seen_devices: set[str] = set()
            for d, device_id in enumerate(node.device_ids):
                field = f"{path}.device_ids[{d}]"
                match = DEVICE_ID_RE.match(device_id)
                if match is None:
                    raise InvalidArgument(
                        field,
                        f"{device_id!r} is not a device id ('<node id>/gpu<n>' or '<node id>/npu<n>')",
                    )
                if match["node"] != node.node_id:
                    raise InvalidArgument(field, f"device {device_id!r} is not on node {node.node_id!r}")
                if device_id in seen_devices:
                    raise InvalidArgument(field, f"device {device_id!r} is listed twice")
                seen_devices.add(device_id)


def validate_release(grant_ids: Sequence[str]) -> tuple[str, ...]:
    """The grant ids to release, each once, in request order."""
    _bounded("grant_ids", grant_ids, MAX_GRANTS_PER_RELEASE)
    for g, grant_id in enumerate(grant_ids):
        check_grant_id(f"grant_ids[{g}]", grant_id)
    return tuple(dict.fromkeys(grant_ids))
