"""Concurrent claims and releases over real Redis: N concurrent operations against capacity C
succeed exactly C times, no device is ever held twice, and the counters stay exact."""

from __future__ import annotations

import asyncio
import random

import redis.asyncio as aioredis

from slicebroker.core.errors import Conflict
from slicebroker.core.ids import new_grant_id
from slicebroker.core.reasons import Reason
from slicebroker.inventory.domain.model import DeviceClaim, NodeClaim
from slicebroker.inventory.domain.service import InventoryService
from slicebroker.inventory.storage.store import RedisInventoryStore

from .support import H100, all_nodes, assert_consistent, claim, facility

CLIENTS = 200


async def _claim_any_free_device(service: InventoryService, seed: int) -> tuple[str, str] | None:
    """One client: read the pool, pick a free device at random, claim it against the generation it
    read; on a conflict read again. The device id it won and its grant, or None once the pool is full."""
    rng = random.Random(seed)
    grant = new_grant_id()
    while True:
        nodes = (await service.list_nodes(H100, 0, "")).nodes
        free = [(n, d) for n in nodes for d in n.devices if not d.holder]
        if not free:
            return None
        node, device = rng.choice(free)
        [result] = await service.claim([DeviceClaim(grant, (NodeClaim(node.id, node.generation, (device.id,)),))])
        if result.error is None:
            return device.id, grant
        assert isinstance(result.error, Conflict)
        assert result.error.reason in (Reason.GENERATION_CONFLICT, Reason.DEVICE_TAKEN)


async def test_200_clients_on_stale_reads_fill_a_64_device_pool_exactly(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    await service.load_facility(facility(("h", H100, 8, 8)))
    won = await asyncio.gather(*(_claim_any_free_device(service, seed) for seed in range(CLIENTS)))
    devices = [d for d, _ in filter(None, won)]
    assert len(devices) == 64
    assert len(set(devices)) == 64
    nodes = await all_nodes(store)
    holders = [d.holder for n in nodes for d in n.devices]
    assert len(set(holders)) == 64 and "" not in holders
    assert (await service.capacity())[0].free == 0
    assert len(await service.holders()) == 64
    await assert_consistent(store, client)


async def test_200_claims_on_one_read_race_for_4_devices(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    await service.load_facility(facility(("h", H100, 4, 8)))
    # Everyone read generation 1 and wants gpu0 of one of the four nodes.
    claims = [claim(f"h-n0{1 + i % 4}", 1, 0) for i in range(CLIENTS)]
    results = await asyncio.gather(*(service.claim([c]) for c in claims))
    winners = [r for [r] in results if r.error is None]
    assert len(winners) == 4
    assert all(isinstance(r.error, Conflict) for [r] in results if r.error is not None)
    held = {d.id: d.holder for n in await all_nodes(store) for d in n.devices if d.holder}
    assert sorted(held) == [f"h-n0{i}/gpu0" for i in range(1, 5)]
    assert sorted(held.values()) == sorted(r.grant_id for r in winners)
    await assert_consistent(store, client)


async def test_200_claimants_with_fresh_reads_of_one_device_leave_one_holder(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    await service.load_facility(facility(("h", H100, 1, 8)))

    async def contend() -> bool:
        grant = new_grant_id()
        while True:
            node = await service.get_node("h-n01")
            [result] = await service.claim([claim(node, node.generation, 3, grant=grant)])
            if result.error is None:
                return True
            if result.error.reason == Reason.DEVICE_TAKEN:
                return False
            assert result.error.reason == Reason.GENERATION_CONFLICT

    won = await asyncio.gather(*(contend() for _ in range(CLIENTS)))
    assert won.count(True) == 1
    await assert_consistent(store, client)


async def test_batched_claims_from_one_read_win_once_per_node(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    """Like the broker's coalescer: many claims per call, several calls in flight."""
    await service.load_facility(facility(("h", H100, 8, 8)))
    read = {n.id: n.generation for n in await all_nodes(store)}
    batch = 10
    # 200 claims, 10 per call, each for one device; every call starts from the same stale read.
    rng = random.Random(7)
    wanted = [(f"h-n0{rng.randint(1, 8)}", rng.randint(0, 7)) for _ in range(CLIENTS)]
    calls = [
        [claim(node_id, read[node_id], index) for node_id, index in wanted[i : i + batch]]
        for i in range(0, CLIENTS, batch)
    ]
    results = [r for rs in await asyncio.gather(*(service.claim(c) for c in calls)) for r in rs]
    won = [r.grant_id for r in results if r.error is None]
    # Each node can be claimed once against the shared read; a later claim sees a new generation.
    assert len(won) == len({node_id for node_id, _ in wanted})
    assert sorted(await service.holders()) == sorted(won)
    await assert_consistent(store, client)


async def test_200_concurrent_releases_free_each_device_once(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    await service.load_facility(facility(("h", H100, 8, 8)))
    grants = []
    for node in await all_nodes(store):
        batch = [claim(node, node.generation + i, i) for i in range(8)]
        assert all(r.error is None for r in await service.claim(batch))
        grants += [c.grant_id for c in batch]
    rng = random.Random(11)
    releases = [rng.sample(grants, 5) for _ in range(CLIENTS)] + [[g] for g in grants]
    outcomes = await asyncio.gather(*(service.release(r) for r in releases))
    assert sum(o.devices_released for o in outcomes) == 64
    assert (await service.capacity())[0].free == 64
    assert await service.holders() == ()
    await assert_consistent(store, client)


async def test_concurrent_grant_release_cycles_keep_the_counters_exact(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    """50 clients, 2 grant+release cycles each, over 16 devices: everyone gets their turn, no
    device is held by two clients at once, and everything is free at the end."""
    await service.load_facility(facility(("h", H100, 2, 8)))
    held_now: set[str] = set()

    async def cycles(seed: int) -> int:
        done = 0
        while done < 2:
            won = await _claim_any_free_device(service, seed * 10 + done)
            if won is None:  # the pool was full when we read it; holders release soon
                await asyncio.sleep(0)
                continue
            device, grant = won
            assert device not in held_now
            held_now.add(device)
            await asyncio.sleep(0)
            held_now.discard(device)
            assert (await service.release([grant])).devices_released == 1
            done += 1
        return done

    assert sum(await asyncio.gather(*(cycles(seed) for seed in range(50)))) == 100
    assert (await service.capacity())[0].free == 16
    assert await service.holders() == ()
    await assert_consistent(store, client)
