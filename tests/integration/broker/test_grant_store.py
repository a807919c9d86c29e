"""The broker's Lua scripts against a real Redis: every state change is atomic and happens once."""

from __future__ import annotations

import asyncio

import pytest

from slicebroker.broker.domain.model import EndReason, EventType, Grant, GrantEvent, GrantState, Slice
from slicebroker.broker.storage.store import RedisGrantStore
from slicebroker.core.ids import new_grant_id
from slicebroker.runtime.redis import connect


@pytest.fixture
async def store(redis_url: str) -> RedisGrantStore:
    s = RedisGrantStore(connect(redis_url), "sb:broker")
    await s.scripts.load()
    return s


async def begin1(store: RedisGrantStore, grant: Grant) -> str | None:
    return (await store.begin([grant]))[0]


def pending(key: str = "k", project: str = "p1", count: int = 1, now: int = 1_000) -> Grant:
    return Grant(
        id=new_grant_id(now),
        project=project,
        sku="H100-SXM-80GB",
        count=count,
        lease_ms=60_000,
        idempotency_key=key,
        state=GrantState.PENDING,
        created_ms=now,
    )


def activated(grant: Grant, now: int = 2_000) -> tuple[Grant, GrantEvent]:
    active = grant.with_(
        state=GrantState.ACTIVE, institution="i1", slices=(Slice("n1", "n1/gpu0"),), expires_ms=now + grant.lease_ms
    )
    return active, GrantEvent.of(active, EventType.GRANTED, now)


async def test_200_concurrent_begins_with_one_key_record_exactly_one_grant(store: RedisGrantStore) -> None:
    grants = [pending(key="same") for _ in range(200)]
    answers = await asyncio.gather(*(store.begin([g]) for g in grants))
    answers = [a[0] for a in answers]
    created = [g for g, existing in zip(grants, answers, strict=True) if existing is None]
    assert len(created) == 1
    assert {a for a in answers if a} == {created[0].id}
    assert await store.pending_before(10**15, 1000) == [created[0].id]


async def test_keys_are_per_project_and_grants_without_a_key_never_collide(store: RedisGrantStore) -> None:
    assert await begin1(store, pending(key="k", project="p1")) is None
    assert await begin1(store, pending(key="k", project="p2")) is None
    assert await begin1(store, pending(key="")) is None
    assert await begin1(store, pending(key="")) is None


async def test_activate_and_fail_race_exactly_one_wins(store: RedisGrantStore) -> None:
    for _ in range(20):
        grant = pending(key="")
        await begin1(store, grant)
        activated_ok, failed_ok = await asyncio.gather(store.activate([activated(grant)]), store.fail(grant.id, 5_000))
        assert activated_ok[0] != failed_ok
    entries = await store.outbox_read(1000)
    assert len(entries) == sum(1 for _, e in entries if e.type is EventType.GRANTED)


async def test_a_grant_ends_once_with_one_event_however_many_try(store: RedisGrantStore) -> None:
    grant = pending()
    await begin1(store, grant)
    active, granted = activated(grant)
    assert await store.activate([(active, granted)]) == [True]
    ended = GrantEvent.of(active, EventType.ENDED, 3_000, EndReason.RELEASED)
    results = await asyncio.gather(*(store.end([(active, ended, 0)]) for _ in range(200)))
    assert sum(r[0] for r in results) == 1
    events = [e for _, e in await store.outbox_read(1000)]
    assert [e.type for e in events] == [EventType.GRANTED, EventType.ENDED]
    stored = await store.get(grant.id)
    assert stored is not None and stored.state is GrantState.ENDED and stored.end_reason == "released"
    assert await store.ending(10**15, 10) == [grant.id]
    await store.cleaned([grant.id])
    assert await store.ending(10**15, 10) == []


async def test_expiry_respects_a_renewal(store: RedisGrantStore) -> None:
    grant = pending()
    await begin1(store, grant)
    active, granted = activated(grant, now=2_000)  # expires at 62_000
    await store.activate([(active, granted)])
    assert await store.renew(grant.id, 10_000, 100_000) == "active"
    event = GrantEvent.of(active, EventType.ENDED, 70_000, EndReason.EXPIRED)
    assert await store.end([(active, event, 70_000)]) == [False], "renewed to 100_000"
    assert await store.expired(70_000, 10) == []
    assert await store.expired(100_000, 10) == [grant.id]
    assert await store.renew(grant.id, 100_000, 200_000) == "expired", "a lapsed lease cannot be renewed"
    later = GrantEvent.of(active, EventType.ENDED, 100_000, EndReason.EXPIRED)
    assert await store.end([(active, later, 100_000)]) == [True]


async def test_abandon_forgets_the_grant_and_frees_its_key(store: RedisGrantStore) -> None:
    grant = pending(key="refused")
    await begin1(store, grant)
    await store.abandon(grant)
    assert await store.get(grant.id) is None
    assert await store.pending_before(10**15, 10) == []
    assert await begin1(store, pending(key="refused")) is None


async def test_outbox_ack_trims_only_what_was_acknowledged(store: RedisGrantStore) -> None:
    for _ in range(5):
        g = pending(key="")
        await begin1(store, g)
        await store.activate([activated(g)])
    first = await store.outbox_read(3)
    await store.outbox_ack([entry_id for entry_id, _ in first])
    rest = await store.outbox_read(10)
    assert len(rest) == 2
    assert not {i for i, _ in first} & {i for i, _ in rest}
