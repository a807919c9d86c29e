"""Watch over real Redis: a reader that starts from nothing, one that resumes, and one that fell
behind the bounded change log all converge on exactly the nodes the store holds."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from slicebroker.inventory.domain.model import Node, WatchEventType
from slicebroker.inventory.domain.service import InventoryService
from slicebroker.inventory.domain.watch import ChangeTail
from slicebroker.inventory.storage.store import RedisInventoryStore

from .support import H100, PREFIX, all_nodes, claim, facility

NOW = 1_700_000_000_000


@dataclass
class Reader:
    """A cache kept the way the broker keeps one."""

    nodes: dict[str, Node] = field(default_factory=dict)
    revision: int = 0
    snapshots: int = 0
    _staged: dict[str, Node] | None = None

    async def follow(self, service: InventoryService, until: int) -> None:
        """Applies events until it has seen revision `until` outside a snapshot."""
        if self.revision >= until and self.revision:
            return
        async for event in service.watch(self.revision):
            match event.type:
                case WatchEventType.SNAPSHOT_BEGIN:
                    self._staged = {}
                    self.snapshots += 1
                case WatchEventType.SNAPSHOT_END:
                    assert self._staged is not None
                    self.nodes, self._staged = self._staged, None
                case WatchEventType.UPSERT:
                    assert event.node is not None
                    (self._staged if self._staged is not None else self.nodes)[event.node_id] = event.node
                case WatchEventType.DELETED:
                    self.nodes.pop(event.node_id, None)
            assert event.revision >= self.revision
            self.revision = event.revision
            if self._staged is None and self.revision >= until:
                return


def watching(store: RedisInventoryStore) -> InventoryService:
    return InventoryService(store, watch_block_ms=20)


async def truth(store: RedisInventoryStore) -> dict[str, Node]:
    return {n.id: n for n in await all_nodes(store)}


async def test_a_reader_from_zero_gets_a_snapshot_then_every_change(store: RedisInventoryStore) -> None:
    service = watching(store)
    await service.load_facility(facility(("h", H100, 4, 8)))
    reader = Reader()
    await reader.follow(service, await store.revision())
    assert reader.snapshots == 1 and reader.nodes == await truth(store)

    async def churn() -> None:
        for i in range(40):
            [c] = await service.claim([claim("h-n01", (await service.get_node("h-n01")).generation, i % 8)])
            if c.error is None:
                await service.release([c.grant_id])
        await service.set_node_state("h-n02", 1, "cordoned", NOW)
        await service.remove_node("h-n03", 1, NOW)

    follower = asyncio.create_task(reader.follow(service, 10**9))
    await churn()
    target = await store.revision()
    follower.cancel()
    await reader.follow(service, target)
    assert reader.snapshots == 1
    assert reader.nodes == await truth(store)
    assert "h-n03" not in reader.nodes


async def test_a_reconnecting_reader_resumes_without_a_snapshot(store: RedisInventoryStore) -> None:
    service = watching(store)
    await service.load_facility(facility(("h", H100, 2, 8)))
    reader = Reader()
    await reader.follow(service, await store.revision())
    # Disconnected while these happen.
    grants = [await service.claim([claim("h-n01", 1, 0, 1)]), await service.claim([claim("h-n02", 1, 5)])]
    await service.heartbeat("h-n02", [("gpu7", False)], NOW)
    await reader.follow(service, await store.revision())
    assert reader.snapshots == 1
    assert reader.nodes == await truth(store)
    assert reader.nodes["h-n01"].devices[0].holder == grants[0][0].grant_id


async def test_a_reader_behind_the_trimmed_log_gets_a_fresh_snapshot(client: aioredis.Redis) -> None:
    store = RedisInventoryStore(client, PREFIX, change_log_length=100)
    await store.load_scripts()
    service = watching(store)
    await service.load_facility(facility(("h", H100, 2, 8)))
    reader = Reader()
    await reader.follow(service, await store.revision())
    for _ in range(400):
        node = await service.get_node("h-n01")
        await service.set_node_state("h-n01", node.generation, "cordoned" if node.schedulable else "active", NOW)
    assert await store.oldest_revision() > reader.revision + 1
    await reader.follow(service, await store.revision())
    assert reader.snapshots == 2
    assert reader.nodes == await truth(store)


async def test_ten_readers_each_see_every_change(store: RedisInventoryStore) -> None:
    service = watching(store)
    await service.load_facility(facility(("h", H100, 8, 8)))
    start = await store.revision()
    readers = [Reader(revision=start, nodes=await truth(store)) for _ in range(10)]
    tasks = [asyncio.create_task(r.follow(service, 10**9)) for r in readers]
    for i in range(50):
        node = await service.get_node(f"h-n0{1 + i % 8}")
        await service.set_device_health(node.id, node.generation, [(f"gpu{i % 8}", i % 3 != 0)], NOW)
    end = await store.revision()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*(r.follow(service, end) for r in readers))
    expected = await truth(store)
    assert all(r.nodes == expected and r.snapshots == 0 for r in readers)


async def test_the_shared_tail_keeps_its_newest_events_and_serves_any_revision_in_them(
    store: RedisInventoryStore,
) -> None:
    service = watching(store)
    await service.load_facility(facility(("h", H100, 4, 8)))
    tail = ChangeTail(store, block_ms=20, batch=1, keep=5)
    tail.follow()
    try:
        await tail.wait_past(-1)
        start = tail.last
        for i in range(30):
            node = await service.get_node(f"h-n0{1 + i % 4}")
            await service.set_node_state(node.id, node.generation, "cordoned" if node.schedulable else "active", NOW)
        while tail.last < start + 30:
            await tail.wait_past(tail.last)
        kept = tail.after(tail.floor)
        # One change per batch (batch=1): revisions start+26 .. start+30 are kept, older ones dropped.
        assert [e.revision for e in kept] == list(range(start + 26, start + 31))
        assert tail.floor == start + 25
        assert [e.revision for e in tail.after(start + 28)] == [start + 29, start + 30]
        assert tail.after(start + 30) == []
        # Dropping works in bulk: the list never holds much more than `keep` events.
        assert len(tail.events) <= 2 * 5 + 1
    finally:
        tail.unfollow()
        for _ in range(100):
            if tail.floor < 0:
                break
            await asyncio.sleep(0.02)
