"""A node's fixed MIG layout through the real inventory server: registered with the node, read back
from RegisterNode, GetNode, ListNodes, Watch and ExportFacility; replaced or cleared by the next
registration like every other field; a bad layout refused naming the field, nothing written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf.json_format import MessageToDict

from slicebroker.core.errors import InvalidArgument
from slicebroker.core.ids import new_grant_id
from slicebroker.inventory.main import build
from slicebroker.inventory.settings import InventorySettings
from slicebroker.v1 import inventory_pb2 as pb
from slicebroker.v1 import inventory_pb2_grpc as pb_grpc

from .test_inventory_api import dump, refused

A100 = "A100-SXM-80GB"
H100 = "H100-SXM-80GB"


@pytest.fixture
async def stub(start_service: Any, redis_url: str) -> AsyncIterator[Any]:
    settings = InventorySettings(redis_url=redis_url, listen="127.0.0.1:0", watch_block_ms=50)
    running = await start_service(build, settings)
    async with grpc.aio.insecure_channel(running.address) as channel:
        yield pb_grpc.InventoryServiceStub(channel)


def register(layout: dict[str, int] | None = None, node_id: str = "mig-n01", sku: str = A100, devices: int = 1) -> Any:
    return pb.RegisterNodeRequest(
        id=node_id, site="s1", rack="r1", sku=sku, device_count=devices, mig_layout=layout or {}
    )


async def test_a_layout_is_stored_with_the_node_and_read_back_everywhere(stub: Any) -> None:
    node = await stub.RegisterNode(register({"1g.10gb": 7}))
    assert dict(node.mig_layout) == {"1g.10gb": 7}
    assert (node.generation, len(node.devices)) == (1, 1)
    assert dict((await stub.GetNode(pb.GetNodeRequest(id="mig-n01"))).mig_layout) == {"1g.10gb": 7}
    listed = (await stub.ListNodes(pb.ListNodesRequest(sku=A100))).nodes
    assert [dict(n.mig_layout) for n in listed] == [{"1g.10gb": 7}]
    # A node registered without one has none.
    plain = await stub.RegisterNode(register(node_id="plain-n01", sku=H100, devices=8))
    assert dict(plain.mig_layout) == {}
    # The same registration again changes nothing (not even the generation).
    again = await stub.RegisterNode(register({"1g.10gb": 7}))
    assert again == node


async def test_the_watch_carries_the_layout(stub: Any) -> None:
    await stub.RegisterNode(register({"3g.40gb": 2, "2g.20gb": 3}, devices=2))
    stream = stub.Watch(pb.WatchRequest(from_revision=0), timeout=30)
    snapshot: dict[str, dict[str, int]] = {}
    while (event := await stream.read()).type != pb.WATCH_EVENT_TYPE_SNAPSHOT_END:
        if event.type == pb.WATCH_EVENT_TYPE_UPSERT:
            snapshot[event.node.id] = dict(event.node.mig_layout)
    assert snapshot == {"mig-n01": {"3g.40gb": 2, "2g.20gb": 3}}
    # A re-cut node (a MIG manager's new layout) is sent with its new layout ...
    await stub.RegisterNode(register({"1g.10gb": 14}, devices=2))
    event = await stream.read()
    assert (event.type, event.node.id, dict(event.node.mig_layout)) == (
        pb.WATCH_EVENT_TYPE_UPSERT,
        "mig-n01",
        {"1g.10gb": 14},
    )
    # ... and one registered without a layout is sent with none.
    await stub.RegisterNode(register(devices=2))
    event = await stream.read()
    assert (event.node.id, dict(event.node.mig_layout), event.node.generation) == ("mig-n01", {}, 3)
    stream.cancel()


async def test_re_registering_replaces_or_clears_the_layout(stub: Any) -> None:
    first = await stub.RegisterNode(register({"1g.10gb": 14}, devices=2))
    replaced = await stub.RegisterNode(register({"3g.40gb": 4}, devices=2))
    assert (dict(replaced.mig_layout), replaced.generation) == ({"3g.40gb": 4}, first.generation + 1)
    cleared = await stub.RegisterNode(register(devices=2))
    assert (dict(cleared.mig_layout), cleared.generation) == ({}, first.generation + 2)
    assert dict((await stub.GetNode(pb.GetNodeRequest(id="mig-n01"))).mig_layout) == {}


async def test_a_layout_changes_while_slices_are_held(stub: Any) -> None:
    # Like a change of place or host capacity, not of shape: the held slice stays where it is.
    node = await stub.RegisterNode(register({"1g.10gb": 7}))
    grant = new_grant_id()
    piece = pb.SliceClaim(device_id="mig-n01/gpu0", kind="mig", profile="1g.10gb")
    claim = pb.NodeClaim(node_id="mig-n01", expected_generation=node.generation, slices=[piece])
    result = (await stub.Claim(pb.ClaimRequest(claims=[pb.DeviceClaim(grant_id=grant, nodes=[claim])]))).results[0]
    assert result.status.code == 0, result.status.message
    recut = await stub.RegisterNode(register({"3g.40gb": 2}))
    assert dict(recut.mig_layout) == {"3g.40gb": 2}
    assert [(s.grant_id, s.profile) for s in recut.devices[0].slices] == [(grant, "1g.10gb")]


@pytest.mark.parametrize(
    ("sku", "devices", "layout", "field"),
    [
        # Not a profile of the SKU (H100's are 1g.10gb ... 7g.80gb; 1g.18gb is H200's).
        (A100, 1, {"3g.99gb": 1}, 'mig_layout["3g.99gb"]'),
        (H100, 8, {"1g.10gb": 7, "1g.18gb": 7}, 'mig_layout["1g.18gb"]'),
        # Counts are 1 or more.
        (A100, 1, {"1g.10gb": 0}, 'mig_layout["1g.10gb"]'),
        (A100, 1, {"1g.10gb": -1}, 'mig_layout["1g.10gb"]'),
        # A SKU without MIG profiles (an NPU's partitions are not MIG; ATOM has none at all).
        ("RNGD", 4, {"1core.6gb": 8}, "mig_layout"),
        ("ATOM", 4, {"1g.10gb": 1}, "mig_layout"),
        # More than the node's devices carry: by compute (8 x 1/7 > 1) ...
        (A100, 1, {"1g.10gb": 8}, "mig_layout"),
        (H100, 2, {"7g.80gb": 2, "1g.10gb": 1}, "mig_layout"),
        # ... or by memory (5 x 2/8 > 1, though 5 x 1/7 compute fits).
        (A100, 1, {"1g.20gb": 5}, "mig_layout"),
    ],
)
async def test_a_bad_layout_is_refused_naming_the_field(
    stub: Any, sku: str, devices: int, layout: dict[str, int], field: str
) -> None:
    request = pb.RegisterNodeRequest(id="bad-n01", site="s1", rack="r1", sku=sku, device_count=devices)
    request.mig_layout.update(layout)
    err = await refused(stub.RegisterNode(request), grpc.StatusCode.INVALID_ARGUMENT)
    assert isinstance(err, InvalidArgument)
    assert (err.field, str(err.reason)) == (field, "INVALID_FIELD")
    assert await dump(stub) == []


async def test_a_bad_layout_leaves_a_registered_node_as_it_was(stub: Any) -> None:
    await stub.RegisterNode(register({"1g.10gb": 7}))
    before = await dump(stub)
    err = await refused(stub.RegisterNode(register({"1g.10gb": 8})), grpc.StatusCode.INVALID_ARGUMENT)
    assert isinstance(err, InvalidArgument) and err.field == "mig_layout"
    assert await dump(stub) == before


FACILITY = """
sites:
  - name: s1
    racks:
      - name: r1
        node_groups:
          - {prefix: a100-n, count: 2, sku: A100-SXM-80GB, devices: 8, mig_layout: {1g.10gb: 56}}
        nodes:
          - {id: h100-n01, sku: H100-SXM-80GB, devices: 1, mig_layout: {3g.40gb: 1, 2g.20gb: 2}}
          - {id: h100-n02, sku: H100-SXM-80GB, devices: 8}
