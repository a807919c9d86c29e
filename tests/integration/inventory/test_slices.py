"""Partitions and shares over real Redis (claim.lua / release.lua): MIG profiles coexist only
within the device's counters, shares only within 1000 milli-units, kinds never mix on one device,
whole and sliced never overlap, and concurrent claims never over-commit."""

from __future__ import annotations

import asyncio
import random

import pytest
import redis.asyncio as aioredis

from slicebroker.core.errors import InvalidArgument
from slicebroker.core.ids import new_grant_id
from slicebroker.core.reasons import Reason
from slicebroker.inventory.domain.model import ClaimResult, DeviceClaim, NodeClaim, SliceClaim
from slicebroker.inventory.domain.service import InventoryService
from slicebroker.inventory.storage.store import RedisInventoryStore

from .support import H100, all_nodes, assert_consistent, claim, facility

NOW = 1_700_000_000_000


def mig(profile: str, device: int = 0, node: str = "h-n01", kind: str = "gpu") -> SliceClaim:
    return SliceClaim(f"{node}/{kind}{device}", "mig" if kind == "gpu" else "npu_partition", profile)


def share(compute: int, memory: int, device: int = 0, node: str = "h-n01") -> SliceClaim:
    return SliceClaim(f"{node}/gpu{device}", "share", compute=compute, memory=memory)


async def take(service: InventoryService, *slices: SliceClaim, grant: str = "", node: str = "h-n01") -> ClaimResult:
    """One grant's slices on one node, against the node's current generation."""
    generation = (await service.get_node(node)).generation
    [result] = await service.claim([DeviceClaim(grant or new_grant_id(), (NodeClaim(node, generation, (), slices),))])
    return result


def failed(result: ClaimResult) -> Reason | None:
    return None if result.error is None else result.error.reason


@pytest.fixture
async def h100(service: InventoryService) -> None:
    await service.load_facility(facility(("h", H100, 1, 8), ("r", "RNGD", 1, 8)))


@pytest.mark.parametrize(
    ("profiles", "fits"),
    [
        (["7g.80gb"], True),
        (["4g.40gb", "3g.40gb"], True),
        (["4g.40gb", "2g.20gb", "1g.10gb"], True),
        (["3g.40gb", "3g.40gb"], True),
        (["3g.40gb", "3g.40gb", "1g.10gb"], False),  # memory slices: 4 + 4 + 1 > 8
        (["4g.40gb", "4g.40gb"], False),  # compute slices: 4 + 4 > 7
        (["1g.10gb"] * 7, True),
        (["1g.10gb"] * 8, False),
        (["1g.20gb"] * 4, True),
        (["1g.20gb"] * 4 + ["1g.10gb"], False),
        (["2g.20gb"] * 3 + ["1g.10gb"], True),
    ],
)
async def test_mig_profiles_coexist_within_the_counters(
    service: InventoryService,
    store: RedisInventoryStore,
    client: aioredis.Redis,
    h100: None,
    profiles: list[str],
    fits: bool,
) -> None:
    """Each profile in its own grant, one after the other: the last one fits or does not."""
    results = [await take(service, mig(p)) for p in profiles]
    assert all(r.error is None for r in results[:-1])
    assert failed(results[-1]) is (None if fits else Reason.DEVICE_TAKEN)
    if not fits:
        assert results[-1].error is not None and results[-1].error.metadata["slice_conflict"] == "True"
    await assert_consistent(store, client)


async def test_one_claim_with_too_many_partitions_writes_nothing(service: InventoryService, h100: None) -> None:
    before = await service.get_node("h-n01")
    result = await take(service, mig("4g.40gb"), mig("4g.40gb"))
    assert failed(result) is Reason.DEVICE_TAKEN
    assert result.error is not None and result.error.metadata["device_id"] == "h-n01/gpu0"
    assert await service.get_node("h-n01") == before


async def test_kinds_never_mix_and_whole_never_overlaps_sliced(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis, h100: None
) -> None:
    assert (await take(service, share(500, 250))).error is None
    assert failed(await take(service, mig("1g.10gb"))) is Reason.DEVICE_TAKEN
    assert (await take(service, share(500, 750))).error is None
    assert failed(await take(service, share(1, 1))) is Reason.DEVICE_TAKEN  # compute full
    node = await service.get_node("h-n01")
    [whole] = await service.claim([claim(node, node.generation, 0)])
    assert failed(whole) is Reason.DEVICE_TAKEN
    [whole] = await service.claim([claim(node, node.generation, 1)])
    assert whole.error is None
    assert failed(await take(service, mig("1g.10gb", device=1))) is Reason.DEVICE_TAKEN
    node = await service.get_node("h-n01")
    assert [len(d.slices) for d in node.devices[:2]] == [2, 0] and node.devices[1].holder == whole.grant_id
    cap = (await service.capacity())[0]
    assert cap.free == 6
    await assert_consistent(store, client)


async def test_npu_core_partitions(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis, h100: None
) -> None:
    two = [await take(service, mig("4core.24gb", kind="npu", node="r-n01"), node="r-n01") for _ in range(2)]
    assert all(r.error is None for r in two)
    assert failed(await take(service, mig("1core.6gb", kind="npu", node="r-n01"), node="r-n01")) is Reason.DEVICE_TAKEN
    await assert_consistent(store, client)


