"""Converters between the inventory's protobuf messages and its domain values."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from slicebroker.inventory.domain.model import (
    ClaimResult,
    DeviceClaim,
    Node,
    NodeClaim,
    NodeGeneration,
    Sku,
    SkuCapacity,
)
from slicebroker.runtime import status
from slicebroker.v1 import inventory_pb2 as pb


def sku_to_pb(sku: Sku) -> Any:
    return pb.Sku(name=sku.name, vendor=sku.vendor, model=sku.model, memory_gib=sku.memory_gib, kind=str(sku.kind))


def node_to_pb(node: Node) -> Any:
    return pb.Node(
        id=node.id,
        site=node.site,
        rack=node.rack,
        devices=[
            pb.Device(id=d.id, sku=d.sku, index=d.index, healthy=d.healthy, holder=d.holder) for d in node.devices
        ],
        generation=node.generation,
        schedulable=node.schedulable,
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
