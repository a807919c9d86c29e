"""Slices of devices through the broker: MIG partitions and shares, packed tightly, never
over-committed, and kept apart from whole-device grants."""

from __future__ import annotations

import asyncio
from collections import Counter

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from slicebroker.runtime.status import from_rpc_error
from slicebroker.v1 import broker_pb2, inventory_pb2, quota_pb2
from tests.api.mesh.conftest import Stubs

H100 = "H100-SXM-80GB"


def ask(count: int, kind: str, profile: str = "", milli: int = 0, project: str = "uni-a-llm", **extra):
    return broker_pb2.RequestGrantRequest(
        project=project,
        sku=H100,
        count=count,
        lease=Duration(seconds=600),
        shape=broker_pb2.SliceShape(kind=kind, profile=profile, compute_milli=milli),
        **extra,
    )


async def test_seven_smallest_mig_slices_fill_one_gpu(stubs: Stubs) -> None:
    grant = await stubs.broker.RequestGrant(ask(7, "mig", "1g.10gb"))
    assert grant.shape.kind == "mig" and grant.shape.profile == "1g.10gb"
    assert {(s.kind, s.profile) for s in grant.slices} == {("mig", "1g.10gb")}
    assert len({s.device_id for s in grant.slices}) == 1
    # The next one opens a second device.
    more = await stubs.broker.RequestGrant(ask(1, "mig", "1g.10gb"))
    assert more.slices[0].device_id != grant.slices[0].device_id
    # Quota counts each slice by its real size (1/7 of an H100 in compute).
    project = await stubs.quota.GetProject(quota_pb2.GetProjectRequest(id="uni-a-llm"))
    assert project.devices_in_use.get(H100, 0) <= 2


async def test_npu_partitions_are_granted_and_counted_by_their_size(stubs: Stubs) -> None:
    request = ask(4, "npu_partition", "2core.12gb")
    request.sku = "RNGD"
    grant = await stubs.broker.RequestGrant(request)
    assert {(s.kind, s.profile) for s in grant.slices} == {("npu_partition", "2core.12gb")}
    assert len({s.device_id for s in grant.slices}) == 1, "four quarter partitions fill one RNGD"
    # Quota charges each partition a quarter of a device (2 of its 8 cores), not a whole one.
    project = await stubs.quota.GetProject(quota_pb2.GetProjectRequest(id="uni-a-llm"))
    assert project.devices_in_use["RNGD"] == 1
    await stubs.broker.ReleaseGrant(broker_pb2.ReleaseGrantRequest(id=grant.id))
    project = await stubs.quota.GetProject(quota_pb2.GetProjectRequest(id="uni-a-llm"))
    assert project.devices_in_use.get("RNGD", 0) == 0


async def test_partitions_that_cannot_coexist_go_to_another_device(stubs: Stubs) -> None:
    # (Two 3g.40gb may go to two devices: the packing engine keeps room for a third rather than
    # strand a compute slice without memory; the unit table tests cover the ninth memory slice.)
    a = await stubs.broker.RequestGrant(ask(1, "mig", "3g.40gb"))
    b = await stubs.broker.RequestGrant(ask(1, "mig", "4g.40gb"))
    assert a.slices[0].device_id == b.slices[0].device_id, "3g+4g fill one device (7/7 compute, 8/8 memory)"
    c = await stubs.broker.RequestGrant(ask(1, "mig", "1g.10gb"))
    assert c.slices[0].device_id != a.slices[0].device_id, "its slices would be the 8th and 9th of 7 and 8"


async def test_shares_pack_before_opening_a_device_and_whole_grants_avoid_them(stubs: Stubs) -> None:
    halves = [await stubs.broker.RequestGrant(ask(1, "share", milli=500)) for _ in range(3)]
    devices = Counter(g.slices[0].device_id for g in halves)
    assert sorted(devices.values()) == [1, 2]
    assert halves[0].slices[0].profile == "0.5"
    # A whole-device gang never lands on a shared device.
    whole = await stubs.broker.RequestGrant(
        broker_pb2.RequestGrantRequest(project="uni-a-vision", sku=H100, count=16, lease=Duration(seconds=600))
    )
    assert not set(devices) & {s.device_id for s in whole.slices}
    # Releasing the shares gives the devices back whole.
    for g in halves:
        await stubs.broker.ReleaseGrant(broker_pb2.ReleaseGrantRequest(id=g.id))
    nodes = await stubs.inventory.ListNodes(inventory_pb2.ListNodesRequest(page_size=1000))
    assert not [d.id for n in nodes.nodes for d in n.devices if d.slices]


async def test_concurrent_slices_never_over_commit_a_device(stubs: Stubs) -> None:
    async def one(i: int):
        try:
            return await stubs.broker.RequestGrant(
                ask(1, "mig", "2g.20gb", project=("uni-a-llm", "uni-a-vision")[i % 2])
            )
        except grpc.aio.AioRpcError as err:
            return err

    results = await asyncio.gather(*(one(i) for i in range(60)))
    grants = [r for r in results if isinstance(r, broker_pb2.Grant)]
    per_device = Counter(g.slices[0].device_id for g in grants)
    assert grants and max(per_device.values()) <= 3, "2g.20gb: at most 3 on a device (7 compute slices)"
    nodes = await stubs.inventory.ListNodes(inventory_pb2.ListNodesRequest(page_size=1000))
    for node in nodes.nodes:
        for device in node.devices:
            assert sum(s.compute for s in device.slices) <= 7
            assert sum(s.memory for s in device.slices) <= 8


@pytest.mark.parametrize(
    ("shape", "field"),
    [
        (broker_pb2.SliceShape(kind="quarter"), "shape.kind"),
        (broker_pb2.SliceShape(kind="mig", profile="9g.90gb"), "shape.profile"),
        (broker_pb2.SliceShape(kind="share", compute_milli=1000), "shape.compute_milli"),
        (broker_pb2.SliceShape(kind="share", compute_milli=0), "shape.compute_milli"),
    ],
)
async def test_bad_shapes_name_the_field(stubs: Stubs, shape: broker_pb2.SliceShape, field: str) -> None:
    request = broker_pb2.RequestGrantRequest(
        project="uni-a-llm", sku=H100, count=1, lease=Duration(seconds=60), shape=shape
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.broker.RequestGrant(request)
    assert from_rpc_error(info.value).metadata["field"] == field
