"""Node lifecycle over real Redis (lifecycle.lua): heartbeats with device health, cordon / drain,
device failure marking, removal only when empty; every write compare-and-increment on the node
generation, and the counters exact throughout."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
import yaml

from slicebroker.core.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from slicebroker.core.facility_generator import FacilityShape, generate_yaml
from slicebroker.core.reasons import Reason
from slicebroker.inventory.domain.model import NodeState, Subtree
from slicebroker.inventory.domain.service import InventoryService
from slicebroker.inventory.storage.store import RedisInventoryStore

from .support import H100, all_nodes, assert_consistent, claim, facility

NOW = 1_700_000_000_000


async def test_cordon_stops_claims_and_drain_lists_the_grants(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    await service.load_facility(facility(("h", H100, 1, 8)))
    [held] = await service.claim([claim("h-n01", 1, 0, 1)])
    node, grants = await service.set_node_state("h-n01", 2, "cordoned", NOW)
    assert (node.state, node.schedulable, node.generation, grants) == (NodeState.CORDONED, False, 3, (held.grant_id,))
    [refused] = await service.claim([claim("h-n01", 3, 2)])
    assert refused.error is not None and refused.error.reason is Reason.NODE_NOT_SCHEDULABLE
    node, grants = await service.set_node_state("h-n01", 3, "draining", NOW)
    assert (node.state, grants) == (NodeState.DRAINING, (held.grant_id,))
    node, _ = await service.set_node_state("h-n01", 4, "active", NOW)
    assert node.schedulable and node.generation == 5
    [ok] = await service.claim([claim("h-n01", 5, 2)])
    assert ok.error is None
    await assert_consistent(store, client)


async def test_a_stale_generation_is_a_conflict_and_changes_nothing(service: InventoryService) -> None:
    await service.load_facility(facility(("h", H100, 1, 8)))
    before = await service.get_node("h-n01")
    for call in (
        service.set_node_state("h-n01", 7, "cordoned", NOW),
        service.set_device_health("h-n01", 7, [("gpu1", False)], NOW),
        service.remove_node("h-n01", 7, NOW),
    ):
        with pytest.raises(Conflict) as caught:
            await call
        assert caught.value.reason is Reason.GENERATION_CONFLICT
        assert caught.value.metadata["generation"] == "1"
    assert await service.get_node("h-n01") == before


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.set_node_state("h-n01", 1, "asleep", NOW), "state"),
        (lambda s: s.set_node_state("h-n01", 0, "cordoned", NOW), "expected_generation"),
        (lambda s: s.set_device_health("h-n01", 1, [("gpu1", False), ("gpu1", True)], NOW), "devices[1].device"),
        (lambda s: s.set_device_health("h-n01", 1, [("other/gpu1", False)], NOW), "devices[0].device"),
        (lambda s: s.set_device_health("h-n01", 1, [], NOW), "devices"),
        (lambda s: s.heartbeat("H-N01", [], NOW), "node_id"),
    ],
)
async def test_bad_lifecycle_input_names_the_field(service: InventoryService, call: object, field: str) -> None:
    await service.load_facility(facility(("h", H100, 1, 8)))
    before = await service.get_node("h-n01")
    with pytest.raises(InvalidArgument) as caught:
        await call(service)  # type: ignore[operator]
    assert caught.value.field == field
    assert await service.get_node("h-n01") == before


async def test_device_failure_and_repair_keep_the_counters_exact(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    await service.load_facility(facility(("h", H100, 1, 8)))
    [held] = await service.claim([claim("h-n01", 1, 0)])
    node = await service.set_device_health("h-n01", 2, [("gpu0", False), ("h-n01/gpu5", False)], NOW)
    assert [d.healthy for d in node.devices] == [False, True, True, True, True, False, True, True]
    assert node.devices[0].holder == held.grant_id  # still held: the broker decides what to do
    assert node.generation == 3
    cap = (await service.capacity())[0]
    assert (cap.free, cap.unhealthy) == (6, 2)
    await assert_consistent(store, client)
    [refused] = await service.claim([claim("h-n01", 3, 5)])
    assert refused.error is not None and refused.error.reason is Reason.DEVICE_UNHEALTHY
    await service.release([held.grant_id])
    node = await service.set_device_health("h-n01", 4, [("gpu0", True), ("gpu5", True)], NOW)
    assert all(d.healthy and not d.holder for d in node.devices)
    assert (await service.capacity())[0].free == 8
    with pytest.raises(NotFound) as caught:
        await service.set_device_health("h-n01", 5, [("gpu8", False)], NOW)
    assert caught.value.reason is Reason.DEVICE_NOT_FOUND
    await assert_consistent(store, client)


async def test_heartbeats_record_liveness_and_bump_the_generation_only_on_a_health_change(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    await service.load_facility(facility(("h", H100, 1, 8)))
    node = await service.heartbeat("h-n01", [("gpu0", True)], NOW)
    assert (node.generation, node.last_heartbeat_ms) == (1, NOW)
    node = await service.heartbeat("h-n01", [("gpu0", True), ("gpu3", False)], NOW + 5)
    assert (node.generation, node.last_heartbeat_ms, node.devices[3].healthy) == (2, NOW + 5, False)
    with pytest.raises(NotFound):
        await service.heartbeat("ghost", [], NOW)
    await assert_consistent(store, client)


async def test_removal_only_when_empty(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    await service.load_facility(facility(("h", H100, 2, 8)))
    [held] = await service.claim([claim("h-n01", 1, 3)])
    with pytest.raises(FailedPrecondition) as caught:
        await service.remove_node("h-n01", 2, NOW)
    assert caught.value.reason is Reason.NODE_NOT_EMPTY and held.grant_id in caught.value.message
    await service.release([held.grant_id])
    await service.remove_node("h-n01", 3, NOW)
    assert [n.id for n in await all_nodes(store)] == ["h-n02"]
    cap = (await service.capacity())[0]
    assert (cap.nodes, cap.devices, cap.free) == (1, 8, 8)
    with pytest.raises(NotFound):
        await service.get_node("h-n01")
    await assert_consistent(store, client)
    # Registering it again starts it afresh.
    await service.load_facility(facility(("h", H100, 2, 8)))
    assert (await service.get_node("h-n01")).generation == 1


async def test_concurrent_cordons_on_one_generation_succeed_exactly_once(service: InventoryService) -> None:
    await service.load_facility(facility(("h", H100, 1, 8)))

    async def cordon(i: int) -> bool:
        try:
            await service.set_node_state("h-n01", 1, "cordoned" if i % 2 else "draining", NOW)
        except Conflict:
            return False
        return True

    wins = await asyncio.gather(*(cordon(i) for i in range(200)))
    assert sum(wins) == 1
    assert (await service.get_node("h-n01")).generation == 2


async def test_concurrent_health_marks_count_each_device_once(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    """200 agents report failures at once (heartbeats are unconditional): the counters stay exact."""
    await service.load_facility(facility(("h", H100, 4, 8)))
    await asyncio.gather(
        *(service.heartbeat(f"h-n0{1 + i % 4}", [(f"gpu{i // 4 % 8}", False)], NOW) for i in range(200))
    )
    cap = (await service.capacity())[0]
    assert (cap.unhealthy, cap.free) == (32, 0)
    await assert_consistent(store, client)


async def test_subtree_capacity_and_leaf_neighbours(service: InventoryService) -> None:
    await service.load_facility(generate_yaml({H100: 640, "RNGD": 64}, FacilityShape(leaves_per_hall=2)))
    rows = await service.query_capacity(Subtree(), "", "hall")
    assert [(r.group, r.sku, r.devices, r.free) for r in rows] == [
        ("hall-01", H100, 512, 512),
        ("hall-02", H100, 128, 128),
        ("hall-03", "RNGD", 64, 64),
    ]
    (pod,) = await service.query_capacity(Subtree(hall="hall-01", pod="su-002"), H100, "")
    assert (pod.nodes, pod.devices, pod.free_units) == (32, 256, 256.0)
    leaf, members = await service.leaf_neighbours("h100-r0009-n01")
    assert leaf == "hall-01-su-002-leaf" and len(members) == 32 and "h100-r0009-n01" in members
    assert all(m.startswith("h100-r00") or m.startswith("h100-r001") for m in members)
    with pytest.raises(InvalidArgument) as caught:
        await service.query_capacity(Subtree(), "", "row")
    assert caught.value.field == "group_by"


async def test_a_facility_import_is_all_or_nothing(service: InventoryService, store: RedisInventoryStore) -> None:
    doc = yaml.safe_load(generate_yaml({H100: 64}))
    doc["sites"][0]["halls"][0]["pods"][0]["racks"][1]["node_groups"][0]["sku"] = "V100"
    with pytest.raises(InvalidArgument):
        await service.load_facility(yaml.safe_dump(doc))
    assert await all_nodes(store) == []
    assert await store.revision() == 0


async def test_export_then_load_changes_nothing(service: InventoryService) -> None:
    await service.load_facility(generate_yaml({H100: 256, "ATOM": 20}))
    document, nodes, devices = await service.export_facility()
    assert (nodes, devices) == (35, 276)
    outcome = await service.load_facility(yaml.safe_dump(document))
    assert (outcome.nodes_registered, outcome.nodes_unchanged) == (0, 35)
