"""Gangs placed by network locality, ordered alternatives, and priority classes, end to end."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from slicebroker.runtime.status import from_rpc_error
from slicebroker.v1 import broker_pb2, inventory_pb2
from tests.api.mesh.conftest import Stubs
from tests.mesh_fixtures import TOPOLOGY_FACILITY

H200 = "H200-SXM-141GB"
LEAF = broker_pb2.TOPOLOGY_CONSTRAINT_SAME_LEAF


def ask(
    count: int, constraint: int = 0, required: bool = True, key: str = "", **extra
) -> broker_pb2.RequestGrantRequest:
    return broker_pb2.RequestGrantRequest(
        project="topo-lab",
        sku=extra.pop("sku", H200),
        count=count,
        lease=Duration(seconds=600),
        idempotency_key=key,
        topology=broker_pb2.Topology(constraint=constraint, required=required),
        **extra,
    )


@pytest.fixture
async def topo(stubs: Stubs) -> Stubs:
    await stubs.inventory.LoadFacility(inventory_pb2.LoadFacilityRequest(yaml=TOPOLOGY_FACILITY))
    return stubs


def leaves(grant: broker_pb2.Grant) -> set[str]:
    return {s.node_id.split("-n")[0] for s in grant.slices}


async def test_a_leaf_gang_takes_the_one_leaf_it_fits_under(topo: Stubs) -> None:
    gang = await topo.broker.RequestGrant(ask(20, LEAF))
    assert len(gang.slices) == 20
    assert leaves(gang) == {"h200-b"}, "16 GPUs under leaf-a are too few; leaf-b has 32"
    assert gang.topology.constraint == LEAF and gang.topology.required

    # 12 free under leaf-b and 16 under leaf-a: 28 in all, but no leaf has 17.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await topo.broker.RequestGrant(ask(17, LEAF))
    err = from_rpc_error(info.value)
    assert err.reason == "INSUFFICIENT_CAPACITY"
    assert "topology" in err.message

    # Preferred rather than required: placed across the leaves.
    spread_out = await topo.broker.RequestGrant(ask(17, LEAF, required=False))
    assert leaves(spread_out) == {"h200-a", "h200-b"}


async def test_the_smallest_subtree_that_fits_wins(topo: Stubs) -> None:
    # 8 fit on one node: a leaf gang of 8 takes a single node, not parts of several.
    gang = await topo.broker.RequestGrant(ask(8, LEAF))
    assert len({s.node_id for s in gang.slices}) == 1
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await topo.broker.RequestGrant(ask(9, broker_pb2.TOPOLOGY_CONSTRAINT_SAME_NODE))
    assert from_rpc_error(info.value).reason == "INSUFFICIENT_CAPACITY"


async def test_spread_puts_each_device_on_its_own_node(topo: Stubs) -> None:
    grant = await topo.broker.RequestGrant(ask(5, broker_pb2.TOPOLOGY_CONSTRAINT_SPREAD))
    assert len({s.node_id for s in grant.slices}) == 5
    with pytest.raises(grpc.aio.AioRpcError):
        await topo.broker.RequestGrant(ask(7, broker_pb2.TOPOLOGY_CONSTRAINT_SPREAD))


async def test_alternatives_are_tried_in_order(topo: Stubs) -> None:
    # topo-lab has no H100 quota: the H200 alternative is granted.
    grant = await topo.broker.RequestGrant(
        ask(2, sku="H100-SXM-80GB", alternatives=[broker_pb2.Alternative(sku=H200, count=1)])
    )
    assert (grant.sku, grant.count, len(grant.slices)) == (H200, 1, 1)
    stored = await topo.broker.GetGrant(broker_pb2.GetGrantRequest(id=grant.id))
    assert (stored.sku, stored.count) == (H200, 1)

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await topo.broker.RequestGrant(
            ask(2, sku="H100-SXM-80GB", alternatives=[broker_pb2.Alternative(sku=H200, count=1000)])
        )
    message = info.value.details()
    assert "2 x H100-SXM-80GB" in message and "1000 x H200-SXM-141GB" in message


async def test_priority_class_is_kept_and_checked(topo: Stubs) -> None:
    grant = await topo.broker.RequestGrant(ask(1, priority_class="preemptible"))
    assert grant.priority_class == "preemptible" and grant.preemptible
    standard = await topo.broker.RequestGrant(ask(1))
    assert standard.priority_class == "standard"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await topo.broker.RequestGrant(ask(1, priority_class="urgent"))
    assert from_rpc_error(info.value).metadata["field"] == "priority_class"


async def test_bad_alternatives_name_the_field(topo: Stubs) -> None:
    for alternatives, field in (
        ([broker_pb2.Alternative(sku="H900", count=1)], "alternatives[0].sku"),
        ([broker_pb2.Alternative(sku=H200, count=0)], "alternatives[0].count"),
        ([broker_pb2.Alternative(sku=H200, count=1), broker_pb2.Alternative(sku=H200, count=1)], "alternatives[1]"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await topo.broker.RequestGrant(ask(2, alternatives=alternatives))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert from_rpc_error(info.value).metadata["field"] == field


async def test_a_key_replayed_with_another_topology_is_refused(topo: Stubs) -> None:
    await topo.broker.RequestGrant(ask(2, LEAF, key="t1"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await topo.broker.RequestGrant(ask(2, broker_pb2.TOPOLOGY_CONSTRAINT_SPREAD, key="t1"))
    assert from_rpc_error(info.value).reason == "IDEMPOTENCY_KEY_REUSED"
    again = await topo.broker.RequestGrant(ask(2, LEAF, key="t1"))
    assert again.topology.constraint == LEAF
