"""The grant change stream, preemption notices and requests that start later, against a real
Redis: every change is appended by the script that makes it, once, and the watch reads it back
exactly (snapshot at one revision, then the tail)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from slicebroker.broker.domain.model import ChangeType, EndReason, EventType, Grant, GrantEvent, GrantState, Slice
from slicebroker.broker.domain.watch import ChangeTail, GrantWatch, _gap
from slicebroker.broker.storage.store import RedisGrantStore
from slicebroker.core.errors import InvalidArgument
from slicebroker.core.ids import new_grant_id
from slicebroker.runtime.redis import connect


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisGrantStore]:
    client = connect(redis_url)
    s = RedisGrantStore(client, "sb:broker", change_cap=100_000)
    await s.scripts.load()
    yield s
    await client.aclose()


def pending(project: str = "p1", now: int = 1_000, **extra: object) -> Grant:
    return Grant(
        id=new_grant_id(now),
        project=project,
        sku="H100-SXM-80GB",
        count=1,
        lease_ms=60_000,
        idempotency_key="",
        state=GrantState.PENDING,
        created_ms=now,
    ).with_(**extra)


async def active(store: RedisGrantStore, project: str = "p1", now: int = 2_000, **extra: object) -> Grant:
    grant = pending(project, **extra)
    await store.begin([grant])
    live = grant.with_(
        state=GrantState.ACTIVE,
        institution="i1",
        slices=(Slice("n1", "n1/gpu0"),),
        expires_ms=now + 60_000,
        started_ms=now,
    )
    assert await store.activate([(live, GrantEvent.of(live, EventType.GRANTED, now))]) == [True]
    return live


async def all_changes(store: RedisGrantStore) -> list:
    return await store.changes_between("0-0", "+")


async def test_each_state_change_appends_one_change_with_the_grant_after_it(store: RedisGrantStore) -> None:
    grant = await active(store)
    assert await store.renew(grant.id, 3_000, 90_000) == "active"
    assert await store.notice(grant.id, 4_000, 9_000, "guaranteed demand of project p2 for 8 x H100-SXM-80GB")
    assert not await store.notice(grant.id, 4_500, 99_000, "again"), "the first notice stands"
    ended = GrantEvent.of(grant, EventType.ENDED, 5_000, EndReason.RELEASED)
    assert await store.end([(grant, ended, 0)]) == [True]
    changes = await all_changes(store)
    assert [c.type for c in changes] == [
        ChangeType.GRANTED,
        ChangeType.RENEWED,
        ChangeType.PREEMPTION_NOTICE,
        ChangeType.RELEASED,
    ]
    assert [c.at_ms for c in changes] == [2_000, 3_000, 4_000, 5_000]
    renewed, noticed, released = (c.grant for c in changes[1:])
    assert renewed is not None and renewed.expires_ms == 90_000 and renewed.state is GrantState.ACTIVE
    assert noticed is not None and noticed.preemption_deadline_ms == 9_000
    assert noticed.preemption_reason.startswith("guaranteed demand of project p2")
    assert released is not None and released.state is GrantState.ENDED and released.end_reason == "released"
    stored = await store.get(grant.id)
    assert stored is not None and stored.revision == changes[-1].revision
    assert await store.under_notice(10) == [], "an ended grant leaves the notice set"


async def test_a_preemption_ends_only_a_noticed_grant_whose_deadline_passed(store: RedisGrantStore) -> None:
    grant = await active(store)
    preempted = GrantEvent.of(grant, EventType.ENDED, 6_000, EndReason.PREEMPTED)
    assert await store.end([(grant, preempted, 0)]) == [False], "no notice: nothing to preempt"
    await store.notice(grant.id, 4_000, 8_000, "demand")
    assert await store.preemption_due(7_999, 10) == []
    assert await store.end([(grant, preempted, 0)]) == [False], "the deadline is 8_000"
    assert await store.preemption_due(8_000, 10) == [grant.id]
    later = GrantEvent.of(grant, EventType.ENDED, 8_000, EndReason.PREEMPTED)
    results = await asyncio.gather(*(store.end([(grant, later, 0)]) for _ in range(50)))
    assert sum(r[0] for r in results) == 1
    assert [c.type for c in await all_changes(store)][-1] is ChangeType.PREEMPTED
    events = [e for _, e in await store.outbox_read(100)]
    assert [(e.type, e.reason) for e in events] == [(EventType.GRANTED, ""), (EventType.ENDED, "preempted")]


async def test_200_concurrent_notices_give_one_notice(store: RedisGrantStore) -> None:
    grant = await active(store)
    results = await asyncio.gather(*(store.notice(grant.id, 3_000, 3_000 + i, f"r{i}") for i in range(200)))
    assert sum(results) == 1
    assert [c.type for c in await all_changes(store)].count(ChangeType.PREEMPTION_NOTICE) == 1


async def test_a_request_that_starts_later_waits_aside_until_due(store: RedisGrantStore) -> None:
    later = pending(start_after_ms=50_000, queue=True)
    await store.begin([later])
    assert await store.enqueue(later, "waiting to start", announce=True, now_ms=1_000)
    assert await store.queued(10) == [] and await store.queue_rank(later.id) is None
    assert await store.next_scheduled() == 50_000
    assert await store.scheduled_due(49_999, 10) == []
    assert await store.scheduled_due(50_000, 10) == [later.id]
    assert await store.promote(later.id) and not await store.promote(later.id)
    assert await store.queued(10) == [later.id] and await store.next_scheduled() is None
    # Taken for a dispatch attempt and put back: no second QUEUED change.
    assert await store.dequeue(later.id, 50_001)
    assert await store.enqueue(later, "still waiting", announce=False, now_ms=50_002)
    assert [c.type for c in await all_changes(store)] == [ChangeType.QUEUED]


async def test_cancelling_a_request_that_starts_later_removes_it_everywhere(store: RedisGrantStore) -> None:
    later = pending(start_after_ms=50_000)
    await store.begin([later])
    await store.enqueue(later, "waiting", announce=True, now_ms=1_000)
    assert await store.cancel_queued(later.id, 2_000)
    assert await store.scheduled_due(10**15, 10) == []
    assert [c.type for c in await all_changes(store)] == [ChangeType.QUEUED, ChangeType.RELEASED]


async def test_the_stream_is_capped(redis_url: str) -> None:
    client = connect(redis_url)
    small = RedisGrantStore(client, "sb:capped", change_cap=10)
    await small.scripts.load()
    grant = await active(small)
    for i in range(400):
        await small.renew(grant.id, 3_000 + i, 100_000 + i)
    changes = await small.changes_between("0-0", "+")
    assert len(changes) < 400 and changes[-1].grant is not None and changes[-1].grant.expires_ms == 100_399
    last, trimmed = await small.change_bounds()
    assert last == changes[-1].revision and trimmed != "0-0"
    assert _gap("0-1", trimmed, changes), "a reader at the start was trimmed past"
    assert not _gap(last, trimmed, []), "a reader at the end was not"
    await client.aclose()


async def _collect(stream: AsyncIterator, until: ChangeType, limit: int = 10_000) -> list:
    out = []
    async for change in stream:
        out.append(change)
        if change.type is until or len(out) >= limit:
            return out
    return out


async def test_a_snapshot_is_exact_while_grants_keep_changing(store: RedisGrantStore) -> None:
    """Grants change while snapshots are taken; each snapshot plus the changes after its revision
    is exactly the state that the whole stream ends in."""
    grants = [await active(store, project=f"p{i % 3}") for i in range(30)]
    watch = GrantWatch(store, _Owners(store), lambda: 0)
    stop = asyncio.Event()

    async def churn() -> None:
        n = 0
        while not stop.is_set():
            g = grants[n % len(grants)]
            await store.renew(g.id, 3_000 + n, 100_000 + n)
            if n % 7 == 0:
                fresh = await active(store)
                grants.append(fresh)
            if n % 11 == 0:
                victim = grants.pop(0)
                await store.end([(victim, GrantEvent.of(victim, EventType.ENDED, 9_000, EndReason.RELEASED), 0)])
            n += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(churn())
    try:
        for _ in range(5):
            revision, live = await watch._snapshot()
            await asyncio.sleep(0.01)
            state = {g.id: g for g in live}
            # Apply everything after the snapshot's revision up to a fixed end.
            end, _ = await store.change_bounds()
            for change in await store.changes_between(revision, end):
                state[change.grant.id] = change.grant
            # The truth at `end`: every grant's last change up to it.
            truth: dict[str, Grant] = {}
            for change in await store.changes_between("0-0", end):
                truth[change.grant.id] = change.grant
            live_truth = {gid: g for gid, g in truth.items() if g.state is GrantState.ACTIVE}
            live_state = {gid: g for gid, g in state.items() if g.state is GrantState.ACTIVE}
            assert live_state.keys() == live_truth.keys()
            assert all(live_state[gid].revision == live_truth[gid].revision for gid in live_truth)
    finally:
        stop.set()
        await task


async def _renewals(store: RedisGrantStore, grant: Grant, n: int, first: int = 200_000) -> list[int]:
    """`n` renewals of `grant`, one change each; returns the lease ends written, in order."""
    ends = [first + i for i in range(n)]
    for end in ends:
        await store.renew(grant.id, 3_000, end)
        await asyncio.sleep(0)
    return ends


async def _lease_ends(watch: GrantWatch, revision: str, n: int) -> list[int]:
    out: list[int] = []
    async for change in watch.watch(from_revision=revision):
        assert change.grant is not None
        out.append(change.grant.expires_ms)
        if len(out) == n:
            return out
    return out


async def test_many_watches_share_one_reader_and_each_sees_every_change_once_in_order(
    store: RedisGrantStore, redis_url: str
) -> None:
    grant = await active(store)
    start, _ = await store.change_bounds()
    watch = GrantWatch(store, _Owners(store), lambda: 0, block_ms=200)
    client = connect(redis_url)
    reads_before = (await client.info("commandstats")).get("cmdstat_xread", {}).get("calls", 0)
    watchers = [asyncio.create_task(_lease_ends(watch, start, 300)) for _ in range(40)]
    await asyncio.sleep(0.2)  # every watch has caught up and follows the shared reader
    ends = await _renewals(store, grant, 300)
    seen = await asyncio.wait_for(asyncio.gather(*watchers), 30)
    assert all(s == ends for s in seen)
    xreads = (await client.info("commandstats"))["cmdstat_xread"]["calls"] - reads_before
    # One blocking read per batch the shared reader takes (at most one per change), not one per
    # change per watch (12,000 here).
    assert xreads <= 300 + 10, xreads
    assert watch.tail.reads == xreads
    assert watch.streams == 0
    await client.aclose()


async def test_a_watch_that_lags_past_its_queue_catches_up_from_the_stream(store: RedisGrantStore) -> None:
    grant = await active(store)
    start, _ = await store.change_bounds()
    watch = GrantWatch(store, _Owners(store), lambda: 0, block_ms=100)
    watch.tail = ChangeTail(store, block_ms=100, batch=5, queue=2)  # overflows after two batches
    stream = watch.watch(from_revision=start)
    first = asyncio.create_task(anext(stream))  # caught up: it waits on the shared reader
    await asyncio.sleep(0.1)
    ends = await _renewals(store, grant, 1)
    change = await asyncio.wait_for(first, 5)
    assert change.grant is not None
    out = [change.grant.expires_ms]
    ends += await _renewals(store, grant, 119, first=300_000)  # while nobody drains its queue
    await asyncio.sleep(0.3)
    async for change in stream:
        assert change.grant is not None
        out.append(change.grant.expires_ms)
        if len(out) == len(ends):
            break
    assert out == ends, "every change once, in order, although most batches were dropped for it"
    await stream.aclose()
    assert watch.streams == 0


async def test_a_bad_revision_names_the_field(store: RedisGrantStore) -> None:
    watch = GrantWatch(store, _Owners(store), lambda: 0)
    for bad in ("yesterday", "12", "1-2-3", "-1-0"):
        with pytest.raises(InvalidArgument) as info:
            await anext(watch.watch(from_revision=bad))
        assert info.value.field == "from_revision"
    assert watch.streams == 0


class _Owners:
    """Every project belongs to institution "i1" (no quota service here); grants from the store."""

    def __init__(self, store: RedisGrantStore) -> None:
        self._store = store

    async def institution_of(self, project: str) -> str:
        return "i1"

    async def get_grant(self, grant_id: str, access: object = None) -> Grant:
        grant = await self._store.get(grant_id)
        assert grant is not None
        return grant
