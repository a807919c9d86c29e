"""Budget burn fed back to quota: the `BudgetSink` port and the feed that drives it.

The feed reads the ledger of closed grants from a cursor, converts each to normalised
accelerator-hours with the current price book, sums them per (institution, project, SKU) and hands
the batch to the sink under an id (the last ledger position in it), then advances the cursor. A
crash between push and cursor write re-sends the same batch with the same id, so a sink that
remembers ids applies each batch once.

Quota's side of this (an RPC that takes burn) is being defined separately; until it exists the
composition root wires no sink and `InMemoryBudgetSink` is the real in-process implementation the
tests drive.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from slicebroker.accounting.domain.ledger import _half_up
from slicebroker.accounting.domain.model import LedgerRecord
from slicebroker.accounting.domain.pricebook import PriceBook


@dataclass(frozen=True, slots=True)
class BudgetBurn:
    institution: str
    project: str
    sku: str
    # Normalised accelerator-hours, in millionths.
    units_micros: int


class BudgetSink(Protocol):
    async def burn(self, batch_id: str, burns: Sequence[BudgetBurn]) -> None:
        """Records one batch; the same `batch_id` twice must count once."""
        ...


@dataclass
class InMemoryBudgetSink:
    """A real, in-process `BudgetSink`: totals per (institution, project, SKU), idempotent by batch."""

    totals: dict[tuple[str, str, str], int] = field(default_factory=dict)
    batches: list[str] = field(default_factory=list)

    async def burn(self, batch_id: str, burns: Sequence[BudgetBurn]) -> None:
        if batch_id in self.batches:
            return
        self.batches.append(batch_id)
        for b in burns:
            key = (b.institution, b.project, b.sku)
            self.totals[key] = self.totals.get(key, 0) + b.units_micros


class BurnCursor(Protocol):
    async def ledger(self, after: str = "", limit: int = 1000) -> list[LedgerRecord]: ...
    async def burn_cursor(self) -> str: ...
    async def set_burn_cursor(self, position: str) -> None: ...


def burns_of(records: Sequence[LedgerRecord], book: PriceBook | None) -> list[BudgetBurn]:
    """Accelerator-hours per row: the records' device-ms (a slice counting its share of the device)
    at the whole device's units; a SKU the book does not price counts 1 per device-hour."""
    sums: dict[tuple[str, str, str], int] = {}
    for r in records:
        units = 1_000_000
        if book is not None:
            entry = book.price(r.sku, "whole", book.tier_of(r.institution), r.start_ms)
            if entry is not None:
                units = entry.units_micros
        key = (r.institution, r.project, r.sku)
        sums[key] = sums.get(key, 0) + _half_up(r.device_ms * units, 3_600_000)
    return [BudgetBurn(*key, units) for key, units in sorted(sums.items())]


class BudgetFeed:
    def __init__(
        self, store: BurnCursor, sink: BudgetSink, book: Callable[[], Awaitable[PriceBook | None]], batch: int = 1000
    ) -> None:
        self._store, self._sink, self._book, self._batch = store, sink, book, batch

    async def push_once(self) -> int:
        """Pushes the next batch of closed grants; returns how many records it covered (0: caught up)."""
        cursor = await self._store.burn_cursor()
        records = await self._store.ledger(cursor, self._batch)
        if not records:
            return 0
        # 1. push under the batch's last position, 2. advance: a crash between repeats step 1 only.
        await self._sink.burn(records[-1].position, burns_of(records, await self._book()))
        await self._store.set_burn_cursor(records[-1].position)
        return len(records)
