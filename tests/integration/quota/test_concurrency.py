"""Concurrent reservations against real Redis: the cap holds exactly, and every grant id's devices
are counted once however its Reserve, Commit, Cancel and the sweep interleave.

Each test runs twice: with every call its own Lua call (atomicity across connections) and with
concurrent calls merged the way the service merges them."""

from __future__ import annotations

import asyncio
import random
from fractions import Fraction

import pytest

from slicebroker.core.ids import new_grant_id
from slicebroker.quota.domain.amount import Amount
from slicebroker.quota.domain.model import NodeKind, NodeSpec
from slicebroker.quota.domain.service import QuotaService
from slicebroker.quota.domain.store import CommitStatus, ReserveStatus
from slicebroker.quota.domain.tree import QuotaEntry
from slicebroker.quota.storage.redis_store import RedisQuotaStore

from .support import H100, T0, res

N = 200
S = 1000


@pytest.fixture(params=["store", "merged_store"])
def any_store(request: pytest.FixtureRequest) -> RedisQuotaStore:
    store: RedisQuotaStore = request.getfixturevalue(request.param)
    return store


async def consistent(store: RedisQuotaStore) -> dict[tuple[str, str], int]:
    """In-use counters equal the sum of held reservations, and none is negative."""
    held: dict[tuple[str, str], int] = {}
    for r in await store.list_reservations():
        held[(r.project, r.sku)] = held.get((r.project, r.sku), 0) + r.count
    counters = await store.in_use_all()
    assert counters == held
    assert all(n > 0 for n in counters.values())
    return counters


async def test_many_concurrent_reserves_get_exactly_the_cap(any_store: RedisQuotaStore) -> None:
    results = await asyncio.gather(*(any_store.reserve([res(1, sku="RNGD")], T0) for _ in range(N)))
    statuses = [r.status for (r,) in results]
    assert statuses.count(ReserveStatus.OK) == 64
    assert statuses.count(ReserveStatus.QUOTA_EXCEEDED) == N - 64
    assert await consistent(any_store) == {("p", "RNGD"): 64}


async def test_concurrent_duplicates_of_one_grant_count_once(any_store: RedisQuotaStore) -> None:
    item = res(5, sku="RNGD")
    results = await asyncio.gather(*(any_store.reserve([item], T0) for _ in range(N)))
    assert {r.status for (r,) in results} == {ReserveStatus.OK}
    assert await consistent(any_store) == {("p", "RNGD"): 5}


async def test_sweep_racing_commit_releases_each_reservation_at_most_once(any_store: RedisQuotaStore) -> None:
    items = [res(1, sku="RNGD", ttl=5) for _ in range(64)]
    await any_store.reserve(items, T0)
    # Commits read their clock just before the TTL ends; the sweeps run just after it, a few
    # reservations at a time, in a shuffled order so that the two interleave.
    order = [("commit", i) for i in range(len(items))] + [("sweep", n) for n in range(N - len(items))]
    random.Random(7).shuffle(order)

    async def run(kind: str, n: int) -> list[str]:
        if kind == "commit":
            return list(await any_store.commit([items[n].grant_id], T0 + 5 * S - 1))
        return await any_store.sweep(T0 + 5 * S, 3)

    results = await asyncio.gather(*(run(kind, n) for kind, n in order))
    swept = {g for (kind, _), r in zip(order, results, strict=True) if kind == "sweep" for g in r}
    committed = {items[n].grant_id for (kind, n), r in zip(order, results, strict=True) if r == ["OK"]}
    held = {r.grant_id for r in await any_store.list_reservations()}
    assert held == committed and held | swept == {i.grant_id for i in items} and not held & swept
    # Each reservation was committed (and stays) or swept (and a Commit now says it expired).
    after = await any_store.commit([i.grant_id for i in items], T0 + 6 * S)
    assert after == [CommitStatus.EXPIRED if i.grant_id in swept else CommitStatus.OK for i in items]
    assert await consistent(any_store) == ({("p", "RNGD"): len(held)} if held else {})


async def test_concurrent_cancels_return_devices_once(any_store: RedisQuotaStore) -> None:
    items = [res(2, sku="RNGD") for _ in range(32)]
    await any_store.reserve(items, T0)
    await any_store.commit([i.grant_id for i in items[::2]], T0)
    returned = await asyncio.gather(*(any_store.cancel([items[n % 32].grant_id], T0) for n in range(N)))
    assert sum(r for (r,) in returned) == 64
    assert await consistent(any_store) == {}


async def test_churn_keeps_counters_equal_to_reservations(any_store: RedisQuotaStore) -> None:
    rng = random.Random(11)
    grants = [new_grant_id() for _ in range(40)]

    async def one(n: int) -> None:
        grant = grants[rng.randrange(len(grants))]
        match rng.randrange(4):
            case 0 | 1:
                await any_store.reserve([res(1 + n % 3, sku="RNGD", grant=grant, ttl=5)], T0 + n)
            case 2:
                await any_store.commit([grant], T0 + n)
            case _:
                await any_store.cancel([grant], T0 + n)

    await asyncio.gather(*(one(n) for n in range(N)), *(any_store.sweep(T0 + 5 * S + n, 5) for n in range(20)))
    counters = await consistent(any_store)
    assert counters.get(("p", "RNGD"), 0) <= 64


async def test_concurrent_slices_against_a_project_and_a_cohort_never_pass_a_limit(any_store: RedisQuotaStore) -> None:
    """universities (no own quota) → snu (nominal 4, borrowing limit 2) → s; kaist (nominal 4,
    hard cap 5) → k. 200 concurrent 1g.10gb reservations (1/7 device each), half per project:
    exactly the cohort's 8 devices (56 slices) are admitted, snu never above 6, kaist never above 5."""
    service = QuotaService(any_store)
    await service.upsert_node(NodeSpec("universities", NodeKind.COHORT))
    limits = {
        "snu": QuotaEntry(Amount.of(4), borrowing_limit=Amount.of(2)),
        "kaist": QuotaEntry(Amount.of(4), hard_cap=Amount.of(5)),
    }
    for inst, project in (("snu", "s"), ("kaist", "k")):
        await service.upsert_node(NodeSpec(inst, NodeKind.INSTITUTION, "universities"))
        await service.set_quota(inst, {H100: limits[inst]}, None)
        await service.upsert_node(NodeSpec(project, NodeKind.PROJECT, inst))
    items = [res(1, H100, "s" if i % 2 else "k", shape="1g.10gb") for i in range(N)]
    outcomes = await asyncio.gather(*(any_store.reserve([item], T0) for item in items))
    admitted = [item for item, (o,) in zip(items, outcomes, strict=True) if o.status is ReserveStatus.OK]
    assert len(admitted) == 56
    slice_units = Amount.of(Fraction(1, 7)).finite()
    snu, _ = await any_store.usage("snu", H100)
    kaist, _ = await any_store.usage("kaist", H100)
    cohort_total, _ = await any_store.usage("universities", H100)
    assert snu <= 6 * 7 * slice_units and kaist <= 5 * 7 * slice_units
    assert cohort_total == snu + kaist == 56 * slice_units
    # Cancelling everything concurrently returns every unit exactly once.
    await asyncio.gather(*(any_store.cancel([item.grant_id], T0) for item in items))
    assert await any_store.usage("universities", H100) == (0, 0)
    assert await any_store.usage("s", H100) == (0, 0)
