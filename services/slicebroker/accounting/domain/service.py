"""`AccountingService`: the application service the servicer calls, one method per use case."""

from __future__ import annotations

from collections.abc import Sequence

from slicebroker.accounting.domain.model import (
    IncomingEvent,
    IngestResult,
    LedgerRecord,
    Usage,
    UsageFilter,
)
from slicebroker.accounting.domain.store import UsageStore
from slicebroker.accounting.domain.usage import usage_row
from slicebroker.accounting.domain.validation import check_filter, parse_events


class AccountingService:
    def __init__(self, store: UsageStore, *, max_ingest_events: int = 10_000) -> None:
        self._store = store
        self._max_ingest_events = max_ingest_events

    async def ingest(self, events: Sequence[IncomingEvent]) -> IngestResult:
        """Checks the whole batch first (a bad event refuses it all, nothing written), then applies
        it in one atomic store call."""
        checked = parse_events(events, self._max_ingest_events)
        if not checked:
            return IngestResult(applied=0, duplicates=0)
        return await self._store.ingest(checked)

    async def usage(self, usage_filter: UsageFilter, now_ms: int) -> Usage:
        totals = await self._store.totals(check_filter(usage_filter))
        rows = sorted((usage_row(t, now_ms) for t in totals), key=lambda r: (r.institution, r.project, r.sku))
        return Usage(rows=tuple(rows), as_of_ms=now_ms)

    async def ledger(self, after: str = "", limit: int = 1000) -> list[LedgerRecord]:
        return await self._store.ledger(after, limit)
