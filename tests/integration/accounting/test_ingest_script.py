"""ingest.lua against real Redis: exactly-once per event id, at most one close per grant, exact totals."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field, replace

import redis.asyncio as aioredis

from slicebroker.accounting.domain.model import (
    EventType,
    GrantAttrs,
    GrantEvent,
    IngestResult,
    RowTotals,
    UsageFilter,
)
from slicebroker.accounting.domain.slices import SIZE_DEN as D
from slicebroker.accounting.domain.usage import device_ms, usage_row
from slicebroker.accounting.storage.keys import AccountingKeys
from slicebroker.accounting.storage.redis_store import RedisUsageStore
from slicebroker.core.ids import new_grant_id

T0 = 1_750_000_000_000
H100 = "H100-SXM-80GB"


def granted(
    gid: str, at: int = T0, count: int = 8, inst: str = "kaist", proj: str = "llm", sku: str = H100,
    event_id: str = "",
) -> GrantEvent:  # fmt: skip
    return GrantEvent(event_id or f"{gid}:granted", gid, EventType.GRANTED, inst, proj, sku, count, at)


def ended(
    gid: str, at: int, reason: str = "released", count: int = 8, inst: str = "kaist", proj: str = "llm",
    sku: str = H100, event_id: str = "",
) -> GrantEvent:  # fmt: skip
    return GrantEvent(event_id or f"{gid}:ended", gid, EventType.ENDED, inst, proj, sku, count, at, reason)


async def snapshot(client: aioredis.Redis) -> dict[str, object]:
    """Every key's type and content, to show that a call changed nothing."""
    out: dict[str, object] = {}
    for key in sorted(await client.keys("*")):
        kind = await client.type(key)
        if kind == "hash":
            out[key] = await client.hgetall(key)
        elif kind == "set":
            out[key] = sorted(await client.smembers(key))
        elif kind == "stream":
            out[key] = await client.xrange(key)
        else:
            out[key] = kind
    return out


async def row(store: RedisUsageStore, inst: str = "kaist", proj: str = "llm", sku: str = H100) -> RowTotals:
    (totals,) = await store.totals(UsageFilter(inst, proj, sku))
    return totals


async def test_a_grant_opens_then_closes_into_totals_and_one_ledger_record(
    store: RedisUsageStore, client: aioredis.Redis, keys: AccountingKeys
) -> None:
    gid = new_grant_id(T0)
    assert await store.ingest([granted(gid, count=8)]) == IngestResult(1, 0)
    assert await row(store) == RowTotals(
        "kaist", "llm", H100, running_grants=1, running_devices=8 * D, running_start_sum=8 * T0
    )
    assert await store.ingest([ended(gid, T0 + 90_500, "expired")]) == IngestResult(1, 0)
    assert await row(store) == RowTotals("kaist", "llm", H100, device_ms=8 * 90_500, grants=1)
    (record,) = await store.ledger()
    assert (record.grant_id, record.institution, record.project, record.sku, record.count) == (
        gid, "kaist", "llm", H100, 8,
    )  # fmt: skip
    assert (record.start_ms, record.end_ms, record.device_ms, record.end_reason) == (
        T0, T0 + 90_500, 724_000, "expired",
    )  # fmt: skip
    assert record.device_seconds == 724.0
    assert (await client.hgetall(keys.grant(gid)))["state"] == "closed"


async def test_replaying_a_whole_batch_changes_nothing(store: RedisUsageStore, client: aioredis.Redis) -> None:
    gids = [new_grant_id(T0 + i) for i in range(20)]
    batch = [granted(g, T0 + i) for i, g in enumerate(gids)] + [
        ended(g, T0 + 10_000 + i) for i, g in enumerate(gids[:10])
    ]
    assert await store.ingest(batch) == IngestResult(30, 0)
    before = await snapshot(client)
    assert await store.ingest(batch) == IngestResult(0, 30)
    assert await store.ingest(list(reversed(batch))) == IngestResult(0, 30)
    assert await snapshot(client) == before


async def test_an_event_repeated_inside_one_batch_applies_once(store: RedisUsageStore) -> None:
    gid = new_grant_id(T0)
    g, e = granted(gid), ended(gid, T0 + 1_000)
    assert await store.ingest([g, g, e, g, e]) == IngestResult(2, 3)
    assert (await row(store)).device_ms == 8_000
    assert len(await store.ledger()) == 1


