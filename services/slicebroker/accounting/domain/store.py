"""The port `AccountingService` needs from storage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from slicebroker.accounting.domain.model import GrantEvent, IngestResult, LedgerRecord, RowTotals, UsageFilter


class UsageStore(Protocol):
    async def ingest(self, events: Sequence[GrantEvent]) -> IngestResult:
        """Applies a batch of checked events atomically: all of it or (on a crash) none of it.

        Each event id takes effect at most once, and each grant opens and closes at most once;
        whatever takes no effect is counted as a duplicate.
        """
        ...

    async def totals(self, usage_filter: UsageFilter) -> list[RowTotals]:
        """The totals of every (institution, project, SKU) that matches, read in one snapshot."""
        ...

    async def ledger(self, after: str = "", limit: int = 1000) -> list[LedgerRecord]:
        """Ledger records in the order grants closed, from just after position `after` ("" = start)."""
        ...
