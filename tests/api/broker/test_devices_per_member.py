"""Gangs whose members each want several devices, through the real broker: `devices_per_member`
keeps each member's devices on one node under every constraint, is echoed on the grant (stored
and read back), is refused when it does not divide the count, and shapes the refusal and the quote
when there is room in devices but not in whole members."""

from __future__ import annotations

from collections import Counter

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from slicebroker.core.errors import InvalidArgument, ResourceExhausted
from slicebroker.runtime.status import from_rpc_error
from slicebroker.v1 import broker_pb2 as T
from slicebroker.v1 import inventory_pb2
from tests.api.mesh.conftest import Stubs

H200 = "H200-SXM-141GB"
PROJECT = "topo-lab"  # H200 quota, no H100
# leaf-x: three nodes of 3 devices (9 free, 6 in pairs); leaf-y: 4 + 2 + 3 (9 free, 8 in pairs).
FACILITY = """
sites:
  - name: members
    halls:
      - name: hall-m
        pods:
          - name: pod-x
            leaf: leaf-x
            racks:
              - {name: rx, node_groups: [{prefix: x3-n, count: 3, sku: H200-SXM-141GB, devices: 3}]}
          - name: pod-y
            leaf: leaf-y
            racks:
              - name: ry
                node_groups:
                  - {prefix: y4-n, count: 1, sku: H200-SXM-141GB, devices: 4}
                  - {prefix: y2-n, count: 1, sku: H200-SXM-141GB, devices: 2}
                  - {prefix: y3-n, count: 1, sku: H200-SXM-141GB, devices: 3}
"""


def ask(count: int, per_member: int, constraint: int = T.TOPOLOGY_CONSTRAINT_SAME_LEAF) -> T.RequestGrantRequest:
    return T.RequestGrantRequest(
        project=PROJECT,
        sku=H200,
        count=count,
        lease=Duration(seconds=600),
        topology=T.Topology(constraint=constraint, required=True, devices_per_member=per_member),
    )


def per_node(grant: T.Grant) -> Counter[str]:
    return Counter(s.node_id for s in grant.slices)


@pytest.fixture
async def facility(stubs: Stubs) -> Stubs:
    await stubs.inventory.LoadFacility(inventory_pb2.LoadFacilityRequest(yaml=FACILITY))
    return stubs


async def test_a_gang_of_pairs_goes_where_every_pair_fits_on_one_node(facility: Stubs) -> None:
    stubs = facility
    # leaf-x has 9 free devices, enough for 8 one by one, but only three pairs: leaf-y it is.
    grant = await stubs.broker.RequestGrant(ask(8, 2))
    assert grant.state == T.GRANT_STATE_ACTIVE and len(grant.slices) == 8
    counts = per_node(grant)
    assert all(n % 2 == 0 for n in counts.values()), counts
    assert {node.split("-")[0] for node in counts} == {"y4", "y2", "y3"}
    assert grant.topology.devices_per_member == 2
    stored = await stubs.broker.GetGrant(T.GetGrantRequest(id=grant.id))
    assert stored.topology.devices_per_member == 2 and per_node(stored) == counts

    # Now only leaf-x is left: 9 free devices there, 6 of them in pairs.
    quote = await stubs.broker.Quote(ask(8, 2))
    assert not quote.available_now
    assert (await stubs.broker.Quote(ask(6, 2))).available_now
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.broker.RequestGrant(ask(8, 2))
    err = from_rpc_error(info.value)
    assert isinstance(err, ResourceExhausted)
    assert "in members of 2 on one node each" in err.message and "not within the topology" in err.message
    # One by one, the same 8 devices are there.
    single = await stubs.broker.RequestGrant(ask(8, 0))
    assert single.state == T.GRANT_STATE_ACTIVE and sorted(per_node(single).values()) == [2, 3, 3]


async def test_spread_puts_one_member_on_each_node(facility: Stubs) -> None:
    grant = await facility.broker.RequestGrant(ask(6, 2, T.TOPOLOGY_CONSTRAINT_SPREAD))
    assert grant.state == T.GRANT_STATE_ACTIVE
    assert sorted(per_node(grant).values()) == [2, 2, 2]


async def test_anywhere_spans_nodes_in_whole_members(facility: Stubs) -> None:
    # No node has 9; in threes, only the 3-device nodes (and the 4-device one, once) hold a member.
    grant = await facility.broker.RequestGrant(ask(9, 3, T.TOPOLOGY_CONSTRAINT_UNSPECIFIED))
    assert grant.state == T.GRANT_STATE_ACTIVE
    assert all(n % 3 == 0 for n in per_node(grant).values()), per_node(grant)


@pytest.mark.parametrize(
    ("count", "per_member", "words"),
    [(8, 3, "do not divide"), (2, 4, "more than the 2"), (4, -2, "must be 0")],
)
async def test_members_that_do_not_divide_the_count_are_refused_and_nothing_is_written(
    facility: Stubs, count: int, per_member: int, words: str
) -> None:
    for call in (facility.broker.RequestGrant, facility.broker.Quote):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(ask(count, per_member))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        err = from_rpc_error(info.value)
        assert isinstance(err, InvalidArgument) and err.field == "topology.devices_per_member"
        assert words in err.message
    listed = await facility.broker.ListGrants(T.ListGrantsRequest(project=PROJECT))
    assert list(listed.grants) == []