async def test_a_second_end_of_a_closed_grant_counts_once(store: RedisUsageStore) -> None:
    """A release racing an expiry: two ENDED events with different ids for one grant."""
    gid = new_grant_id(T0)
    await store.ingest([granted(gid)])
    release = ended(gid, T0 + 5_000, "released", event_id="ev-release")
    expiry = ended(gid, T0 + 9_000, "expired", event_id="ev-expiry")
    assert await store.ingest([release]) == IngestResult(1, 0)
    assert await store.ingest([expiry]) == IngestResult(0, 1)
    assert await row(store) == RowTotals("kaist", "llm", H100, device_ms=40_000, grants=1)
    assert [r.end_reason for r in await store.ledger()] == ["released"]


async def test_a_second_granted_of_an_open_grant_changes_nothing(store: RedisUsageStore) -> None:
    gid = new_grant_id(T0)
    await store.ingest([granted(gid, count=2)])
    assert await store.ingest([granted(gid, T0 + 50, count=7, event_id="another-id")]) == IngestResult(0, 1)
    assert await row(store) == RowTotals("kaist", "llm", H100, running_grants=1, running_devices=2 * D,
                                         running_start_sum=2 * T0)  # fmt: skip


async def test_an_end_before_its_grant_is_remembered_and_closes_it_when_the_grant_arrives(
    store: RedisUsageStore,
) -> None:
    gid = new_grant_id(T0)
    assert await store.ingest([ended(gid, T0 + 3_000, "reclaimed", count=4)]) == IngestResult(1, 0)
    assert await store.totals(UsageFilter()) == []
    assert await store.ledger() == []
    # A second end while the grant is still unseen is a duplicate, like any second end.
    assert await store.ingest([ended(gid, T0 + 9_000, "expired", event_id="x")]) == IngestResult(0, 1)
    assert await store.ingest([granted(gid, T0, count=4)]) == IngestResult(1, 0)
    assert await row(store) == RowTotals("kaist", "llm", H100, device_ms=12_000, grants=1)
    (record,) = await store.ledger()
    assert (record.start_ms, record.end_ms, record.end_reason, record.count) == (
        T0,
        T0 + 3_000,
        "reclaimed",
        4,
    )
    assert await store.ingest([granted(gid, event_id="late-dup")]) == IngestResult(0, 1)


async def test_end_and_grant_reversed_inside_one_batch(store: RedisUsageStore) -> None:
    gid = new_grant_id(T0)
    assert await store.ingest([ended(gid, T0 + 2_000), granted(gid)]) == IngestResult(2, 0)
    assert await row(store) == RowTotals("kaist", "llm", H100, device_ms=16_000, grants=1)


async def test_the_grant_s_own_identity_is_charged_even_if_its_end_says_otherwise(
    store: RedisUsageStore,
) -> None:
    gid = new_grant_id(T0)
    await store.ingest([granted(gid, count=2, proj="llm")])
    await store.ingest([ended(gid, T0 + 1_000, count=99, proj="other")])
    assert await store.totals(UsageFilter(project="other")) == []
    assert await row(store) == RowTotals("kaist", "llm", H100, device_ms=2_000, grants=1)


async def test_an_end_stamped_before_the_start_counts_zero(store: RedisUsageStore) -> None:
    gid = new_grant_id(T0)
    await store.ingest([granted(gid, T0 + 5_000), ended(gid, T0)])
    assert await row(store) == RowTotals("kaist", "llm", H100, device_ms=0, grants=1)


async def test_big_numbers_stay_exact_integers(store: RedisUsageStore) -> None:
    """count x start-ms and device-ms past 1e17, where a Lua number would print in exponent form."""
    late = 4_000_000_000_000
    big, small = new_grant_id(T0), new_grant_id(T0 + 1)
    await store.ingest([granted(big, late - 1_500_000_000_000, count=100_000), granted(small, late, count=3)])
    assert (await row(store)).running_start_sum == 100_000 * (late - 1_500_000_000_000) + 3 * late
    await store.ingest([ended(big, late), ended(small, late + 7)])
    assert await row(store) == RowTotals("kaist", "llm", H100, device_ms=150_000_000_000_000_021, grants=2)


async def test_running_sums_match_the_open_grants_and_return_to_zero(
    store: RedisUsageStore, client: aioredis.Redis, keys: AccountingKeys
) -> None:
    rng = random.Random(7)
    gids = [new_grant_id(T0 + i) for i in range(50)]
    opened = [granted(g, T0 + rng.randrange(10**7), count=rng.randint(1, 64)) for g in gids]
    await store.ingest(opened)
    open_now = opened[25:]
    await store.ingest([ended(e.grant_id, e.at_ms + 1_000) for e in opened[:25]])
    totals = await row(store)
    assert totals.running_grants == 25
    assert totals.running_devices == sum(e.count * D for e in open_now)
    assert totals.running_start_sum == sum(e.count * e.at_ms for e in open_now)
    for e in open_now:
        assert (await client.hget(keys.grant(e.grant_id), "state")) == "open"
    await store.ingest([ended(e.grant_id, e.at_ms + 1_000) for e in open_now])
    totals = await row(store)
    assert (totals.running_grants, totals.running_devices, totals.running_start_sum) == (0, 0, 0)
    assert totals.device_ms == sum(e.count * 1_000 for e in opened)


