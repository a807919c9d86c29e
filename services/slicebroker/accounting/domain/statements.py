"""Statements: a closed billing period frozen per institution, summed from the same charge rows
that exports write (so a FOCUS export's BilledCost always adds up to the statement's total)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from slicebroker.accounting.domain.ledger import Category, ChargeRow


@dataclass(frozen=True, slots=True)
class StatementLine:
    category: str  # Usage or Adjustment
    # The period the usage happened in; differs from the statement's for late usage and re-ratings.
    charge_period: str
    project: str
    sku: str
    slice_kind: str
    tier: str
    quantity_micros: int
    units_micros: int
    list_cents: int
    billed_cents: int


@dataclass(frozen=True, slots=True)
class Statement:
    period: str
    institution: str
    currency: str
    book_version: int
    lines: tuple[StatementLine, ...]

    @property
    def total_cents(self) -> int:
        return sum(line.billed_cents for line in self.lines)

    @property
    def usage_cents(self) -> int:
        return sum(
            x.billed_cents for x in self.lines if x.category == Category.USAGE and x.charge_period == self.period
        )

    @property
    def late_cents(self) -> int:
        return sum(
            x.billed_cents for x in self.lines if x.category == Category.USAGE and x.charge_period != self.period
        )

    @property
    def adjustment_cents(self) -> int:
        return sum(x.billed_cents for x in self.lines if x.category == Category.ADJUSTMENT)


_Key = tuple[str, str, str, str, str, str]


class StatementBuilder:
    """Sums charge rows per institution and line key in one pass; holds only the sums."""

    def __init__(self, period: str, currency: str, book_version: int) -> None:
        self._period, self._currency, self._version = period, currency, book_version
        self._sums: dict[str, dict[_Key, list[int]]] = {}

    def add(self, rows: Iterable[ChargeRow]) -> None:
        sums = self._sums
        for r in rows:
            per = sums.get(r.institution)
            if per is None:
                per = sums[r.institution] = {}
            key = (r.category, r.charge_period, r.project, r.sku, r.slice_kind, r.tier)
            acc = per.get(key)
            if acc is None:
                acc = per[key] = [0, 0, 0, 0]
            acc[0] += r.quantity_micros
            acc[1] += r.units_micros
            acc[2] += r.list_cents
            acc[3] += r.billed_cents

    def statements(self) -> list[Statement]:
        return [
            Statement(
                period=self._period,
                institution=inst,
                currency=self._currency,
                book_version=self._version,
                lines=tuple(StatementLine(*key, *acc) for key, acc in sorted(per.items())),
            )
            for inst, per in sorted(self._sums.items())
        ]
