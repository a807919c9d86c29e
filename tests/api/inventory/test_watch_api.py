"""Watch through the real gRPC server: events are serialized once and sent as bytes, so readers
that ask for one event per message, readers that ask for batches, and several of each at once
all see the same events in the same order; bad batch sizes are refused naming the field."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from slicebroker.inventory.main import build
from slicebroker.inventory.settings import InventorySettings
from slicebroker.runtime.status import from_rpc_error
from slicebroker.v1 import inventory_pb2 as pb
from slicebroker.v1 import inventory_pb2_grpc as pb_grpc
from tests.mesh_fixtures import SMALL_FACILITY

H100 = "H100-SXM-80GB"


@pytest.fixture
async def stub(start_service: Any, redis_url: str) -> AsyncIterator[Any]:
    settings = InventorySettings(redis_url=redis_url, listen="127.0.0.1:0", watch_block_ms=50)
    running = await start_service(build, settings)
    async with grpc.aio.insecure_channel(running.address) as channel:
        s = pb_grpc.InventoryServiceStub(channel)
        await s.LoadFacility(pb.LoadFacilityRequest(yaml=SMALL_FACILITY))
        yield s


def unbatched(message: Any) -> list[Any]:
    if message.type == pb.WATCH_EVENT_TYPE_BATCH:
        assert message.events and message.revision == message.events[-1].revision
        assert all(e.type != pb.WATCH_EVENT_TYPE_BATCH for e in message.events)
        return list(message.events)
    return [message]


async def read(stub: Any, max_batch: int, until: int, sizes: list[int]) -> list[tuple[int, int, str, int]]:
    """(type, revision, node id, generation) of every event up to revision `until` after the snapshot."""
    seen: list[tuple[int, int, str, int]] = []
    async for message in stub.Watch(pb.WatchRequest(from_revision=0, max_batch=max_batch), timeout=30):
        events = unbatched(message)
        sizes.append(len(events))
        for e in events:
            seen.append((e.type, e.revision, e.node_id or e.node.id, e.node.generation))
        if seen[-1][1] >= until and any(t == pb.WATCH_EVENT_TYPE_SNAPSHOT_END for t, *_ in seen):
            return seen
    raise AssertionError("the stream ended")


async def test_batched_and_single_readers_see_the_same_events(stub: Any) -> None:
    nodes = (await stub.ListNodes(pb.ListNodesRequest(sku=H100, page_size=100))).nodes
    assert len(nodes) == 8
    start = (await stub.Watch(pb.WatchRequest(from_revision=0)).read()).revision
    changes = 60

    async def write() -> None:
        for i in range(changes):
            # Each pass over the nodes flips gpu0's health, so every heartbeat is a change.
            healthy = (i // len(nodes)) % 2 == 1
            await stub.Heartbeat(
                pb.HeartbeatRequest(
                    node_id=nodes[i % len(nodes)].id, devices=[pb.DeviceHealth(device="gpu0", healthy=healthy)]
                )
            )

    sizes: dict[int, list[int]] = {1: [], 0: [], 7: [], 1000: []}
    readers = [asyncio.create_task(read(stub, b, start + changes, sizes[b])) for b in sizes]
    await asyncio.sleep(0.2)
    await write()
    seen = await asyncio.gather(*readers)
    # Snapshots may be cut at different revisions; from the last snapshot on, everyone agrees.
    tails = [s[max(i for i, e in enumerate(s) if e[0] == pb.WATCH_EVENT_TYPE_SNAPSHOT_END) :] for s in seen]
    finals = [{node: gen for _, _, node, gen in s if node} for s in seen]
    assert all(f == finals[0] for f in finals)
    for tail in tails:
        revisions = [r for _, r, _, _ in tail]
        assert revisions == sorted(revisions) and revisions[-1] == start + changes
    # Every node's last change reached every reader (gpu0 of the 8 nodes was flipped 7 or 8 times).
    assert len(finals[0]) == 10 and sum(gen > 1 for gen in finals[0].values()) == 8
    assert max(sizes[1]) == max(sizes[0]) == 1
    assert max(sizes[7]) <= 7 and max(sizes[1000]) > 1  # the snapshot alone is 12 events


@pytest.mark.parametrize("max_batch", [-1, 1001])
async def test_a_bad_batch_size_is_refused_naming_the_field(stub: Any, max_batch: int) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.Watch(pb.WatchRequest(from_revision=0, max_batch=max_batch)).read()
    assert exc.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert from_rpc_error(exc.value).field == "max_batch"
