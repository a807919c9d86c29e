"""Checks on claim and release batches, made before the store is touched so that a bad item
refuses the whole call and writes nothing. Field names follow the request
("claims[0].nodes[1].device_ids[2]")."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

from slicebroker.core.errors import InvalidArgument
from slicebroker.core.ids import check_grant_id, check_name
from slicebroker.inventory.domain.model import (
    MAX_CPU_MILLI,
    MAX_DEVICES_PER_NODE,
    MAX_MEMORY_MIB,
    SHARE_MILLI,
    DeviceClaim,
    Sku,
    SliceKind,
)

# Bounds on one call: a batch is many grants' claims; a 512-GPU gang spans 64 eight-device nodes.
MAX_CLAIMS_PER_CALL = 10_000
MAX_NODES_PER_CLAIM = 1024
MAX_GRANTS_PER_RELEASE = 10_000
# Seven 1g MIG instances per GPU, eight devices: 64 leaves room for NPU core partitions too.
MAX_SLICES_PER_NODE = 128
SLICE_KINDS = (SliceKind.MIG, SliceKind.SHARE, SliceKind.NPU_PARTITION)

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
            check_host(f"{path}.", node.cpu_milli, node.memory_mib)
            if not node.device_ids and not node.slices:
                raise InvalidArgument(f"{path}.device_ids", "must not be empty (or give slices)")
            if len(node.device_ids) > MAX_DEVICES_PER_NODE:
                raise InvalidArgument(
                    f"{path}.device_ids", f"at most {MAX_DEVICES_PER_NODE} items per call, not {len(node.device_ids)}"
                )
            if len(node.slices) > MAX_SLICES_PER_NODE:
                raise InvalidArgument(
                    f"{path}.slices", f"at most {MAX_SLICES_PER_NODE} items per call, not {len(node.slices)}"
                )
            seen_devices: set[str] = set()
            for d, device_id in enumerate(node.device_ids):
                field = f"{path}.device_ids[{d}]"
                _check_device(field, device_id, node.node_id)
                if device_id in seen_devices:
                    raise InvalidArgument(field, f"device {device_id!r} is listed twice")
                seen_devices.add(device_id)
            for s, piece in enumerate(node.slices):
                field = f"{path}.slices[{s}]"
                _check_device(f"{field}.device_id", piece.device_id, node.node_id)
                if piece.device_id in seen_devices:
                    raise InvalidArgument(
                        f"{field}.device_id", f"device {piece.device_id!r} is claimed whole in this claim already"
                    )
                if piece.kind not in SLICE_KINDS:
                    raise InvalidArgument(
                        f"{field}.kind", f"must be one of {', '.join(SLICE_KINDS)}, not {piece.kind!r}"
                    )
                if piece.kind == SliceKind.SHARE:
                    for name, value in (("compute_milli", piece.compute), ("memory_milli", piece.memory)):
                        if not 1 <= value <= SHARE_MILLI:
                            raise InvalidArgument(
                                f"{field}.{name}", f"must be between 1 and {SHARE_MILLI}, not {value}"
                            )
                    if piece.profile:
                        raise InvalidArgument(f"{field}.profile", "a share has no profile")
                elif not piece.profile:
                    raise InvalidArgument(f"{field}.profile", f"a {piece.kind} slice names its partition profile")


def check_host(prefix: str, cpu_milli: int, memory_mib: int) -> None:
    """Host CPU (milli-cores) and memory (MiB): a node's capacity or what a claim takes of it."""
    for name, value, most in (("cpu_milli", cpu_milli, MAX_CPU_MILLI), ("memory_mib", memory_mib, MAX_MEMORY_MIB)):
        if not 0 <= value <= most:
            raise InvalidArgument(f"{prefix}{name}", f"must be between 0 and {most}, not {value}")


def _check_device(field: str, device_id: str, node_id: str) -> None:
    match = DEVICE_ID_RE.match(device_id)
    if match is None:
        raise InvalidArgument(field, f"{device_id!r} is not a device id ('<node id>/gpu<n>' or '<node id>/npu<n>')")
    if match["node"] != node_id:
        raise InvalidArgument(field, f"device {device_id!r} is not on node {node_id!r}")


def resolve_slices(claims: Sequence[DeviceClaim], skus: Mapping[str, Sku]) -> list[DeviceClaim]:
    """The claims with every slice sized from the catalogue: partition counters of its profile or
    milli-units of a share, and the device's capacity in the same units. `skus` holds the SKU of
    each existing node the slices are on; slices on a missing node are left for the store to
    refuse (NODE_NOT_FOUND). A profile or slice kind the node's SKU does not offer is bad input."""
    out: list[DeviceClaim] = []
    for c, claim in enumerate(claims):
        nodes = []
        for n, node in enumerate(claim.nodes):
            sku = skus.get(node.node_id)
            if not node.slices or sku is None:
                nodes.append(node)
                continue
            sized = []
            for s, piece in enumerate(node.slices):
                field = f"claims[{c}].nodes[{n}].slices[{s}]"
                kind = SliceKind(piece.kind)
                if sku.isolation(kind) is None:
                    offered = ", ".join(k for k, _ in sku.slice_kinds)
                    raise InvalidArgument(f"{field}.kind", f"{sku.name} is not granted as {kind} (offers: {offered})")
                if kind == SliceKind.SHARE:
                    sized.append(replace(piece, capacity_compute=SHARE_MILLI, capacity_memory=SHARE_MILLI))
                    continue
                partition = sku.partition(piece.profile)
                if partition is None or partition.kind != kind or sku.geometry is None:
                    known = ", ".join(p.profile for p in sku.partitions if p.kind == kind)
                    raise InvalidArgument(
                        f"{field}.profile", f"{sku.name} has no {kind} profile {piece.profile!r} (known: {known})"
                    )
                sized.append(
                    replace(
                        piece,
                        compute=partition.compute,
                        memory=partition.memory,
                        capacity_compute=sku.geometry.compute_slices,
                        capacity_memory=sku.geometry.memory_slices,
                    )
                )
            nodes.append(replace(node, slices=tuple(sized), sku=sku.name))
        out.append(replace(claim, nodes=tuple(nodes)))
    return out


def validate_release(grant_ids: Sequence[str]) -> tuple[str, ...]:
    """The grant ids to release, each once, in request order."""
    _bounded("grant_ids", grant_ids, MAX_GRANTS_PER_RELEASE)
    for g, grant_id in enumerate(grant_ids):
        check_grant_id(f"grant_ids[{g}]", grant_id)
    return tuple(dict.fromkeys(grant_ids))
