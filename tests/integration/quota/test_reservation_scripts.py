"""tree.lua's reserve, commit, cancel and sweep verbs against real Redis, with a controlled clock."""

from __future__ import annotations

import redis.asyncio as aioredis

from slicebroker.core.ids import new_grant_id
from slicebroker.quota.domain.amount import SCALE
from slicebroker.quota.domain.model import Phase, ProjectSpec
from slicebroker.quota.domain.service import QuotaService
from slicebroker.quota.domain.store import CommitStatus, ReserveStatus
from slicebroker.quota.storage.redis_store import LAPSED_RETENTION_MS, RedisQuotaStore

from .support import H100, T0, res, upsert_project

S = 1000  # ms


async def used(store: RedisQuotaStore, sku: str = H100) -> int:
    return await store.in_use("p", sku)


async def test_reserve_takes_devices_and_names_the_institution(store: RedisQuotaStore) -> None:
    (outcome,) = await store.reserve([res(3)], T0)
    assert (outcome.status, outcome.institution) == (ReserveStatus.OK, "snu")
    assert await used(store) == 3


async def test_reserving_the_same_grant_again_changes_nothing(store: RedisQuotaStore) -> None:
    item = res(3)
    await store.reserve([item], T0)
    (held,) = await store.list_reservations()
    for phase_change in (None, "commit"):
        if phase_change:
            await store.commit([item.grant_id], T0)
        (again,) = await store.reserve([item], T0 + 5 * S)
        assert (again.status, again.institution) == (ReserveStatus.OK, "snu")
        assert await used(store) == 3
    (after,) = await store.list_reservations()
    assert after.created_ms == held.created_ms and after.phase is Phase.COMMITTED


async def test_a_grant_id_cannot_be_reused_for_something_else(store: RedisQuotaStore) -> None:
    grant = new_grant_id()
    await store.reserve([res(3, grant=grant)], T0)
    for other in (res(4, grant=grant), res(3, sku="RNGD", grant=grant)):
        (outcome,) = await store.reserve([other], T0)
        assert outcome.status is ReserveStatus.MISMATCH
        assert (outcome.held_project, outcome.held_sku, outcome.held_count) == ("p", H100, 3)
    assert await used(store) == 3 and await used(store, "RNGD") == 0


async def test_unknown_project(store: RedisQuotaStore, client: aioredis.Redis) -> None:
    before = await client.keys("*")
    (outcome,) = await store.reserve([res(1, project="nope")], T0)
    assert outcome.status is ReserveStatus.PROJECT_NOT_FOUND
    assert await client.keys("*") == before


async def test_cap_is_exact_and_reports_what_is_in_use(store: RedisQuotaStore) -> None:
    outcomes = await store.reserve([res(5), res(3), res(1), res(0 + 1, sku="ATOM")], T0)
    assert [o.status for o in outcomes] == ["OK", "OK", "QUOTA_EXCEEDED", "QUOTA_EXCEEDED"]
    assert (outcomes[2].limit, outcomes[2].node, outcomes[2].available) == ("hard_cap", "p", 0)
    assert (outcomes[2].requested, outcomes[2].resource) == (SCALE, H100)
    assert outcomes[3].limit == "no_quota"  # no cap for ATOM: none allowed
    assert await used(store) == 8


async def test_items_of_a_batch_are_independent_and_in_order(store: RedisQuotaStore) -> None:
    grant = new_grant_id()
    outcomes = await store.reserve(
        [res(9), res(2, grant=grant), res(1, project="nope"), res(2, grant=grant), res(6)], T0
    )
    assert [o.status for o in outcomes] == ["QUOTA_EXCEEDED", "OK", "PROJECT_NOT_FOUND", "OK", "OK"]
    assert await used(store) == 8


async def test_commit_makes_a_reservation_permanent(store: RedisQuotaStore) -> None:
    item = res(2, ttl=10)
    await store.reserve([item], T0)
    assert await store.commit([item.grant_id], T0 + 1 * S) == [CommitStatus.OK]
    assert await store.commit([item.grant_id], T0 + 2 * S) == [CommitStatus.OK]
    assert await store.sweep(T0 + 3600 * S, 100) == []
    (held,) = await store.list_reservations()
    assert (held.phase, held.expires_ms, held.created_ms) == (Phase.COMMITTED, 0, T0)
    assert await used(store) == 2


async def test_commit_of_an_unknown_grant(store: RedisQuotaStore) -> None:
    assert await store.commit([new_grant_id()], T0) == [CommitStatus.NOT_FOUND]


async def test_commit_after_the_ttl_releases_even_before_a_sweep(store: RedisQuotaStore) -> None:
    item = res(4, ttl=10)
    await store.reserve([item], T0)
    assert await store.commit([item.grant_id], T0 + 10 * S) == [CommitStatus.EXPIRED]
    assert await used(store) == 0
    assert await store.list_reservations() == []
    # Asked again, it is still expired, and the sweep finds nothing left to do.
    assert await store.commit([item.grant_id], T0 + 11 * S) == [CommitStatus.EXPIRED]
    assert await store.sweep(T0 + 20 * S, 100) == []
    assert await used(store) == 0


