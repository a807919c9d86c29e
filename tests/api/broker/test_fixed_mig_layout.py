"""A node registered with a fixed MIG layout, through the real services: the broker reads the layout
from inventory, places only the layout's profiles there, never more than its counts and, for a
uniform layout, as many on each device as the device really holds; whole devices and shares never
go there; MIG requests prefer it to a free-form node; and a release gives the instance back."""

from __future__ import annotations

import asyncio
from collections import Counter

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from slicebroker.core.errors import ResourceExhausted
from slicebroker.runtime.status import from_rpc_error
from slicebroker.v1 import broker_pb2 as T
from slicebroker.v1 import inventory_pb2
from tests.api.mesh.conftest import Stubs

H200 = "H200-SXM-141GB"  # the small facility has none: these tests' nodes are the only ones
PROJECT = "topo-lab"
# Each of the two devices holds one 3g.71gb, one 2g.35gb and two 1g.18gb (7 of 7 compute, 8 of 8 memory).
BALANCED = {"3g.71gb": 2, "2g.35gb": 2, "1g.18gb": 4}


def ask(count: int, kind: str = "", profile: str = "", milli: int = 0, **extra: object) -> T.RequestGrantRequest:
    return T.RequestGrantRequest(
        project=PROJECT,
        sku=H200,
        count=count,
        lease=Duration(seconds=600),
        shape=T.SliceShape(kind=kind, profile=profile, compute_milli=milli) if kind else None,
        **extra,  # type: ignore[arg-type]
    )


async def register(stubs: Stubs, node_id: str, layout: dict[str, int], devices: int = 2) -> None:
    await stubs.inventory.RegisterNode(
        inventory_pb2.RegisterNodeRequest(
            id=node_id, site="test-site", rack="mig", sku=H200, device_count=devices, mig_layout=layout
        )
    )


async def until_quoted(stubs: Stubs, request: T.RequestGrantRequest) -> None:
    """Waits until the broker's snapshot (fed by inventory's watch) has room for `request`."""
    for _ in range(200):
        if (await stubs.broker.Quote(request)).available_now:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the broker never saw room for the request")


async def refused(stubs: Stubs, request: T.RequestGrantRequest) -> ResourceExhausted:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.broker.RequestGrant(request)
    err = from_rpc_error(info.value)
    assert isinstance(err, ResourceExhausted), err
    return err


def devices(grant: T.Grant) -> Counter[str]:
    return Counter(s.device_id for s in grant.slices)


@pytest.fixture
async def fixed_node(stubs: Stubs) -> Stubs:
    await register(stubs, "h200-mig-n01", BALANCED)
    await until_quoted(stubs, ask(1, "mig", "1g.18gb"))
    return stubs


async def test_inventory_keeps_the_layout_and_the_broker_honours_it(fixed_node: Stubs) -> None:
    stubs = fixed_node
    node = await stubs.inventory.GetNode(inventory_pb2.GetNodeRequest(id="h200-mig-n01"))
    assert dict(node.mig_layout) == BALANCED

    # Neither whole devices nor shares nor profiles outside the layout go there, though it is
    # the only node of its SKU and every device is untouched.
    err = await refused(stubs, ask(1))
    assert "0 whole devices free" in err.message
    await refused(stubs, ask(1, "share", milli=250))
    await refused(stubs, ask(1, "mig", "4g.71gb"))
    assert not (await stubs.broker.Quote(ask(1))).available_now

    # Two 3g.71gb: one on each device, as the instances are (counters alone would allow both on one).
    pair = await stubs.broker.RequestGrant(ask(2, "mig", "3g.71gb"))
    assert pair.state == T.GRANT_STATE_ACTIVE
    assert {s.node_id for s in pair.slices} == {"h200-mig-n01"}
    assert sorted(devices(pair).values()) == [1, 1]
    await refused(stubs, ask(1, "mig", "3g.71gb"))

    # Four 1g.18gb in members of two: two on each device, and no fifth.
    ones = await stubs.broker.RequestGrant(ask(4, "mig", "1g.18gb", topology=T.Topology(devices_per_member=2)))
    assert sorted(devices(ones).values()) == [2, 2]
    await refused(stubs, ask(1, "mig", "1g.18gb"))

    # A release gives the instance back for reuse.
    await stubs.broker.ReleaseGrant(T.ReleaseGrantRequest(id=pair.id))
    await until_quoted(stubs, ask(2, "mig", "3g.71gb"))
    again = await stubs.broker.RequestGrant(ask(2, "mig", "3g.71gb"))
    assert devices(again) == devices(pair)


async def test_mig_requests_prefer_the_fixed_node_and_the_rest_goes_free_form(fixed_node: Stubs) -> None:
    stubs = fixed_node
    await register(stubs, "h200-free-n01", {}, devices=4)
    await until_quoted(stubs, ask(2))
    # A MIG request of a layout profile goes to the fixed node, even with a free-form node there.
    one = await stubs.broker.RequestGrant(ask(1, "mig", "2g.35gb"))
    assert one.slices[0].node_id == "h200-mig-n01"
    # Whole devices, shares and other profiles go to the free-form node.
    whole = await stubs.broker.RequestGrant(ask(1))
    assert whole.slices[0].node_id == "h200-free-n01"
    share = await stubs.broker.RequestGrant(ask(1, "share", milli=500))
    assert share.slices[0].node_id == "h200-free-n01"
    other = await stubs.broker.RequestGrant(ask(1, "mig", "7g.141gb"))
    assert other.slices[0].node_id == "h200-free-n01"
    # Past the layout's count, the free-form node takes the rest (on its one untouched device).
    more = await stubs.broker.RequestGrant(ask(3, "mig", "2g.35gb"))
    assert Counter(s.node_id for s in more.slices) == {"h200-mig-n01": 1, "h200-free-n01": 2}
