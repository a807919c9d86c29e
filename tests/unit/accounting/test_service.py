"""`AccountingService` over a recording store: what reaches the store, and how usage is reported."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from slicebroker.accounting.domain.model import (
    EventType,
    GrantEvent,
    IncomingEvent,
    IngestResult,
    LedgerRecord,
    RowTotals,
    UsageFilter,
)
from slicebroker.accounting.domain.service import AccountingService
from slicebroker.accounting.domain.slices import SIZE_DEN
from slicebroker.core.errors import InvalidArgument

T0 = 1_750_000_000_000


class RecordingStore:
    def __init__(self, totals: list[RowTotals] | None = None) -> None:
        self.batches: list[list[GrantEvent]] = []
        self.filters: list[UsageFilter] = []
        self._totals = totals or []

    async def ingest(self, events: Sequence[GrantEvent]) -> IngestResult:
        self.batches.append(list(events))
        return IngestResult(applied=len(events), duplicates=0)

    async def totals(self, usage_filter: UsageFilter) -> list[RowTotals]:
        self.filters.append(usage_filter)
        return self._totals

    async def ledger(self, after: str = "", limit: int = 1000) -> list[LedgerRecord]:
        return []


def incoming(i: int, **changes: object) -> IncomingEvent:
    values: dict[str, object] = {
        "event_id": f"e{i}",
        "grant_id": f"gr_01hzy3k5m7p9r1t3v5x7z9b1{i:02d}",
        "type": EventType.GRANTED,
        "institution": "kaist",
        "project": "llm",
        "sku": "H100-SXM-80GB",
        "count": 1,
        "at_ms": T0,
        **changes,
    }
    return IncomingEvent(**values)  # type: ignore[arg-type]


async def test_a_valid_batch_reaches_the_store_in_one_call() -> None:
    store = RecordingStore()
    result = await AccountingService(store).ingest([incoming(i) for i in range(5)])
    assert result == IngestResult(applied=5, duplicates=0)
    assert [len(b) for b in store.batches] == [5]


async def test_a_batch_with_one_bad_event_never_reaches_the_store() -> None:
    store = RecordingStore()
    batch = [incoming(i) for i in range(5)]
    batch[4] = incoming(4, count=0)
    with pytest.raises(InvalidArgument) as exc:
        await AccountingService(store).ingest(batch)
    assert exc.value.field == "events[4].count"
    assert store.batches == []


async def test_an_empty_batch_is_answered_without_the_store() -> None:
    store = RecordingStore()
    assert await AccountingService(store).ingest([]) == IngestResult(0, 0)
    assert store.batches == []


async def test_a_batch_over_the_configured_limit_is_refused() -> None:
    store = RecordingStore()
    with pytest.raises(InvalidArgument) as exc:
        await AccountingService(store, max_ingest_events=3).ingest([incoming(i) for i in range(4)])
    assert exc.value.field == "events"


async def test_usage_rows_are_sorted_and_running_usage_is_as_of_now() -> None:
    store = RecordingStore(
        [
            RowTotals("snu", "a", "RNGD", device_ms=1_000, grants=1),
            RowTotals("kaist", "b", "ATOM", running_grants=1, running_devices=4 * SIZE_DEN, running_start_sum=4 * T0),
            RowTotals("kaist", "a", "ATOM", device_ms=500, grants=1),
        ]
    )
    usage = await AccountingService(store).usage(UsageFilter(institution="kaist"), now_ms=T0 + 2_000)
    assert usage.as_of_ms == T0 + 2_000
    assert [(r.institution, r.project) for r in usage.rows] == [("kaist", "a"), ("kaist", "b"), ("snu", "a")]
    assert usage.rows[1].running_device_seconds == 8.0
    assert store.filters == [UsageFilter(institution="kaist")]


async def test_a_bad_filter_never_reaches_the_store() -> None:
    store = RecordingStore()
    with pytest.raises(InvalidArgument) as exc:
        await AccountingService(store).usage(UsageFilter(sku="not a sku"), now_ms=T0)
    assert exc.value.field == "sku"
    assert store.filters == []
