"""claim.lua against real Redis: each claim all-or-nothing against node generations, replays
idempotent, batches applied in order, and the counters kept exact."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from slicebroker.core.errors import Conflict, FailedPrecondition, NotFound
from slicebroker.core.ids import new_grant_id
from slicebroker.core.reasons import Reason
from slicebroker.inventory.domain.model import DeviceClaim, NodeClaim, NodeGeneration
from slicebroker.inventory.domain.service import InventoryService
from slicebroker.inventory.storage.store import RedisInventoryStore

from .support import H100, all_nodes, assert_consistent, claim, facility


@pytest.fixture(autouse=True)
async def two_nodes(service: InventoryService) -> None:
    """n1 and n2: 8 H100 each; r1: 4 RNGD."""
    await service.load_facility(facility(("h", H100, 2, 8), ("r", "RNGD", 1, 4)))


async def test_a_claim_holds_its_devices_and_steps_the_generation(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    grant = claim("h-n01", 1, 0, 3)
    [result] = await service.claim([grant])
    assert result.error is None
    assert result.generations == (NodeGeneration("h-n01", 2),)
    node = await service.get_node("h-n01")
    assert [d.holder for d in node.devices] == [grant.grant_id, "", "", grant.grant_id, "", "", "", ""]
    assert node.generation == 2
    assert (await service.capacity())[0].free == 14
    assert await service.holders() == (grant.grant_id,)
    assert await client.hgetall(store.keys.grant(grant.grant_id)) == {"h-n01": "gpu0 gpu3"}
    await assert_consistent(store, client)


async def test_a_replay_succeeds_and_changes_nothing(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    grant = claim("h-n01", 1, 0, 1)
    await service.claim([grant])
    await service.claim([claim("h-n01", 2, 5)])  # someone else moves the node on
    before = await all_nodes(store)
    [replay] = await service.claim([grant])  # still says generation 1
    assert replay.error is None
    assert replay.generations == (NodeGeneration("h-n01", 3),)
    assert await all_nodes(store) == before
    await assert_consistent(store, client)


async def test_extending_a_claim_needs_a_fresh_generation(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    gid = new_grant_id()
    await service.claim([claim("h-n01", 1, 0, grant=gid)])
    [stale] = await service.claim([claim("h-n01", 1, 0, 1, grant=gid)])
    assert isinstance(stale.error, Conflict) and stale.error.reason == Reason.GENERATION_CONFLICT
    [fresh] = await service.claim([claim("h-n01", 2, 0, 1, grant=gid)])
    assert fresh.error is None and fresh.generations == (NodeGeneration("h-n01", 3),)
    assert await client.hgetall(store.keys.grant(gid)) == {"h-n01": "gpu0 gpu1"}
    await assert_consistent(store, client)


async def test_a_multi_node_claim_is_all_or_nothing(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    await service.claim([claim("h-n02", 1, 7)])
    before = await all_nodes(store)
    gang = DeviceClaim(
        new_grant_id(),
        (
            NodeClaim("h-n01", 1, ("h-n01/gpu0", "h-n01/gpu1")),
            NodeClaim("h-n02", 2, ("h-n02/gpu6", "h-n02/gpu7")),
        ),
    )
    [result] = await service.claim([gang])
    assert isinstance(result.error, Conflict)
    assert result.error.reason == Reason.DEVICE_TAKEN
    assert result.error.metadata == {"node_id": "h-n02", "device_id": "h-n02/gpu7"}
    assert result.generations == (NodeGeneration("h-n01", 1), NodeGeneration("h-n02", 2))
    assert await all_nodes(store) == before
    await assert_consistent(store, client)


async def test_each_refusal_has_its_reason(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    await service.claim([claim("h-n02", 1, 0)])
    await client.hset(store.keys.node("r-n01"), "npu2", "!")  # unhealthy, as the health script will mark it
    await client.hset(store.keys.node("h-n01"), "sched", "0")  # cordoned
    before = await all_nodes(store)
    cases = [
        (claim("nope", 1, 0), NotFound, Reason.NODE_NOT_FOUND, {"node_id": "nope"}),
        (claim("h-n01", 1, 0), FailedPrecondition, Reason.NODE_NOT_SCHEDULABLE, {"node_id": "h-n01"}),
        (
            claim("h-n02", 1, 1),
            Conflict,
            Reason.GENERATION_CONFLICT,
            {"node_id": "h-n02", "expected_generation": "1", "generation": "2"},
        ),
        (
            claim("h-n02", 2, 8),
            NotFound,
            Reason.DEVICE_NOT_FOUND,
            {"node_id": "h-n02", "device_id": "h-n02/gpu8"},
        ),
        (
            claim("h-n02", 2, 1, kind="npu"),
            NotFound,
            Reason.DEVICE_NOT_FOUND,
            {"node_id": "h-n02", "device_id": "h-n02/npu1"},
        ),
        (
            claim("r-n01", 1, 1, 2, kind="npu"),
            FailedPrecondition,
            Reason.DEVICE_UNHEALTHY,
            {"node_id": "r-n01", "device_id": "r-n01/npu2"},
        ),
        (
            claim("h-n02", 2, 1, 0),
            Conflict,
            Reason.DEVICE_TAKEN,
            {"node_id": "h-n02", "device_id": "h-n02/gpu0"},
        ),
    ]
    results = await service.claim([case[0] for case in cases])
    for (_, kind, reason, metadata), result in zip(cases, results, strict=True):
        assert isinstance(result.error, kind), result
        assert result.error.reason == reason
        assert result.error.metadata == metadata
    assert results[0].generations == ()
    assert await all_nodes(store) == before


async def test_a_batch_applies_claims_in_order_and_later_ones_see_earlier_writes(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    first, second, stale, other = (
        claim("h-n01", 1, 0),
        claim("h-n01", 2, 1),
        claim("h-n01", 1, 2),
        claim("h-n02", 1, 0),
    )
    results = await service.claim([first, second, stale, other])
    assert [r.error is None for r in results] == [True, True, False, True]
    assert [r.generations for r in results] == [
        (NodeGeneration("h-n01", 2),),
        (NodeGeneration("h-n01", 3),),
        (NodeGeneration("h-n01", 3),),
        (NodeGeneration("h-n02", 2),),
    ]
    assert [r.grant_id for r in results] == [c.grant_id for c in (first, second, stale, other)]
    await assert_consistent(store, client)


async def test_the_same_grant_twice_in_a_batch_is_a_replay(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    grant = claim("h-n01", 1, 4)
    results = await service.claim([grant, grant])
    assert [(r.error, r.generations) for r in results] == [(None, (NodeGeneration("h-n01", 2),))] * 2
    await assert_consistent(store, client)


async def test_claims_across_skus_keep_their_own_counters(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    await service.claim([claim("r-n01", 1, 0, 1, 2, 3, kind="npu"), claim("h-n02", 1, 3)])
    capacity = {c.sku: c.free for c in await service.capacity()}
    assert capacity == {H100: 15, "RNGD": 0}
    await assert_consistent(store, client)
