"""The inventory's facility RPCs through the real gRPC server: the catalogue with its geometry and
Kubernetes names, topology queries, export round-trips, node lifecycle and a streaming Watch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import yaml

from slicebroker.core.errors import InvalidArgument
from slicebroker.core.facility_generator import FacilityShape, generate_yaml
from slicebroker.core.reasons import Reason
from slicebroker.inventory.main import build
from slicebroker.inventory.settings import InventorySettings
from slicebroker.runtime.status import from_rpc_error
from slicebroker.v1 import inventory_pb2 as pb
from slicebroker.v1 import inventory_pb2_grpc as pb_grpc

H100 = "H100-SXM-80GB"


@pytest.fixture
async def stub(start_service: Any, redis_url: str) -> AsyncIterator[Any]:
    settings = InventorySettings(redis_url=redis_url, listen="127.0.0.1:0", watch_block_ms=20)
    running = await start_service(build, settings)
    async with grpc.aio.insecure_channel(running.address) as ch:
        yield pb_grpc.InventoryServiceStub(ch)


async def refused(call: Any, code: grpc.StatusCode) -> Any:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    return from_rpc_error(caught.value)


async def test_list_skus_exposes_geometry_units_and_names(stub: Any) -> None:
    reply = await stub.ListSkus(pb.ListSkusRequest(names=["nvidia.com/mig-3g.40gb"]))
    assert [s.name for s in reply.skus] == [H100, "A100-SXM-80GB"]
    assert reply.unit.version == "h100e-2026.1"
    h100 = reply.skus[0]
    assert (h100.bf16_dense_tflops, h100.power_w, h100.normalised_units) == (989, 700, 1.0)
    assert (h100.geometry.compute_slices, h100.geometry.memory_slices) == (7, 8)
    assert {(k.kind, k.isolation) for k in h100.slice_kinds} == {
        ("whole", "exclusive"),
        ("mig", "hardware"),
        ("share", "soft"),
    }
    assert "nvidia.com/mig-7g.80gb" in [r.name for r in h100.resource_names]


async def test_an_unknown_sku_name_lists_the_known_ones(stub: Any) -> None:
    err = await refused(
        stub.ListSkus(pb.ListSkusRequest(names=["RNGD", "furiosa.ai/warboy"])), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert isinstance(err, InvalidArgument)
    assert (err.reason, err.field) == (Reason.UNKNOWN_SKU, "names[1]")
    assert "REBEL" in err.message


async def test_topology_export_and_lifecycle(stub: Any) -> None:
    text = generate_yaml({H100: 512, "RNGD": 64}, FacilityShape(leaves_per_hall=1))
    loaded = await stub.LoadFacility(pb.LoadFacilityRequest(yaml=text))
    assert loaded.devices == 576
    rows = (await stub.QueryCapacity(pb.QueryCapacityRequest(group_by="hall"))).rows
    assert [(r.group, r.sku, r.free) for r in rows] == [
        ("hall-01", H100, 256),
        ("hall-02", H100, 256),
        ("hall-03", "RNGD", 64),
    ]
    node = await stub.GetNode(pb.GetNodeRequest(id="h100-r0001-n01"))
    assert (node.hall, node.pod, node.leaf, node.spine, node.nvlink_domain, node.state, node.sku) == (
        "hall-01",
        "su-001",
        "hall-01-su-001-leaf",
        "hall-01-spine",
        "h100-r0001-n01",
        "active",
        H100,
    )
    leaf = await stub.ListLeafNeighbours(pb.ListLeafNeighboursRequest(node_id=node.id))
    assert leaf.leaf == node.leaf and len(leaf.node_ids) == 32
    exported = await stub.ExportFacility(pb.ExportFacilityRequest())
    assert (exported.nodes, exported.devices) == (72, 576)
    again = await stub.LoadFacility(pb.LoadFacilityRequest(yaml=exported.yaml))
    assert (again.nodes_registered, again.nodes_unchanged) == (0, 72)

    drained = await stub.SetNodeState(pb.SetNodeStateRequest(node_id=node.id, expected_generation=1, state="draining"))
    assert (drained.node.state, drained.node.schedulable, drained.node.generation) == ("draining", False, 2)
    err = await refused(
        stub.SetNodeState(pb.SetNodeStateRequest(node_id=node.id, expected_generation=1, state="active")),
        grpc.StatusCode.ABORTED,
    )
    assert err.reason is Reason.GENERATION_CONFLICT
    err = await refused(
        stub.SetNodeState(pb.SetNodeStateRequest(node_id=node.id, expected_generation=2, state="gone")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert err.field == "state"
    sick = await stub.SetDeviceHealth(
        pb.SetDeviceHealthRequest(
            node_id=node.id, expected_generation=2, devices=[pb.DeviceHealth(device="gpu2", healthy=False)]
        )
    )
    assert not sick.devices[2].healthy
    beat = await stub.Heartbeat(pb.HeartbeatRequest(node_id=node.id))
    assert beat.last_heartbeat_ms > 0 and beat.generation == 3
    await stub.RemoveNode(pb.RemoveNodeRequest(node_id=node.id, expected_generation=3))
    err = await refused(stub.GetNode(pb.GetNodeRequest(id=node.id)), grpc.StatusCode.NOT_FOUND)
    assert err.reason is Reason.NODE_NOT_FOUND


async def test_bad_topology_is_refused_whole(stub: Any) -> None:
    doc = yaml.safe_load(generate_yaml({H100: 64}))
    doc["switches"][1]["parent"] = "missing-spine"
    err = await refused(
        stub.LoadFacility(pb.LoadFacilityRequest(yaml=yaml.safe_dump(doc))), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert (err.reason, err.field) == (Reason.INVALID_FACILITY, "yaml: switches[1].parent")
    assert (await stub.ExportFacility(pb.ExportFacilityRequest())).nodes == 0


async def test_watch_streams_a_snapshot_then_changes(stub: Any) -> None:
    await stub.LoadFacility(pb.LoadFacilityRequest(yaml=generate_yaml({H100: 16})))
    call = stub.Watch(pb.WatchRequest(from_revision=0))
    events = [await call.read() for _ in range(4)]
    assert [e.type for e in events] == [
        pb.WATCH_EVENT_TYPE_SNAPSHOT_BEGIN,
        pb.WATCH_EVENT_TYPE_UPSERT,
        pb.WATCH_EVENT_TYPE_UPSERT,
        pb.WATCH_EVENT_TYPE_SNAPSHOT_END,
    ]
    revision = events[-1].revision
    await stub.SetNodeState(pb.SetNodeStateRequest(node_id="h100-r0001-n02", expected_generation=1, state="cordoned"))
    change = await asyncio.wait_for(call.read(), 5)
    assert (change.type, change.revision, change.node.id, change.node.state) == (
        pb.WATCH_EVENT_TYPE_UPSERT,
        revision + 1,
        "h100-r0001-n02",
        "cordoned",
    )
    call.cancel()
    err = await refused(stub.Watch(pb.WatchRequest(from_revision=-1)).read(), grpc.StatusCode.INVALID_ARGUMENT)
    assert err.field == "from_revision"
