"""Host CPU and memory per slice through the real services: the broker places only where the
node has them left, inventory holds them with the devices, the grant carries them, and release
gives them back."""

from __future__ import annotations

import asyncio
from collections import Counter

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from slicebroker.runtime.status import from_rpc_error
from slicebroker.v1 import broker_pb2, inventory_pb2
from tests.api.mesh.conftest import Stubs

H100 = "H100-SXM-80GB"
NODES = [f"h100-r01-n0{i}" for i in range(1, 5)]


def ask(
    count: int, cpu: int, mem: int = 0, project: str = "uni-a-llm", **extra: object
) -> broker_pb2.RequestGrantRequest:
    return broker_pb2.RequestGrantRequest(
        project=project,
        sku=H100,
        count=count,
        lease=Duration(seconds=600),
        host_per_slice=broker_pb2.HostResources(cpu_milli=cpu, memory_mib=mem),
        **extra,  # type: ignore[arg-type]
    )


async def give_host_capacity(stubs: Stubs, cpu: int, mem: int) -> None:
    """Rack r01's four nodes offer host CPU and memory (r02's offer none); waits until the broker's
    snapshot has seen it."""
    for node_id in NODES:
        await stubs.inventory.RegisterNode(
            inventory_pb2.RegisterNodeRequest(
                id=node_id, site="test-site", rack="r01", sku=H100, device_count=8, cpu_milli=cpu, memory_mib=mem
            )
        )
    for _ in range(200):
        try:
            probe = await stubs.broker.RequestGrant(ask(1, cpu))
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.05)
            continue
        await stubs.broker.ReleaseGrant(broker_pb2.ReleaseGrantRequest(id=probe.id))
        await asyncio.sleep(0.2)  # the release's node change reaches the snapshot
        return
    raise AssertionError("the broker never saw the nodes' host capacity")


async def used_cpu(stubs: Stubs) -> dict[str, int]:
    nodes = [await stubs.inventory.GetNode(inventory_pb2.GetNodeRequest(id=n)) for n in NODES]
    return {n.id: n.cpu_milli_used for n in nodes if n.cpu_milli_used}


async def test_grants_land_only_where_host_resources_are_left_and_release_returns_them(stubs: Stubs) -> None:
    await give_host_capacity(stubs, cpu=8_000, mem=64 * 1024)
    first = await stubs.broker.RequestGrant(
        ask(
            4,
            2_000,
            1024,
            topology=broker_pb2.Topology(constraint=broker_pb2.TOPOLOGY_CONSTRAINT_SAME_NODE, required=True),
        )
    )
    assert (first.host_per_slice.cpu_milli, first.host_per_slice.memory_mib) == (2_000, 1024)
    [node] = {s.node_id for s in first.slices}
    assert node in NODES
    assert await used_cpu(stubs) == {node: 8_000}
    # 12 more fit on the three other nodes (4 each by CPU), never on r02, which offers no CPU.
    second = await stubs.broker.RequestGrant(ask(12, 2_000))
    by_node = Counter(s.node_id for s in second.slices)
    assert set(by_node) <= set(NODES) - {node} and max(by_node.values()) <= 4
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stubs.broker.RequestGrant(ask(1, 2_000))
    err = from_rpc_error(refused.value)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and err.reason == "INSUFFICIENT_CAPACITY"
    assert "host" in err.message
    # Whole devices without host resources still fit on the same nodes.
    plain = await stubs.broker.RequestGrant(ask(4, 0))
    assert not plain.HasField("host_per_slice")
    await stubs.broker.ReleaseGrant(broker_pb2.ReleaseGrantRequest(id=first.id))
    assert node not in await used_cpu(stubs)
    for _ in range(100):  # the release reaches the broker's snapshot
        try:
            again = await stubs.broker.RequestGrant(ask(4, 2_000))
            break
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.05)
    else:
        raise AssertionError("the released CPU never came back")
    assert {s.node_id for s in again.slices} == {node}
    fetched = await stubs.broker.GetGrant(broker_pb2.GetGrantRequest(id=again.id))
    assert fetched.host_per_slice.cpu_milli == 2_000


async def test_slices_take_host_resources_per_slice(stubs: Stubs) -> None:
    await give_host_capacity(stubs, cpu=3_000, mem=64 * 1024)
    grant = await stubs.broker.RequestGrant(
        broker_pb2.RequestGrantRequest(
            project="uni-a-llm",
            sku=H100,
            count=6,
            lease=Duration(seconds=600),
            shape=broker_pb2.SliceShape(kind="mig", profile="1g.10gb"),
            host_per_slice=broker_pb2.HostResources(cpu_milli=1_000),
        )
    )
    # Three slices per node at most: CPU, not the GPUs, is what runs out.
    assert sorted(Counter(s.node_id for s in grant.slices).values()) == [3, 3]
    assert set((await used_cpu(stubs)).values()) == {3_000}


@pytest.mark.parametrize(
    ("host", "field"),
    [
        ((-1, 0), "host_per_slice.cpu_milli"),
        ((0, -5), "host_per_slice.memory_mib"),
        ((10**10, 0), "host_per_slice.cpu_milli"),
    ],
)
async def test_bad_host_resources_name_the_field(stubs: Stubs, host: tuple[int, int], field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.broker.RequestGrant(ask(1, *host))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert from_rpc_error(caught.value).metadata.get("field") == field


async def test_a_key_replayed_with_other_host_resources_is_refused(stubs: Stubs) -> None:
    await give_host_capacity(stubs, cpu=8_000, mem=64 * 1024)
    first = await stubs.broker.RequestGrant(ask(1, 2_000, idempotency_key="host-key"))
    assert (await stubs.broker.RequestGrant(ask(1, 2_000, idempotency_key="host-key"))).id == first.id
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.broker.RequestGrant(ask(1, 4_000, idempotency_key="host-key"))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert from_rpc_error(info.value).reason == "IDEMPOTENCY_KEY_REUSED"