async def test_usage_filters_are_exact_matches(store: RedisUsageStore) -> None:
    events = []
    for i, (inst, proj, sku) in enumerate(
        [("kaist", "llm", H100), ("kaist", "llm", "RNGD"), ("kaist", "vision", H100), ("snu", "llm", H100)]
    ):
        gid = new_grant_id(T0 + i)
        events += [granted(gid, inst=inst, proj=proj, sku=sku), ended(gid, T0 + 1_000, inst=inst)]
    await store.ingest(events)

    async def names(f: UsageFilter) -> set[tuple[str, str, str]]:
        return {(t.institution, t.project, t.sku) for t in await store.totals(f)}

    assert len(await names(UsageFilter())) == 4
    assert await names(UsageFilter(institution="kaist", sku="RNGD")) == {("kaist", "llm", "RNGD")}
    assert await names(UsageFilter(project="llm", sku=H100)) == {("kaist", "llm", H100), ("snu", "llm", H100)}
    assert await names(UsageFilter("snu", "llm", H100)) == {("snu", "llm", H100)}
    assert await names(UsageFilter("snu", "llm", "RNGD")) == set()
    assert await names(UsageFilter(institution="kais")) == set()


async def test_the_ledger_reads_on_from_a_position(store: RedisUsageStore) -> None:
    gids = [new_grant_id(T0 + i) for i in range(5)]
    await store.ingest([granted(g) for g in gids])
    for i, g in enumerate(gids):
        await store.ingest([ended(g, T0 + 1_000 * (i + 1))])
    first = await store.ledger(limit=2)
    assert [r.grant_id for r in first] == gids[:2]
    rest = await store.ledger(after=first[-1].position)
    assert [r.grant_id for r in rest] == gids[2:]
    assert await store.ledger(after=rest[-1].position) == []


async def test_200_concurrent_overlapping_batches_apply_each_event_exactly_once(
    store: RedisUsageStore,
) -> None:
    """Every event sits in several batches sent at once, and each grant's release races its expiry
    (same time, different ids): each event takes effect once, each grant closes once, totals exact."""
    rng = random.Random(2026)
    grants = [
        (new_grant_id(T0 + i), rng.choice(["kaist", "snu"]), rng.choice(["RNGD", H100]), rng.randint(1, 16),
         T0 + rng.randrange(10**6), rng.randrange(1, 10**7))
        for i in range(300)
    ]  # fmt: skip
    events: list[GrantEvent] = []
    for gid, inst, sku, count, start, span in grants:
        events.append(granted(gid, start, count, inst=inst, sku=sku))
        events.append(ended(gid, start + span, "released", count, inst=inst, sku=sku))
        events.append(ended(gid, start + span, "expired", count, inst=inst, sku=sku, event_id=f"{gid}:expired"))
    rng.shuffle(events)
    stride, width = 6, 40  # 200 batches x stride covers all 1200 events; each sits in ~7 batches
    batches = [[events[(k * stride + j) % len(events)] for j in range(width)] for k in range(200)]

    results = await asyncio.gather(*(store.ingest(b) for b in batches))

    applied = sum(r.applied for r in results)
    duplicates = sum(r.duplicates for r in results)
    assert applied == 2 * len(grants)  # a GRANTED and one of the two ENDED per grant
    assert applied + duplicates == 200 * width
    expected: dict[tuple[str, str], int] = {}
    for _gid, inst, sku, count, start, span in grants:
        expected[(inst, sku)] = expected.get((inst, sku), 0) + device_ms(count, start, start + span)
    totals = await store.totals(UsageFilter())
    assert {(t.institution, t.sku): t.device_ms for t in totals} == expected
    assert sum(t.grants for t in totals) == len(grants)
    assert all((t.running_grants, t.running_devices, t.running_start_sum) == (0, 0, 0) for t in totals)
    ledger = await store.ledger(limit=10_000)
    assert sorted(r.grant_id for r in ledger) == sorted(g[0] for g in grants)


