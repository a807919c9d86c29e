"""Budget burn pushed from the ledger through the `BudgetSink` port, over the real Redis store, with
the in-process sink (quota's RPC for burn does not exist yet)."""

from __future__ import annotations

from slicebroker.accounting.domain.budget import BudgetFeed, InMemoryBudgetSink
from slicebroker.accounting.domain.model import EventType, GrantEvent
from slicebroker.accounting.domain.pricebook import PriceBook, PriceEntry, Tier
from slicebroker.accounting.storage.redis_store import RedisUsageStore

T0 = 1_764_547_200_000  # 2025-12-01
HOUR = 3_600_000


def closed_grant(i: int, sku: str, count: int, hours: int) -> list[GrantEvent]:
    gid = f"gr_{i:026d}"
    base = {"grant_id": gid, "institution": "kaist", "project": "llm", "sku": sku, "count": count}
    return [
        GrantEvent(event_id=f"{gid}:g", type=EventType.GRANTED, at_ms=T0, **base),
        GrantEvent(event_id=f"{gid}:e", type=EventType.ENDED, at_ms=T0 + hours * HOUR, reason="released", **base),
    ]


async def test_burn_is_pushed_once_in_normalised_hours_and_resumes_from_the_cursor(store: RedisUsageStore) -> None:
    book = PriceBook(entries=(PriceEntry("B200-SXM-180GB", "whole", Tier.ACADEMIC, 0, 2_500_000, 0),), version=1)

    async def latest() -> PriceBook:
        return book

    await store.ingest([*closed_grant(1, "H100-SXM-80GB", 8, 2), *closed_grant(2, "B200-SXM-180GB", 2, 4)])
    sink = InMemoryBudgetSink()
    feed = BudgetFeed(store, sink, latest, batch=1)
    assert await feed.push_once() == 1
    assert await feed.push_once() == 1
    assert await feed.push_once() == 0
    assert sink.totals == {
        ("kaist", "llm", "H100-SXM-80GB"): 16_000_000,  # 8 devices x 2 h, unpriced: 1 per device-hour
        ("kaist", "llm", "B200-SXM-180GB"): 20_000_000,  # 2 x 4 h x 2.5
    }
    # A crash after the push and before the cursor moved re-sends the same batch id: counted once.
    await store.set_burn_cursor("")
    await BudgetFeed(store, sink, latest, batch=10).push_once()
    await store.set_burn_cursor("")
    again = InMemoryBudgetSink(totals=dict(sink.totals), batches=list(sink.batches))
    await BudgetFeed(store, again, latest, batch=1).push_once()
    assert again.totals == sink.totals
