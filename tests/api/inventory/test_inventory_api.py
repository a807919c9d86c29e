"""The inventory through its real gRPC server on loopback: status codes, ErrorInfo reasons, the
offending field named, and bad input changing nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from slicebroker.core.errors import InvalidArgument, SlicebrokerError
from slicebroker.core.ids import new_grant_id
from slicebroker.inventory.main import build
from slicebroker.inventory.settings import InventorySettings
from slicebroker.runtime.status import from_rpc_error, from_status
from slicebroker.v1 import inventory_pb2 as pb
from slicebroker.v1 import inventory_pb2_grpc as pb_grpc

H100 = "H100-SXM-80GB"


@pytest.fixture
async def channel(start_service: Any, redis_url: str) -> AsyncIterator[grpc.aio.Channel]:
    running = await start_service(build, InventorySettings(redis_url=redis_url, listen="127.0.0.1:0"))
    async with grpc.aio.insecure_channel(running.address) as ch:
        yield ch


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> Any:
    return pb_grpc.InventoryServiceStub(channel)


@pytest.fixture
async def demo(stub: Any, examples_dir: Path) -> Any:
    return await stub.LoadFacility(pb.LoadFacilityRequest(yaml=(examples_dir / "facility.yaml").read_text()))


async def dump(stub: Any) -> list[bytes]:
    """Every node, serialized, paging with the public API."""
    nodes: list[bytes] = []
    token = ""
    while True:
        page = await stub.ListNodes(pb.ListNodesRequest(page_size=1000, page_token=token))
        nodes += [n.SerializeToString(deterministic=True) for n in page.nodes]
        token = page.next_page_token
        if not token:
            return nodes


async def refused(call: Any, code: grpc.StatusCode) -> SlicebrokerError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    return from_rpc_error(caught.value)


async def test_health_and_skus(channel: grpc.aio.Channel, stub: Any) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service="slicebroker.v1.InventoryService"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    skus = (await stub.ListSkus(pb.ListSkusRequest())).skus
    assert [s.name for s in skus] == [
        "H100-SXM-80GB",
        "H200-SXM-141GB",
        "A100-SXM-80GB",
        "B200-SXM-180GB",
        "RNGD",
        "ATOM",
        "REBEL",
    ]
    assert (skus[4].vendor, skus[4].kind) == ("furiosa", "npu")


async def test_load_the_demo_facility_twice(stub: Any, demo: Any, examples_dir: Path) -> None:
    assert (demo.nodes_registered, demo.nodes_unchanged, demo.devices) == (304, 0, 2432)
    again = await stub.LoadFacility(pb.LoadFacilityRequest(yaml=(examples_dir / "facility.yaml").read_text()))
    assert (again.nodes_registered, again.nodes_unchanged, again.devices) == (0, 304, 2432)
    capacity = {
        c.sku: (c.nodes, c.devices, c.free, c.unhealthy) for c in (await stub.GetCapacity(pb.GetCapacityRequest())).skus
    }
    assert capacity == {
        H100: (160, 1280, 1280, 0),
        "H200-SXM-141GB": (40, 320, 320, 0),
        "RNGD": (64, 512, 512, 0),
        "ATOM": (40, 320, 320, 0),
    }


@pytest.mark.parametrize(
    ("replace", "field", "reason"),
    [
        (
            ("{id: rngd-r008-n08, sku: RNGD, devices: 8}", "{id: rngd-r008-n08, sku: RNGD, devices: 80}"),
            "yaml: sites[1].racks[17].nodes[1].devices",
            "INVALID_FACILITY",
        ),
        (
            ("{id: rngd-r008-n07, sku: RNGD", "{id: rngd-r008-n07, sku: NPU"),
            "yaml: sites[1].racks[17].nodes[0].sku",
            "UNKNOWN_SKU",
        ),
        (
            ("prefix: h200-r002-n,", "prefix: h200-r001-n,"),
            "yaml: sites[0].racks[32].node_groups[0]",
            "INVALID_FACILITY",
        ),
        (("  - name: gwangju", "  - name: Gwangju"), "yaml: sites[1].name", "INVALID_FACILITY"),
        (("sites:", "sites: ["), "yaml", "INVALID_FACILITY"),
    ],
)
async def test_a_bad_facility_is_refused_whole(
    stub: Any, demo: Any, examples_dir: Path, replace: tuple[str, str], field: str, reason: str
) -> None:
    text = (examples_dir / "facility.yaml").read_text()
    # A bad node at the end, a new rack at the start: neither may be written.
    bad = text.replace(*replace).replace(
        "racks:\n", "racks:\n      - {name: new, nodes: [{id: new-n01, sku: ATOM, devices: 2}]}\n", 1
    )
    assert bad != text
    before = await dump(stub)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.LoadFacility(pb.LoadFacilityRequest(yaml=bad))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = from_rpc_error(caught.value)
    assert isinstance(err, InvalidArgument)
    assert (err.field, str(err.reason)) == (field, reason)
    status = rpc_status.from_call(caught.value)
    assert status is not None
    violations = [
        v.field
        for d in status.details
        if d.Is(error_details_pb2.BadRequest.DESCRIPTOR)
        for v in _unpack_bad_request(d).field_violations
    ]
    assert violations == [field]
    assert await dump(stub) == before


def _unpack_bad_request(detail: Any) -> Any:
    message = error_details_pb2.BadRequest()
    detail.Unpack(message)
    return message


async def test_register_get_and_reshape_a_node(stub: Any) -> None:
    node = await stub.RegisterNode(
        pb.RegisterNodeRequest(id="b200-n01", site="s1", rack="r1", sku="B200-SXM-180GB", device_count=8)
    )
    assert (node.id, node.generation, node.schedulable, len(node.devices)) == ("b200-n01", 1, True, 8)
    assert node.devices[7].id == "b200-n01/gpu7" and node.devices[7].sku == "B200-SXM-180GB" and node.devices[7].healthy
    assert await stub.GetNode(pb.GetNodeRequest(id="b200-n01")) == node
    same = await stub.RegisterNode(
        pb.RegisterNodeRequest(id="b200-n01", site="s1", rack="r1", sku="B200-SXM-180GB", device_count=8)
    )
    assert same == node
    grant = new_grant_id()
    claimed = await stub.Claim(
        pb.ClaimRequest(
            claims=[
                pb.DeviceClaim(
                    grant_id=grant,
                    nodes=[pb.NodeClaim(node_id="b200-n01", expected_generation=1, device_ids=["b200-n01/gpu2"])],
                )
            ]
        )
    )
    assert claimed.results[0].status.code == code_pb2.OK
    err = await refused(
        stub.RegisterNode(
            pb.RegisterNodeRequest(id="b200-n01", site="s1", rack="r1", sku="B200-SXM-180GB", device_count=4)
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert err.reason == "NODE_SHAPE_CHANGED"
    await stub.Release(pb.ReleaseRequest(grant_ids=[grant]))
    reshaped = await stub.RegisterNode(
        pb.RegisterNodeRequest(id="b200-n01", site="s1", rack="r1", sku="REBEL", device_count=4)
    )
    assert (reshaped.generation, [d.id for d in reshaped.devices][-1]) == (4, "b200-n01/npu3")


@pytest.mark.parametrize(
    ("request_fields", "field", "reason"),
    [
        ({"id": "N1"}, "id", "INVALID_FIELD"),
        ({"site": ""}, "site", "INVALID_FIELD"),
        ({"rack": "r 1"}, "rack", "INVALID_FIELD"),
        ({"sku": "H100"}, "sku", "UNKNOWN_SKU"),
        ({"device_count": 0}, "device_count", "INVALID_FIELD"),
        ({"device_count": 65}, "device_count", "INVALID_FIELD"),
    ],
)
async def test_register_node_refusals(stub: Any, request_fields: dict[str, Any], field: str, reason: str) -> None:
    fields = {"id": "n1", "site": "s", "rack": "r", "sku": H100, "device_count": 8} | request_fields
    err = await refused(stub.RegisterNode(pb.RegisterNodeRequest(**fields)), grpc.StatusCode.INVALID_ARGUMENT)
    assert isinstance(err, InvalidArgument)
    assert (err.field, str(err.reason)) == (field, reason)
    assert await dump(stub) == []


async def test_get_node_refusals(stub: Any) -> None:
    err = await refused(stub.GetNode(pb.GetNodeRequest(id="nope")), grpc.StatusCode.NOT_FOUND)
    assert (err.reason, err.metadata) == ("NODE_NOT_FOUND", {"node_id": "nope"})
    err = await refused(stub.GetNode(pb.GetNodeRequest(id="")), grpc.StatusCode.INVALID_ARGUMENT)
    assert isinstance(err, InvalidArgument) and err.field == "id"


async def test_list_nodes_pages_in_id_order(stub: Any, demo: Any) -> None:
    ids: list[str] = []
    token, pages = "", 0
    while True:
        page = await stub.ListNodes(pb.ListNodesRequest(page_token=token))
        ids += [n.id for n in page.nodes]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert (len(ids), pages) == (304, 4)  # default page size 100
    assert ids == sorted(ids) and len(set(ids)) == 304
    rngd: list[str] = []
    token = ""
    while True:
        page = await stub.ListNodes(pb.ListNodesRequest(sku="RNGD", page_size=30, page_token=token))
        rngd += [n.id for n in page.nodes]
        assert all(d.sku == "RNGD" for n in page.nodes for d in n.devices)
        token = page.next_page_token
        if not token:
            break
    assert len(rngd) == 64 and rngd == sorted(rngd)
    everything = await stub.ListNodes(pb.ListNodesRequest(page_size=5000))
    assert (len(everything.nodes), everything.next_page_token) == (304, "")
    assert len((await stub.ListNodes(pb.ListNodesRequest(sku="REBEL"))).nodes) == 0


@pytest.mark.parametrize(
    ("request_fields", "field", "reason"),
    [
        ({"page_size": -1}, "page_size", "INVALID_FIELD"),
        ({"page_token": "garbage"}, "page_token", "INVALID_FIELD"),
        ({"sku": "rngd"}, "sku", "UNKNOWN_SKU"),
    ],
)
async def test_list_nodes_refusals(stub: Any, request_fields: dict[str, Any], field: str, reason: str) -> None:
    err = await refused(stub.ListNodes(pb.ListNodesRequest(**request_fields)), grpc.StatusCode.INVALID_ARGUMENT)
    assert isinstance(err, InvalidArgument)
    assert (err.field, str(err.reason)) == (field, reason)


async def test_a_token_is_bound_to_its_filter(stub: Any, demo: Any) -> None:
    token = (await stub.ListNodes(pb.ListNodesRequest(sku="ATOM", page_size=2))).next_page_token
    err = await refused(
        stub.ListNodes(pb.ListNodesRequest(sku="RNGD", page_token=token)), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert isinstance(err, InvalidArgument) and err.field == "page_token"


def device_claim(grant: str, node_id: str, generation: int, *devices: str) -> Any:
    return pb.DeviceClaim(
        grant_id=grant,
        nodes=[
            pb.NodeClaim(
                node_id=node_id,
                expected_generation=generation,
                device_ids=[f"{node_id}/{d}" for d in devices],
            )
        ],
    )


async def test_claim_release_and_holders(stub: Any, demo: Any) -> None:
    g1, g2, g3 = new_grant_id(), new_grant_id(), new_grant_id()
    reply = await stub.Claim(
        pb.ClaimRequest(
            claims=[
                device_claim(g1, "h100-r001-n01", 1, "gpu0", "gpu1"),
                device_claim(g2, "h100-r001-n01", 1, "gpu2"),  # stale: the claim before moved the node on
                device_claim(g3, "rngd-r001-n01", 1, "npu7"),
            ]
        )
    )
    results = list(reply.results)
    assert [r.grant_id for r in results] == [g1, g2, g3]
    assert [r.status.code for r in results] == [code_pb2.OK, code_pb2.ABORTED, code_pb2.OK]
    conflict = from_status(results[1].status)
    assert conflict is not None and conflict.reason == "GENERATION_CONFLICT"
    assert conflict.metadata == {"node_id": "h100-r001-n01", "expected_generation": "1", "generation": "2"}
    assert [(g.node_id, g.generation) for g in results[1].generations] == [("h100-r001-n01", 2)]
    holders = await stub.ListHolders(pb.ListHoldersRequest())
    assert sorted(holders.grant_ids) == sorted([g1, g3])
    node = await stub.GetNode(pb.GetNodeRequest(id="h100-r001-n01"))
    assert [d.holder for d in node.devices[:3]] == [g1, g1, ""]
    free = {c.sku: c.free for c in (await stub.GetCapacity(pb.GetCapacityRequest())).skus}
    assert (free[H100], free["RNGD"]) == (1278, 511)
    released = await stub.Release(pb.ReleaseRequest(grant_ids=[g1, g2, g3]))
    assert released.devices_released == 3
    assert sorted((g.node_id, g.generation) for g in released.generations) == [
        ("h100-r001-n01", 3),
        ("rngd-r001-n01", 3),
    ]
    again = await stub.Release(pb.ReleaseRequest(grant_ids=[g1]))
    assert (again.devices_released, list(again.generations)) == (0, [])
    assert list((await stub.ListHolders(pb.ListHoldersRequest())).grant_ids) == []


async def test_per_claim_refusals_carry_their_reasons(stub: Any, demo: Any) -> None:
    taken = new_grant_id()
    await stub.Claim(pb.ClaimRequest(claims=[device_claim(taken, "atom-r001-n01", 1, "npu0")]))
    reply = await stub.Claim(
        pb.ClaimRequest(
            claims=[
                device_claim(new_grant_id(), "atom-r001-n99", 1, "npu0"),
                device_claim(new_grant_id(), "atom-r001-n01", 2, "npu9"),
                device_claim(new_grant_id(), "atom-r001-n01", 2, "gpu0"),
                device_claim(new_grant_id(), "atom-r001-n01", 2, "npu1", "npu0"),
                device_claim(taken, "atom-r001-n01", 1, "npu0"),  # a replay
            ]
        )
    )
    got = [(r.status.code, from_status(r.status)) for r in reply.results]
    assert [(code, err.reason if err else "OK") for code, err in got] == [
        (code_pb2.NOT_FOUND, "NODE_NOT_FOUND"),
        (code_pb2.NOT_FOUND, "DEVICE_NOT_FOUND"),
        (code_pb2.NOT_FOUND, "DEVICE_NOT_FOUND"),
        (code_pb2.ABORTED, "DEVICE_TAKEN"),
        (code_pb2.OK, "OK"),
    ]
    assert got[3][1] is not None and got[3][1].metadata["device_id"] == "atom-r001-n01/npu0"


@pytest.mark.parametrize(
    ("claims", "field"),
    [
        ([], "claims"),
        ([device_claim("gr_bad", "h100-r001-n01", 1, "gpu0")], "claims[0].grant_id"),
        (
            [
                device_claim(new_grant_id(), "h100-r001-n01", 1, "gpu0"),
                device_claim(new_grant_id(), "h100-r001-n02", 1, "gpu-1"),
            ],
            "claims[1].nodes[0].device_ids[0]",
        ),
        (
            [device_claim(new_grant_id(), "h100-r001-n01", 0, "gpu0")],
            "claims[0].nodes[0].expected_generation",
        ),
        (
            [device_claim(new_grant_id(), "h100-r001-n01", 1, "gpu0", "gpu0")],
            "claims[0].nodes[0].device_ids[1]",
        ),
        ([pb.DeviceClaim(grant_id=new_grant_id())], "claims[0].nodes"),
    ],
)
async def test_a_bad_claim_refuses_the_whole_batch(stub: Any, demo: Any, claims: list[Any], field: str) -> None:
    before = await dump(stub)
    err = await refused(stub.Claim(pb.ClaimRequest(claims=claims)), grpc.StatusCode.INVALID_ARGUMENT)
    assert isinstance(err, InvalidArgument)
    assert (err.field, str(err.reason)) == (field, "INVALID_FIELD")
    assert await dump(stub) == before
    assert list((await stub.ListHolders(pb.ListHoldersRequest())).grant_ids) == []


@pytest.mark.parametrize(("grants", "field"), [([], "grant_ids"), (["gr_1"], "grant_ids[0]")])
async def test_release_refusals(stub: Any, demo: Any, grants: list[str], field: str) -> None:
    grant = new_grant_id()
    await stub.Claim(pb.ClaimRequest(claims=[device_claim(grant, "h200-r001-n01", 1, "gpu0")]))
    before = await dump(stub)
    # A good grant after the bad one is not released either.
    ids = [*grants, grant] if grants else []
    err = await refused(stub.Release(pb.ReleaseRequest(grant_ids=ids)), grpc.StatusCode.INVALID_ARGUMENT)
    assert isinstance(err, InvalidArgument) and err.field == field
    assert await dump(stub) == before