@dataclass
class Model:
    """A reference of the ingest rules in plain Python, to hold the script to."""

    seen: set[str] = field(default_factory=set)
    state: dict[str, str] = field(default_factory=dict)
    opened: dict[str, GrantEvent] = field(default_factory=dict)
    early_end: dict[str, GrantEvent] = field(default_factory=dict)
    device_ms: dict[tuple[str, str, str], int] = field(default_factory=dict)
    closed: list[str] = field(default_factory=list)

    def apply(self, e: GrantEvent) -> bool:
        if e.event_id in self.seen:
            return False
        self.seen.add(e.event_id)
        state = self.state.get(e.grant_id)
        if e.type is EventType.GRANTED and state in (None, "ended_first"):
            self.opened[e.grant_id] = e
            if state is None:
                self.state[e.grant_id] = "open"
            else:
                self._close(e, self.early_end[e.grant_id])
            return True
        if e.type is EventType.ENDED and state in (None, "open"):
            if state is None:
                self.state[e.grant_id] = "ended_first"
                self.early_end[e.grant_id] = e
            else:
                self._close(self.opened[e.grant_id], e)
            return True
        return False

    def _close(self, start: GrantEvent, end: GrantEvent) -> None:
        self.state[start.grant_id] = "closed"
        name = (start.institution, start.project, start.sku)
        self.device_ms[name] = self.device_ms.get(name, 0) + device_ms(start.count, start.at_ms, end.at_ms)
        self.closed.append(start.grant_id)


async def test_random_event_streams_match_the_reference_rules(client: aioredis.Redis, store: RedisUsageStore) -> None:
    """Shuffled, duplicated and re-ided events in random batches, against the reference model."""
    for seed in range(25):
        await client.flushdb()
        rng = random.Random(seed)
        model = Model()
        pool: list[GrantEvent] = []
        for i in range(rng.randint(1, 25)):
            gid = new_grant_id(T0 + i)
            inst, sku, count = rng.choice(["kaist", "snu"]), rng.choice(["RNGD", "ATOM"]), rng.randint(1, 8)
            start = T0 + rng.randrange(10**6)
            pool.append(granted(gid, start, count, inst=inst, sku=sku))
            for k in range(rng.randint(0, 3)):
                stop = start + rng.randrange(-1_000, 10**6)
                pool.append(ended(gid, stop, "released", count, inst=inst, sku=sku, event_id=f"{gid}:e{k}"))
        stream = pool + rng.sample(pool, k=len(pool) // 2)
        rng.shuffle(stream)
        while stream:
            cut = rng.randint(1, 12)
            batch, stream = stream[:cut], stream[cut:]
            expected_applied = sum(model.apply(e) for e in batch)
            assert await store.ingest(batch) == IngestResult(expected_applied, len(batch) - expected_applied)
        totals = {(t.institution, t.project, t.sku): t for t in await store.totals(UsageFilter())}
        assert {k: t.device_ms for k, t in totals.items() if t.grants} == model.device_ms, seed
        running: dict[tuple[str, str, str], tuple[int, int, int]] = {}
        for gid, state in model.state.items():
            if state == "open":
                e = model.opened[gid]
                n, c, s = running.get((e.institution, e.project, e.sku), (0, 0, 0))
                running[(e.institution, e.project, e.sku)] = (n + 1, c + e.count * D, s + e.count * e.at_ms)
        assert {
            k: (t.running_grants, t.running_devices, t.running_start_sum) for k, t in totals.items() if t.running_grants
        } == running, seed
        assert [r.grant_id for r in await store.ledger(limit=10_000)] == model.closed, seed


async def test_slices_count_their_share_of_the_device_not_a_device_each(store: RedisUsageStore) -> None:
    def sliced(gid: str, kind: str, count: int) -> GrantEvent:
        return replace(granted(gid, count=count), attrs=GrantAttrs(slice_kind=kind))

    mig, share = new_grant_id(T0), new_grant_id(T0 + 1)
    await store.ingest([sliced(mig, "mig-1g.10gb", 7), sliced(share, "fraction-0.25", 2)])
    totals = await row(store)
    # Seven sevenths and two quarters: 1.5 devices held, not 9.
    assert totals.running_devices == 7 * D // 7 + 2 * D // 4
    assert usage_row(totals, T0 + 3_600_000).running_device_seconds == 1.5 * 3600
    await store.ingest([ended(mig, T0 + 3_600_000), ended(share, T0 + 3_600_000)])
    totals = await row(store)
    assert (totals.device_ms, totals.running_devices, totals.running_start_sum) == (int(1.5 * 3_600_000), 0, 0)
    records = {r.grant_id: r for r in await store.ledger()}
    assert (records[mig].count, records[mig].device_ms) == (7, 3_600_000)
    assert (records[share].count, records[share].device_ms) == (2, 1_800_000)
    # The ledger lines keep the slice count and kind: rating prices slice-hours.
    lines = [line async for page in store.lines("2025-06") for line in page]
    assert sorted((x.count, x.attrs.slice_kind) for x in lines) == [(2, "fraction-0.25"), (7, "mig-1g.10gb")]
