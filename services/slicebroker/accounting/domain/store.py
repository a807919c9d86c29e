"""The port `AccountingService` needs from storage."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from slicebroker.accounting.domain.columns import LineColumns
from slicebroker.accounting.domain.ledger import AdjustmentLine, LedgerLine
from slicebroker.accounting.domain.model import GrantEvent, IngestResult, LedgerRecord, RowTotals, UsageFilter
from slicebroker.accounting.domain.pricebook import PriceBook
from slicebroker.accounting.domain.statements import Statement


class UsageStore(Protocol):
    async def ingest(self, events: Sequence[GrantEvent]) -> IngestResult:
        """Applies a batch of checked events atomically: all of it or (on a crash) none of it.

        Each event id takes effect at most once, and each grant opens and closes at most once;
        whatever takes no effect is counted as a duplicate. A closing grant is indexed under every
        period its lifetime touches, billed in that period or, when it is closed, the next open one.
        """
        ...

    async def totals(self, usage_filter: UsageFilter) -> list[RowTotals]:
        """The totals of every (institution, project, SKU) that matches, read in one snapshot."""
        ...

    async def ledger(self, after: str = "", limit: int = 1000) -> list[LedgerRecord]:
        """Ledger records in the order grants closed, from just after position `after` ("" = start)."""
        ...

    def lines(self, billing_period: str, institution: str = "", page: int = 5000) -> AsyncIterator[list[LedgerLine]]:
        """The ledger lines billed in a period (one institution's, or all), in a fixed order
        (institution, charge period, start, grant id), page by page."""
        ...

    def line_columns(
        self, billing_period: str, institution: str = "", page: int = 20_000
    ) -> AsyncIterator[LineColumns]:
        """`lines`, each page as columns (what exports rate column-wise)."""
        ...

    async def adjustments(self, billing_period: str, institution: str = "") -> list[AdjustmentLine]:
        """Re-rating adjustments billed in a period, in a fixed order."""
        ...

    async def publish_book(self, book: PriceBook, expected_version: int) -> int:
        """Stores `book` as the next version if the latest is `expected_version`, else raises Conflict."""
        ...

    async def price_book(self, version: int = 0) -> PriceBook | None:
        """One version (0: the latest); None when none is published."""
        ...

    async def close_period(self, period: str, book_version: int) -> int:
        """Marks a period closed (no ledger line is billed in it afterwards) and fixes the book version
        it is rated with, unless already fixed; returns that version. Idempotent."""
        ...

    async def rated_with(self, period: str) -> int | None:
        """The book version a closed period is rated with; None while it is open."""
        ...

    async def statements(self, period: str) -> list[Statement]: ...

    async def save_statements(self, period: str, statements: Sequence[Statement]) -> None:
        """Writes each institution's statement unless one is there already: statements never change."""
        ...

    async def commit_rerate(
        self, period: str, from_version: int, to_version: int, adjustments: Sequence[AdjustmentLine]
    ) -> str:
        """Atomically: if `period` is rated with `from_version`, bills `adjustments` in the first open
        period after it, and rates it with `to_version` from now on; returns that billing period.
        Raises Conflict when another re-rating came first."""
        ...

    async def burn_cursor(self) -> str: ...

    async def set_burn_cursor(self, position: str) -> None: ...