@pytest.mark.parametrize(
    ("piece", "field"),
    [
        (SliceClaim("h-n01/gpu0", "mig", "2core.12gb"), "claims[0].nodes[0].slices[0].profile"),
        (SliceClaim("h-n01/gpu0", "npu_partition", "1g.10gb"), "claims[0].nodes[0].slices[0].kind"),
        (SliceClaim("h-n01/gpu0", "mig", ""), "claims[0].nodes[0].slices[0].profile"),
        (SliceClaim("h-n01/gpu0", "time_slice", ""), "claims[0].nodes[0].slices[0].kind"),
        (SliceClaim("h-n01/gpu0", "share", compute=0, memory=10), "claims[0].nodes[0].slices[0].compute_milli"),
        (SliceClaim("h-n01/gpu0", "share", compute=10, memory=1001), "claims[0].nodes[0].slices[0].memory_milli"),
        (SliceClaim("h-n02/gpu0", "share", compute=10, memory=10), "claims[0].nodes[0].slices[0].device_id"),
    ],
)
async def test_bad_slices_name_the_field_and_write_nothing(
    service: InventoryService, h100: None, piece: SliceClaim, field: str
) -> None:
    before = await service.get_node("h-n01")
    with pytest.raises(InvalidArgument) as caught:
        await take(service, piece)
    assert caught.value.field == field, caught.value.message
    assert await service.get_node("h-n01") == before


async def test_a_share_on_an_npu_without_shares_is_bad_input(service: InventoryService, h100: None) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await take(service, SliceClaim("r-n01/npu0", "share", compute=10, memory=10), node="r-n01")
    assert caught.value.field == "claims[0].nodes[0].slices[0].kind"


async def test_replay_and_release_give_everything_back(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis, h100: None
) -> None:
    gid = new_grant_id()
    first = await take(service, mig("3g.40gb"), mig("1g.10gb"), mig("2g.20gb", device=3), grant=gid)
    assert first.error is None
    generation = (await service.get_node("h-n01")).generation
    # A replay with a stale generation succeeds and changes nothing.
    [again] = await service.claim(
        [DeviceClaim(gid, (NodeClaim("h-n01", 1, (), (mig("3g.40gb"), mig("1g.10gb"), mig("2g.20gb", device=3))),))]
    )
    assert again.error is None and (await service.get_node("h-n01")).generation == generation
    other = await take(service, mig("2g.20gb"))
    assert other.error is None
    # A device that fails while sliced stays out of the free pool after its slices go.
    await service.set_device_health("h-n01", generation + 1, [("gpu3", False)], NOW)
    await assert_consistent(store, client)
    released = await service.release([gid])
    assert released.devices_released == 2
    node = await service.get_node("h-n01")
    assert [(s.grant_id, s.profile) for s in node.devices[0].slices] == [(other.grant_id, "2g.20gb")]
    assert not node.devices[3].slices and not node.devices[3].healthy
    assert (await service.release([gid])).devices_released == 0
    await service.release([other.grant_id])
    cap = (await service.capacity())[0]
    assert (cap.free, cap.unhealthy) == (7, 1)
    await assert_consistent(store, client)
    assert await client.hget(store.keys.node("h-n01"), "sliced") == "0"


async def test_removal_and_reshape_wait_for_slices(service: InventoryService, h100: None) -> None:
    result = await take(service, share(10, 10))
    generation = (await service.get_node("h-n01")).generation
    with pytest.raises(Exception) as caught:
        await service.remove_node("h-n01", generation, NOW)
    assert getattr(caught.value, "reason", None) is Reason.NODE_NOT_EMPTY
    with pytest.raises(Exception) as caught:
        await service.load_facility(facility(("h", H100, 1, 4)))
    assert getattr(caught.value, "reason", None) is Reason.NODE_SHAPE_CHANGED
    await service.release([result.grant_id])
    await service.remove_node("h-n01", generation + 1, NOW)


CLIENTS = 200


async def _claim_until_full(service: InventoryService, piece: SliceClaim) -> bool:
    """One client: claim `piece` for a fresh grant, re-reading on generation conflicts; True if it
    won, False once the device is full."""
    grant = new_grant_id()
    while True:
        result = await take(service, piece, grant=grant)
        if result.error is None:
            return True
        if result.error.reason is Reason.DEVICE_TAKEN:
            return False
        assert result.error.reason is Reason.GENERATION_CONFLICT


@pytest.mark.parametrize(("piece", "capacity"), [(mig("1g.10gb"), 7), (mig("3g.40gb"), 2), (share(100, 30), 10)])
async def test_concurrent_slices_of_one_device_succeed_exactly_capacity_times(
    service: InventoryService,
    store: RedisInventoryStore,
    client: aioredis.Redis,
    h100: None,
    piece: SliceClaim,
    capacity: int,
) -> None:
    wins = await asyncio.gather(*(_claim_until_full(service, piece) for _ in range(CLIENTS)))
    assert sum(wins) == capacity
    await assert_consistent(store, client)


async def test_concurrent_mixed_profiles_never_over_commit(
    service: InventoryService, store: RedisInventoryStore, client: aioredis.Redis, h100: None
) -> None:
    """200 clients claim random profiles on random devices of one node at once; whatever wins,
    every device's partitions fit its 7 compute and 8 memory slices."""
    rng = random.Random(7)
    profiles = ["1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"]
    pieces = [mig(rng.choice(profiles), device=rng.randrange(8)) for _ in range(CLIENTS)]
    wins = await asyncio.gather(*(_claim_until_full(service, p) for p in pieces))
    assert sum(wins) > 8
    [node] = await all_nodes(store, H100)
    for device in node.devices:
        assert sum(s.compute for s in device.slices) <= 7 and sum(s.memory for s in device.slices) <= 8
    assert sum(len(d.slices) for d in node.devices) == sum(wins)
    await assert_consistent(store, client)
