"""register.lua against real Redis: idempotent registration, reshaping only while free, counters
and indexes kept by the script, chunked loads that refuse before writing."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from slicebroker.core.errors import FailedPrecondition
from slicebroker.core.reasons import Reason
from slicebroker.inventory.domain.model import DeviceKind, NodeSpec
from slicebroker.inventory.domain.service import InventoryService
from slicebroker.inventory.storage.store import RedisInventoryStore

from .support import H100, PREFIX, all_nodes, assert_consistent, claim, facility


async def test_new_nodes_start_free_at_generation_1(service: InventoryService, store: RedisInventoryStore) -> None:
    loaded = await service.load_facility(facility(("h", H100, 2, 8), ("r", "RNGD", 1, 4)))
    assert (loaded.nodes_registered, loaded.nodes_unchanged, loaded.devices) == (3, 0, 20)
    node = await service.get_node("r-n01")
    assert (node.site, node.rack, node.sku, node.generation, node.schedulable) == (
        "daejeon",
        "r",
        "RNGD",
        1,
        True,
    )
    assert [d.id for d in node.devices] == ["r-n01/npu0", "r-n01/npu1", "r-n01/npu2", "r-n01/npu3"]
    assert all(d.healthy and d.holder == "" and d.sku == "RNGD" for d in node.devices)
    capacity = {c.sku: c for c in await service.capacity()}
    assert (capacity[H100].nodes, capacity[H100].devices, capacity[H100].free) == (2, 16, 16)
    assert list(capacity) == [H100, "RNGD"]  # catalogue order, only SKUs with nodes


async def test_reloading_the_same_facility_changes_nothing(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    text = facility(("h", H100, 3, 8))
    await service.load_facility(text)
    before = await all_nodes(store)
    again = await service.load_facility(text)
    assert (again.nodes_registered, again.nodes_unchanged) == (0, 3)
    assert await all_nodes(store) == before
    await assert_consistent(store, client)


async def test_moving_a_held_node_to_another_rack_keeps_its_devices(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    await service.load_facility(facility(("h", H100, 1, 8)))
    grant = claim("h-n01", 1, 0)
    await service.claim([grant])
    moved = await service.register_node("h-n01", "gwangju", "h9", H100, 8)
    assert (moved.site, moved.rack, moved.generation) == ("gwangju", "h9", 3)
    assert moved.devices[0].holder == grant.grant_id
    await assert_consistent(store, client)


async def test_a_held_node_cannot_change_shape(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    await service.load_facility(facility(("h", H100, 2, 8)))
    await service.claim([claim("h-n02", 1, 5)])
    before = await all_nodes(store)
    for reshaped in (facility(("h", H100, 2, 4), ("x", H100, 1, 8)), facility(("h", "H200-SXM-141GB", 2, 8))):
        with pytest.raises(FailedPrecondition) as caught:
            await service.load_facility(reshaped)
        assert caught.value.reason == Reason.NODE_SHAPE_CHANGED
        assert caught.value.metadata == {"node_id": "h-n02", "held": "1"}
    with pytest.raises(FailedPrecondition):
        await service.register_node("h-n02", "daejeon", "h", "RNGD", 8)
    # Nothing was written: not the free node h-n01 of the same call, not the new rack x.
    assert await all_nodes(store) == before
    await assert_consistent(store, client)


async def test_a_free_node_is_reshaped_and_moves_between_skus(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    await service.load_facility(facility(("h", H100, 2, 8)))
    grant = claim("h-n01", 1, 0)
    await service.claim([grant])
    await service.release([grant.grant_id])
    node = await service.register_node("h-n01", "daejeon", "h", "ATOM", 4)
    assert node.generation == 4  # claim, release, reshape
    assert [d.id for d in node.devices] == [f"h-n01/npu{i}" for i in range(4)]
    assert await client.hget(store.keys.node("h-n01"), "gpu7") is None
    assert [n.id for n in (await service.list_nodes("ATOM", 0, "")).nodes] == ["h-n01"]
    assert [n.id for n in (await service.list_nodes(H100, 0, "")).nodes] == ["h-n02"]
    capacity = {c.sku: c for c in await service.capacity()}
    assert (capacity[H100].nodes, capacity[H100].free, capacity["ATOM"].nodes, capacity["ATOM"].free) == (
        1,
        8,
        1,
        4,
    )
    await assert_consistent(store, client)


async def test_reshaping_drops_unhealthy_devices_from_the_counters(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    await service.load_facility(facility(("h", H100, 1, 8)))
    # No RPC marks a device unhealthy yet; write what the health script will write.
    await client.hset(store.keys.node("h-n01"), "gpu3", "!")
    await client.hincrby(store.keys.capacity, f"{H100}|free", -1)
    await client.hincrby(store.keys.capacity, f"{H100}|unhealthy", 1)
    await assert_consistent(store, client)
    await service.register_node("h-n01", "daejeon", "h", H100, 6)
    capacity = (await service.capacity())[0]
    assert (capacity.devices, capacity.free, capacity.unhealthy) == (6, 6, 0)
    await assert_consistent(store, client)


async def test_a_chunked_load_refuses_before_any_chunk_is_written(client: aioredis.Redis) -> None:
    store = RedisInventoryStore(client, PREFIX, register_chunk_nodes=3)
    await store.load_scripts()
    service = InventoryService(store)
    loaded = await service.load_facility(facility(("a", H100, 5, 8), ("b", H100, 5, 8)))
    assert (loaded.nodes_registered, loaded.nodes_unchanged) == (10, 0)
    await service.claim([claim("b-n05", 1, 0)])
    before = await all_nodes(store)
    with pytest.raises(FailedPrecondition, match=r"'b-n05' \(sites\[0\]\.racks\[1\]\.node_groups\[0\]\)"):
        await service.load_facility(facility(("a", H100, 5, 4), ("b", H100, 5, 4)))
    assert await all_nodes(store) == before
    reloaded = await service.load_facility(facility(("a", H100, 5, 8), ("b", H100, 5, 8), ("c", "REBEL", 4, 2)))
    assert (reloaded.nodes_registered, reloaded.nodes_unchanged) == (4, 10)
    await assert_consistent(store, client)


async def test_the_demo_facility(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis, examples_dir: Path
) -> None:
    text = (examples_dir / "facility.yaml").read_text()
    loaded = await service.load_facility(text)
    assert (loaded.nodes_registered, loaded.nodes_unchanged, loaded.devices) == (304, 0, 2432)
    assert sum(c.free for c in await service.capacity()) == 2432
    again = await service.load_facility(text)
    assert (again.nodes_registered, again.nodes_unchanged) == (0, 304)
    node = await service.get_node("atom-r003-n08")
    assert (node.site, node.sku, len(node.devices)) == ("gwangju", "ATOM", 8)
    await assert_consistent(store, client)


async def test_store_register_reports_counts(store: RedisInventoryStore) -> None:
    spec = NodeSpec("n1", "s", "r", "B200-SXM-180GB", DeviceKind.GPU, 8)
    first = await store.register([spec])
    again = await store.register([spec, NodeSpec("n2", "s", "r", "REBEL", DeviceKind.NPU, 4)])
    assert (first.registered, first.unchanged, again.registered, again.unchanged) == (1, 0, 1, 1)
    assert await store.register([]) == type(first)(0, 0)


async def test_a_mig_layout_is_stored_replaced_and_cleared(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    node = await service.register_node("m-n01", "daejeon", "m", H100, 2, mig_layout={"3g.40gb": 2, "1g.10gb": 7})
    # Stored sorted by profile: the same layout in any order is the same registration.
    assert (node.mig_layout, node.generation) == ((("1g.10gb", 7), ("3g.40gb", 2)), 1)
    assert await client.hget(f"{{{PREFIX}}}:node:m-n01", "mig") == "1g.10gb:7 3g.40gb:2"
    same = await service.register_node("m-n01", "daejeon", "m", H100, 2, mig_layout={"1g.10gb": 7, "3g.40gb": 2})
    assert same == node
    replaced = await service.register_node("m-n01", "daejeon", "m", H100, 2, mig_layout={"7g.80gb": 2})
    assert (replaced.mig_layout, replaced.generation) == ((("7g.80gb", 2),), 2)
    cleared = await service.register_node("m-n01", "daejeon", "m", H100, 2)
    assert (cleared.mig_layout, cleared.generation) == ((), 3)
    await assert_consistent(store, client)


async def test_a_node_stored_before_mig_layouts_is_unchanged_by_the_same_registration(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    await service.register_node("old-n01", "daejeon", "o", H100, 8)
    # A hash written before the field existed has no `mig` at all.
    await client.hdel(f"{{{PREFIX}}}:node:old-n01", "mig")
    again = await service.register_node("old-n01", "daejeon", "o", H100, 8)
    assert (again.mig_layout, again.generation) == ((), 1)