async def test_commit_after_the_sweep_says_expired(store: RedisQuotaStore) -> None:
    item = res(4, ttl=10)
    await store.reserve([item], T0)
    assert await store.sweep(T0 + 10 * S, 100) == [item.grant_id]
    assert await store.commit([item.grant_id], T0 + 11 * S) == [CommitStatus.EXPIRED]
    # Lapsed marks are forgotten after the retention.
    await store.sweep(T0 + 10 * S + LAPSED_RETENTION_MS + 1, 100)
    assert await store.commit([item.grant_id], T0 + 10 * S + LAPSED_RETENTION_MS + 2) == [CommitStatus.NOT_FOUND]


async def test_sweep_releases_only_lapsed_reservations_oldest_first(store: RedisQuotaStore) -> None:
    short, longer, committed = res(1, ttl=5), res(2, ttl=8), res(3, ttl=5)
    await store.reserve([longer, short, committed], T0)
    await store.commit([committed.grant_id], T0)
    assert await store.sweep(T0 + 4 * S, 100) == []
    assert await store.sweep(T0 + 9 * S, 1) == [short.grant_id]
    assert await used(store) == 5
    assert await store.sweep(T0 + 9 * S, 100) == [longer.grant_id]
    assert await used(store) == 3
    assert [r.grant_id for r in await store.list_reservations()] == [committed.grant_id]


async def test_reserve_over_a_lapsed_reservation_of_the_same_grant_starts_afresh(
    store: RedisQuotaStore,
) -> None:
    item = res(8, ttl=5)
    await store.reserve([item], T0)
    (outcome,) = await store.reserve([item], T0 + 6 * S)
    assert outcome.status is ReserveStatus.OK
    assert await used(store) == 8
    (held,) = await store.list_reservations()
    assert (held.created_ms, held.expires_ms) == (T0 + 6 * S, T0 + 11 * S)
    assert await store.commit([item.grant_id], T0 + 7 * S) == [CommitStatus.OK]


async def test_a_lapsed_reservation_still_counts_until_released(store: RedisQuotaStore) -> None:
    await store.reserve([res(8, ttl=5)], T0)
    (outcome,) = await store.reserve([res(1)], T0 + 6 * S)
    assert outcome.status is ReserveStatus.QUOTA_EXCEEDED  # the safe side: never over the cap
    await store.sweep(T0 + 6 * S, 100)
    (outcome,) = await store.reserve([res(1)], T0 + 6 * S)
    assert outcome.status is ReserveStatus.OK


async def test_cancel_returns_devices_in_either_phase_once(store: RedisQuotaStore) -> None:
    reserved, committed, unknown = res(2), res(3), new_grant_id()
    await store.reserve([reserved, committed], T0)
    await store.commit([committed.grant_id], T0)
    ids = [reserved.grant_id, committed.grant_id, unknown, reserved.grant_id]
    assert await store.cancel(ids, T0) == [2, 3, 0, 0]
    assert await store.cancel(ids, T0) == [0, 0, 0, 0]
    assert await used(store) == 0
    assert await store.list_reservations() == []
    assert await store.commit([reserved.grant_id], T0) == [CommitStatus.NOT_FOUND]


async def test_cancel_of_a_lapsed_reservation(store: RedisQuotaStore) -> None:
    item = res(2, ttl=5)
    await store.reserve([item], T0)
    assert await store.cancel([item.grant_id], T0 + 6 * S) == [2]
    assert await store.sweep(T0 + 6 * S, 100) == []
    assert await used(store) == 0


async def test_in_use_is_per_project_and_sku(store: RedisQuotaStore) -> None:
    await upsert_project(store, ProjectSpec("q", "snu", "", {H100: 8}))
    await store.reserve([res(8), res(8, project="q"), res(10, sku="RNGD")], T0)
    assert await store.in_use_all() == {("p", H100): 8, ("q", H100): 8, ("p", "RNGD"): 10}
    p = await QuotaService(store).get_project("p")
    assert p.devices_in_use == {H100: 8, "RNGD": 10}


async def test_list_reservations_decodes_every_field(store: RedisQuotaStore) -> None:
    a, b = res(2, ttl=7), res(5, sku="RNGD")
    await store.reserve([a, b], T0)
    await store.commit([b.grant_id], T0 + S)
    held = {r.grant_id: r for r in await store.list_reservations()}
    assert (held[a.grant_id].project, held[a.grant_id].sku, held[a.grant_id].count) == ("p", H100, 2)
    assert (held[a.grant_id].phase, held[a.grant_id].expires_ms) == (Phase.RESERVED, T0 + 7 * S)
    assert (held[b.grant_id].phase, held[b.grant_id].sku, held[b.grant_id].count) == (
        Phase.COMMITTED,
        "RNGD",
        5,
    )