"""


async def test_a_facility_registers_layouts_and_exports_them_back(stub: Any) -> None:
    loaded = await stub.LoadFacility(pb.LoadFacilityRequest(yaml=FACILITY))
    assert (loaded.nodes_registered, loaded.devices) == (4, 25)
    layouts = {n.id: dict(n.mig_layout) for n in (await stub.ListNodes(pb.ListNodesRequest())).nodes}
    assert layouts == {
        "a100-n01": {"1g.10gb": 56},
        "a100-n02": {"1g.10gb": 56},
        "h100-n01": {"3g.40gb": 1, "2g.20gb": 2},
        "h100-n02": {},
    }
    exported = await stub.ExportFacility(pb.ExportFacilityRequest())
    rack = yaml.safe_load(exported.yaml)["sites"][0]["racks"][0]
    assert [g.get("mig_layout") for g in rack["node_groups"]] == [{"1g.10gb": 56}]
    assert {n["id"]: n.get("mig_layout") for n in rack["nodes"]} == {
        "h100-n01": {"2g.20gb": 2, "3g.40gb": 1},
        "h100-n02": None,
    }
    # The export loads back into the same nodes: nothing changes.
    again = await stub.LoadFacility(pb.LoadFacilityRequest(yaml=exported.yaml))
    assert (again.nodes_registered, again.nodes_unchanged) == (0, 4)
    # A facility without the layouts clears them, like a RegisterNode without one.
    plain = FACILITY.replace(", mig_layout: {1g.10gb: 56}", "")
    assert (await stub.LoadFacility(pb.LoadFacilityRequest(yaml=plain))).nodes_registered == 2
    node = await stub.GetNode(pb.GetNodeRequest(id="a100-n01"))
    assert "migLayout" not in MessageToDict(node)


@pytest.mark.parametrize(
    ("layout", "field"),
    [
        ("{3g.99gb: 1}", 'yaml: sites[0].racks[0].node_groups[0].mig_layout["3g.99gb"]'),
        ("{1g.10gb: 0}", 'yaml: sites[0].racks[0].node_groups[0].mig_layout["1g.10gb"]'),
        ("{1g.10gb: yes}", 'yaml: sites[0].racks[0].node_groups[0].mig_layout["1g.10gb"]'),
        ("{1g.10gb: 57}", "yaml: sites[0].racks[0].node_groups[0].mig_layout"),
        ("[1g.10gb]", "yaml: sites[0].racks[0].node_groups[0].mig_layout"),
    ],
)
async def test_a_bad_layout_in_a_facility_is_refused_whole(stub: Any, layout: str, field: str) -> None:
    bad = FACILITY.replace("{1g.10gb: 56}", layout)
    err = await refused(stub.LoadFacility(pb.LoadFacilityRequest(yaml=bad)), grpc.StatusCode.INVALID_ARGUMENT)
    assert isinstance(err, InvalidArgument)
    assert (err.field, str(err.reason)) == (field, "INVALID_FACILITY")
    assert await dump(stub) == []
