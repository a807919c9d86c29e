"""Converters between the inventory's protobuf messages and its domain values."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from slicebroker.inventory.domain.model import (
    CapacityRow,
    ClaimResult,
    DeviceClaim,
    Node,
    NodeClaim,
    NodeGeneration,
    Sku,
    SkuCapacity,
    SliceClaim,
    Subtree,
    UnitVersion,
    WatchEvent,
    WatchEventType,
)
from slicebroker.runtime import status
from slicebroker.v1 import inventory_pb2 as pb


def sku_to_pb(sku: Sku, unit_version: str) -> Any:
    return pb.Sku(
        name=sku.name,
        vendor=sku.vendor,
        model=sku.model,
        memory_gib=sku.memory_gib,
        kind=str(sku.kind),
        bf16_dense_tflops=sku.bf16_dense_tflops,
        power_w=sku.power_w,
        normalised_units=sku.normalised_units,
        unit_version=unit_version,
        slice_kinds=[pb.SliceKind(kind=str(k), isolation=str(i)) for k, i in sku.slice_kinds],
        geometry=pb.PartitionGeometry(
            compute_slices=sku.geometry.compute_slices, memory_slices=sku.geometry.memory_slices
        )
        if sku.geometry
        else None,
        partitions=[
            pb.PartitionProfile(
                profile=p.profile,
                kind=str(p.kind),
                compute=p.compute,
                memory=p.memory,
                memory_gib=p.memory_gib,
                max=p.max,
                legacy=p.legacy,
            )
            for p in sku.partitions
        ],
        resource_names=[
            pb.ResourceName(
                name=r.name,
                slice=str(r.slice),
                profile=r.profile,
                provider=r.provider,
                since=r.since,
                until=r.until,
                note=r.note,
            )
            for r in sku.resource_names
        ],
    )


def skus_to_pb(skus: Iterable[Sku], unit: UnitVersion) -> Any:
    return pb.ListSkusResponse(
        skus=[sku_to_pb(sku, unit.version) for sku in skus],
        unit=pb.NormalisedUnit(version=unit.version, unit=unit.unit, basis=unit.basis),
    )


def node_to_pb(node: Node) -> Any:
    return pb.Node(
        id=node.id,
        site=node.site,
        rack=node.rack,
        devices=[
            pb.Device(
                id=d.id,
                sku=d.sku,
                index=d.index,
                healthy=d.healthy,
                holder=d.holder,
                slices=[
                    pb.SliceAllocation(
                        grant_id=s.grant_id, kind=str(s.kind), profile=s.profile, compute=s.compute, memory=s.memory
                    )
                    for s in d.slices
                ],
            )
            for d in node.devices
        ],
        generation=node.generation,
        schedulable=node.schedulable,
        hall=node.hall,
        pod=node.pod,
        nvlink_domain=node.nvlink_domain or node.id,
        leaf=node.leaf,
        spine=node.spine,
        state=str(node.state),
        last_heartbeat_ms=node.last_heartbeat_ms,
        sku=node.sku,
        cpu_milli=node.cpu_milli,
        memory_mib=node.memory_mib,
        cpu_milli_used=node.cpu_milli_used,
        memory_mib_used=node.memory_mib_used,
        mig_layout=dict(node.mig_layout),
    )


def capacity_row_to_pb(row: CapacityRow) -> Any:
    return pb.CapacityRow(
        group=row.group,
        sku=row.sku,
        nodes=row.nodes,
        devices=row.devices,
        free=row.free,
        held=row.held,
        sliced=row.sliced,
        unhealthy=row.unhealthy,
        cordoned=row.cordoned,
        free_units=row.free_units,
    )


def subtree_from_pb(request: Any) -> Subtree:
    return Subtree(site=request.site, hall=request.hall, pod=request.pod, rack=request.rack, leaf=request.leaf)


def health_from_pb(devices: Iterable[Any]) -> list[tuple[str, bool]]:
    return [(d.device, d.healthy) for d in devices]


_EVENT_TYPES = {
    WatchEventType.UPSERT: pb.WATCH_EVENT_TYPE_UPSERT,
    WatchEventType.DELETED: pb.WATCH_EVENT_TYPE_DELETED,
    WatchEventType.SNAPSHOT_BEGIN: pb.WATCH_EVENT_TYPE_SNAPSHOT_BEGIN,
    WatchEventType.SNAPSHOT_END: pb.WATCH_EVENT_TYPE_SNAPSHOT_END,
}


def watch_event_to_pb(event: WatchEvent) -> Any:
    return pb.WatchEvent(
        type=_EVENT_TYPES[event.type],
        revision=event.revision,
        node=node_to_pb(event.node) if event.node else None,
        node_id=event.node_id,
    )


def capacity_to_pb(c: SkuCapacity) -> Any:
    return pb.SkuCapacity(sku=c.sku, nodes=c.nodes, devices=c.devices, free=c.free, unhealthy=c.unhealthy)


def claims_from_pb(request: Any) -> list[DeviceClaim]:
    return [
        DeviceClaim(
            grant_id=claim.grant_id,
            nodes=tuple(
                NodeClaim(
                    node_id=node.node_id,
                    expected_generation=node.expected_generation,
                    device_ids=tuple(node.device_ids),
                    slices=tuple(
                        SliceClaim(
                            device_id=s.device_id,
                            kind=s.kind,
                            profile=s.profile,
                            compute=s.compute_milli,
                            memory=s.memory_milli,
                        )
                        for s in node.slices
                    ),
                    cpu_milli=node.cpu_milli,
                    memory_mib=node.memory_mib,
                )
                for node in claim.nodes
            ),
        )
        for claim in request.claims
    ]


def generations_to_pb(generations: Iterable[NodeGeneration]) -> list[Any]:
    return [pb.NodeGeneration(node_id=g.node_id, generation=g.generation) for g in generations]


def claim_result_to_pb(result: ClaimResult) -> Any:
    return pb.ClaimResult(
        grant_id=result.grant_id,
        status=status.OK if result.error is None else status.to_status(result.error),
        generations=generations_to_pb(result.generations),
    )
