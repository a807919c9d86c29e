"""Host CPU and memory on nodes, against real Redis: a claim takes them with its devices and
release gives them back; concurrent claims never over-commit a node's CPU or memory."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
import yaml

from slicebroker.core.errors import Conflict, InvalidArgument
from slicebroker.core.ids import new_grant_id
from slicebroker.core.reasons import Reason
from slicebroker.inventory.domain.model import DeviceClaim, NodeClaim
from slicebroker.inventory.domain.service import InventoryService
from slicebroker.inventory.storage.store import RedisInventoryStore

from .support import H100, all_nodes, assert_consistent

GIB = 1024


def host_facility(cpu_milli: int, memory_mib: int, nodes: int = 1, devices: int = 8) -> str:
    group: dict[str, object] = {"prefix": "h-n", "count": nodes, "sku": H100, "devices": devices}
    if cpu_milli:
        group["cpu_milli"] = cpu_milli
    if memory_mib:
        group["memory_mib"] = memory_mib
    return yaml.safe_dump({"sites": [{"name": "daejeon", "racks": [{"name": "h", "node_groups": [group]}]}]})


def host_claim(
    node_id: str, generation: int, devices: tuple[int, ...], cpu: int, mem: int, grant: str = ""
) -> DeviceClaim:
    return DeviceClaim(
        grant or new_grant_id(),
        (NodeClaim(node_id, generation, tuple(f"{node_id}/gpu{i}" for i in devices), cpu_milli=cpu, memory_mib=mem),),
    )


async def test_a_claim_takes_host_resources_and_release_gives_them_back(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    await service.load_facility(host_facility(16_000, 64 * GIB))
    grant = host_claim("h-n01", 1, (0, 1), 8_000, 32 * GIB)
    [result] = await service.claim([grant])
    assert result.error is None
    node = await service.get_node("h-n01")
    assert (node.cpu_milli, node.memory_mib) == (16_000, 64 * GIB)
    assert (node.cpu_milli_used, node.memory_mib_used) == (8_000, 32 * GIB)
    await assert_consistent(store, client)
    # A replay of the same claim charges nothing more.
    [replay] = await service.claim([grant])
    assert replay.error is None
    assert (await service.get_node("h-n01")).cpu_milli_used == 8_000
    await service.release([grant.grant_id])
    node = await service.get_node("h-n01")
    assert (node.cpu_milli_used, node.memory_mib_used) == (0, 0)
    await service.release([grant.grant_id])  # idempotent: nothing is given back twice
    assert (await service.get_node("h-n01")).cpu_milli_used == 0
    await assert_consistent(store, client)


@pytest.mark.parametrize(
    ("cpu", "mem", "fits"),
    [(16_000, 0, True), (16_001, 0, False), (0, 64 * GIB, True), (0, 64 * GIB + 1, False), (1, 1, True)],
)
async def test_a_claim_beyond_the_node_s_host_capacity_is_refused_and_writes_nothing(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis, cpu: int, mem: int, fits: bool
) -> None:
    await service.load_facility(host_facility(16_000, 64 * GIB))
    before = await all_nodes(store)
    [result] = await service.claim([host_claim("h-n01", 1, (0,), cpu, mem)])
    if fits:
        assert result.error is None
        return
    assert isinstance(result.error, Conflict) and result.error.reason == Reason.HOST_RESOURCES_TAKEN
    assert result.error.metadata["node_id"] == "h-n01"
    assert await all_nodes(store) == before
    await assert_consistent(store, client)


async def test_a_node_that_declares_no_host_capacity_takes_no_host_request(service: InventoryService) -> None:
    await service.load_facility(host_facility(0, 0))
    [refused] = await service.claim([host_claim("h-n01", 1, (0,), 1, 0)])
    assert isinstance(refused.error, Conflict) and refused.error.reason == Reason.HOST_RESOURCES_TAKEN
    [plain] = await service.claim([host_claim("h-n01", 1, (0,), 0, 0)])
    assert plain.error is None


async def test_bad_host_amounts_name_the_field_and_change_nothing(
    service: InventoryService, store: RedisInventoryStore
) -> None:
    await service.load_facility(host_facility(16_000, 64 * GIB))
    before = await all_nodes(store)
    with pytest.raises(InvalidArgument) as err:
        await service.claim([host_claim("h-n01", 1, (0,), -1, 0)])
    assert err.value.field == "claims[0].nodes[0].cpu_milli"
    with pytest.raises(InvalidArgument) as err:
        await service.register_node("x-n01", "daejeon", "x", H100, 8, memory_mib=-5)
    assert err.value.field == "memory_mib"
    with pytest.raises(InvalidArgument) as err:
        await service.load_facility(host_facility(-1, 0))
    assert "cpu_milli" in err.value.field
    assert await all_nodes(store) == before


async def test_register_node_sets_host_capacity_and_facility_export_round_trips(service: InventoryService) -> None:
    node = await service.register_node("x-n01", "daejeon", "x", H100, 8, cpu_milli=224_000, memory_mib=2048 * GIB)
    assert (node.cpu_milli, node.memory_mib) == (224_000, 2048 * GIB)
    again = await service.register_node("x-n01", "daejeon", "x", H100, 8, cpu_milli=224_000, memory_mib=2048 * GIB)
    assert again.generation == node.generation  # the same description is a no-op
    await service.load_facility(host_facility(16_000, 64 * GIB, nodes=3))
    document, _, _ = await service.export_facility()
    assert {"cpu_milli": 16_000, "memory_mib": 64 * GIB}.items() <= _groups(document)[0].items()
    outcome = await service.load_facility(yaml.safe_dump(document))
    assert outcome.nodes_registered == 0  # the export reads back as the same nodes
    assert (await service.get_node("h-n03")).cpu_milli == 16_000
    assert (await service.get_node("x-n01")).memory_mib == 2048 * GIB


def _groups(document: dict[str, object]) -> list[dict[str, object]]:
    text = yaml.safe_dump(document)
    return [
        g for site in yaml.safe_load(text)["sites"] for r in site.get("racks", []) for g in r.get("node_groups", [])
    ]


CLIENTS = 40


async def _claim_one_with_cpu(service: InventoryService, cpu: int) -> str | None:
    """One client: read the node, claim a free device with `cpu` milli-CPU against the generation it
    read; retry on a stale read; None once the node has no CPU left for it."""
    grant = new_grant_id()
    while True:
        node = await service.get_node("h-n01")
        free = [d for d in node.devices if not d.holder]
        if not free:
            return None
        [result] = await service.claim([host_claim("h-n01", node.generation, (free[0].index,), cpu, 0, grant)])
        if result.error is None:
            return grant
        assert isinstance(result.error, Conflict)
        if result.error.reason == Reason.HOST_RESOURCES_TAKEN:
            return None
        assert result.error.reason in (Reason.GENERATION_CONFLICT, Reason.DEVICE_TAKEN)


async def test_40_concurrent_claims_on_a_node_whose_cpu_allows_3_grant_exactly_3(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    # 8 free GPUs but CPU for only 3 claims of 1,000 milli-CPU each.
    await service.load_facility(host_facility(3_500, 64 * GIB))
    won = [g for g in await asyncio.gather(*(_claim_one_with_cpu(service, 1_000) for _ in range(CLIENTS))) if g]
    assert len(won) == 3
    node = await service.get_node("h-n01")
    assert node.cpu_milli_used == 3_000
    assert sum(1 for d in node.devices if d.holder) == 3
    await assert_consistent(store, client)
    # Releasing one makes room for exactly one more.
    await service.release(won[:1])
    again = [g for g in await asyncio.gather(*(_claim_one_with_cpu(service, 1_000) for _ in range(10))) if g]
    assert len(again) == 1
    await assert_consistent(store, client)


async def test_one_read_many_claims_in_one_batch_never_over_commit(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis
) -> None:
    """Claims in one batch on different nodes each see the CPU the earlier ones took."""
    await service.load_facility(host_facility(2_000, 0, nodes=2))
    batch = [host_claim(f"h-n0{1 + i % 2}", 1 + i // 2, (i // 2,), 1_000, 0) for i in range(6)]
    results = await service.claim(batch)
    ok = [r for r in results if r.error is None]
    assert len(ok) == 4
    for node in await all_nodes(store):
        assert node.cpu_milli_used == 2_000
    await assert_consistent(store, client)
