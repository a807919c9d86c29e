"""release.lua against real Redis: every device of each grant freed, one generation step per
node per call, idempotent, and the stale-read guard of the two-step release."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from slicebroker.core.ids import new_grant_id
from slicebroker.inventory.domain.model import DeviceClaim, NodeClaim, NodeGeneration
from slicebroker.inventory.domain.service import InventoryService
from slicebroker.inventory.storage.store import RedisInventoryStore

from .support import H100, PREFIX, all_nodes, assert_consistent, claim, facility


@pytest.fixture(autouse=True)
async def two_nodes(service: InventoryService) -> None:
    await service.load_facility(facility(("h", H100, 2, 8)))


async def test_release_frees_every_device_of_the_grant(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    gang = DeviceClaim(
        new_grant_id(),
        (NodeClaim("h-n01", 1, ("h-n01/gpu0", "h-n01/gpu1")), NodeClaim("h-n02", 1, ("h-n02/gpu5",))),
    )
    await service.claim([gang])
    released = await service.release([gang.grant_id])
    assert released.devices_released == 3
    assert released.generations == (NodeGeneration("h-n01", 3), NodeGeneration("h-n02", 3))
    assert all(d.holder == "" for n in await all_nodes(store) for d in n.devices)
    assert (await service.capacity())[0].free == 16
    assert await service.holders() == ()
    assert not await client.exists(store.keys.grant(gang.grant_id))
    await assert_consistent(store, client)


async def test_release_is_idempotent_and_unknown_grants_are_no_ops(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    grant = claim("h-n01", 1, 2)
    await service.claim([grant])
    await service.release([grant.grant_id])
    before = await all_nodes(store)
    again = await service.release([grant.grant_id, new_grant_id(), grant.grant_id])
    assert (again.devices_released, again.generations) == (0, ())
    assert await all_nodes(store) == before
    await assert_consistent(store, client)


async def test_one_generation_step_per_node_however_many_grants(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    grants = [claim("h-n01", 1 + i, i) for i in range(4)]
    for g in grants:
        assert (await service.claim([g]))[0].error is None
    kept = grants.pop()
    released = await service.release([g.grant_id for g in grants])
    assert released.devices_released == 3
    assert released.generations == (NodeGeneration("h-n01", 6),)
    assert await service.holders() == (kept.grant_id,)
    await assert_consistent(store, client)


async def test_an_unhealthy_held_device_stays_unhealthy_and_is_not_counted_free(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    grant = claim("h-n01", 1, 0, 1)
    await service.claim([grant])
    # What the health script will do to a held device that fails.
    await client.hset(store.keys.node("h-n01"), "gpu1", "!" + grant.grant_id)
    await client.hincrby(store.keys.capacity, f"{H100}|unhealthy", 1)
    await assert_consistent(store, client)
    released = await service.release([grant.grant_id])
    assert released.devices_released == 2
    device = (await service.get_node("h-n01")).devices[1]
    assert (device.healthy, device.holder) == (False, "")
    capacity = (await service.capacity())[0]
    assert (capacity.free, capacity.unhealthy) == (15, 1)
    await assert_consistent(store, client)


async def test_the_script_refuses_when_the_grant_gained_a_node_since_it_was_read(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    gid = new_grant_id()
    await service.claim([claim("h-n01", 1, 0, grant=gid), claim("h-n02", 1, 0, grant=gid)])
    before = await all_nodes(store)
    keys = store.keys
    # As if the caller had read the grant before its claim on h-n02.
    reply = await store.scripts(
        "release",
        [keys.holders, keys.capacity, keys.revision, keys.changes, keys.grant(gid), keys.node("h-n01")],
        [1, 1000, gid, 1, "h-n01"],
    )
    assert reply == ["STALE"]
    assert await all_nodes(store) == before
    assert (await service.release([gid])).devices_released == 2
    await assert_consistent(store, client)


async def test_a_replica_that_missed_part_of_a_grant_still_releases_all_of_it(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    """Each replica remembers the nodes of the grants it claimed; a guess that misses a node is
    caught by the script (STALE) and the replica reads the grant instead."""
    other = RedisInventoryStore(client, PREFIX)
    await other.load_scripts()
    gid = new_grant_id()
    await service.claim([claim("h-n01", 1, 0, grant=gid)])
    await InventoryService(other).claim([claim("h-n02", 1, 0, grant=gid)])
    released = await service.release([gid])  # this replica only knows about h-n01
    assert released.devices_released == 2
    assert released.generations == (NodeGeneration("h-n01", 3), NodeGeneration("h-n02", 3))
    await assert_consistent(store, client)


async def test_a_replica_that_never_saw_the_grant_reads_it(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    forgetful = RedisInventoryStore(client, PREFIX, remembered_grants=0)
    await forgetful.load_scripts()
    gid = new_grant_id()
    await InventoryService(forgetful).claim([claim("h-n01", 1, 0, 1, grant=gid)])
    assert (await InventoryService(forgetful).release([gid])).devices_released == 2
    await assert_consistent(store, client)
