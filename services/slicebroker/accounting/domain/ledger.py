"""Ledger lines and their rating into charge rows, in exact integers.

A `LedgerLine` is one closed grant's share of one billing period, as the ledger index keeps it: the
period it is billed in (its charge period, or a later one when it arrived after its own was closed),
its identity, lifetime and attributes. Rating cuts it at every UTC midnight inside its charge period
and prices each day with the book's entry valid that day; the `ChargeRow`s that come out are what
statements sum and exports write, so the two reconcile by construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from slicebroker.accounting.domain.model import GrantAttrs
from slicebroker.accounting.domain.periods import DAY_MS, Period
from slicebroker.accounting.domain.pricebook import PREEMPTIBLE, PriceBook

# count x ms x micro-units / (3.6e6 ms/h x 1e4 micro-units/cent)
_CENTS_DEN = 36_000_000_000


class Category:
    USAGE = "Usage"
    ADJUSTMENT = "Adjustment"


@dataclass(frozen=True, slots=True)
class LedgerLine:
    billing_period: str
    institution: str
    charge_period: str
    start_ms: int
    grant_id: str
    project: str
    sku: str
    count: int
    end_ms: int
    reason: str
    attrs: GrantAttrs


@dataclass(frozen=True, slots=True)
class AdjustmentLine:
    """A correction of a closed period's charges by re-rating, billed in a later period."""

    billing_period: str
    institution: str
    charge_period: str
    project: str
    user: str
    sku: str
    slice_kind: str
    tier: str
    list_cents: int
    billed_cents: int
    # "v<from>->v<to>": which re-rating made it.
    rerate: str


@dataclass(frozen=True, slots=True)
class ChargeRow:
    """One line of a bill: a grant's usage on one day, or an adjustment."""

    category: str
    correction: bool
    billing_period: str
    charge_period: str
    institution: str
    project: str
    user: str
    sku: str
    slice_kind: str
    tier: str
    grant_id: str
    charge_start_ms: int
    charge_end_ms: int
    count: int
    # Slice-hours and normalised accelerator-hours, in millionths.
    quantity_micros: int
    units_micros: int
    # Price per slice-hour (currency micro-units) before and after the preemptible discount.
    list_price_micros: int
    price_micros: int
    list_cents: int
    billed_cents: int
    priced: bool
    attrs: GrantAttrs
    description: str


# Period name -> (start, end) ms: calendar arithmetic once per period, not once per line.
_BOUNDS: dict[str, tuple[int, int]] = {}


def _half_up(num: int, den: int) -> int:
    return (num + den // 2) // den if num >= 0 else -((-num + den // 2) // den)


def rate_line(line: LedgerLine, book: PriceBook) -> Iterator[ChargeRow]:
    """The day rows of `line` inside its charge period, priced with `book`."""
    bounds = _BOUNDS.get(line.charge_period)
    if bounds is None:
        p = Period(int(line.charge_period[:4]), int(line.charge_period[5:7]))
        bounds = _BOUNDS[line.charge_period] = (p.start_ms, p.end_ms)
    return rate_span(line, book, max(line.start_ms, bounds[0]), min(line.end_ms, bounds[1]))


def rate_span(line: LedgerLine, book: PriceBook, start: int, end: int) -> Iterator[ChargeRow]:
    """The day rows of `line`'s use over [start, end), cut at every UTC midnight, each day priced
    with the book's entry valid that day. The ledger rates a line's share of its charge period
    with it; a quote (`AccountingService.rate`) rates a use that has not happened yet."""
    tier = book.tier_of(line.institution)
    attrs = line.attrs
    preemptible = attrs.priority_class == PREEMPTIBLE
    keep_bp = 10_000 - book.preemptible_discount_bp if preemptible else 10_000
    correction = line.billing_period != line.charge_period
    count = line.count
    t = start
    while t < end:
        cut = min(end, t - t % DAY_MS + DAY_MS)
        slice_ms = count * (cut - t)
        entry = book.price(line.sku, attrs.slice_kind, tier, t)
        if entry is None:
            list_price = price = units = 0
        else:
            list_price = entry.price_micros
            price = list_price * keep_bp // 10_000 if keep_bp != 10_000 else list_price
            units = entry.units_micros
        list_num = slice_ms * list_price
        yield ChargeRow(
            category=Category.USAGE,
            correction=correction,
            billing_period=line.billing_period,
            charge_period=line.charge_period,
            institution=line.institution,
            project=line.project,
            user=attrs.user,
            sku=line.sku,
            slice_kind=attrs.slice_kind,
            tier=tier.value,
            grant_id=line.grant_id,
            charge_start_ms=t,
            charge_end_ms=cut,
            count=count,
            quantity_micros=_half_up(slice_ms * 10, 36),
            units_micros=_half_up(slice_ms * units, 3_600_000),
            list_price_micros=list_price,
            price_micros=price,
            list_cents=_half_up(list_num, _CENTS_DEN),
            billed_cents=_half_up(list_num * keep_bp, _CENTS_DEN * 10_000),
            priced=entry is not None,
            attrs=attrs,
            description=f"{count} x {line.sku} {attrs.slice_kind}, grant {line.grant_id}",
        )
        t = cut


def rate_lines(lines: Iterable[LedgerLine], book: PriceBook) -> Iterator[ChargeRow]:
    for line in lines:
        yield from rate_line(line, book)


def adjustment_row(adj: AdjustmentLine, period_start_ms: int, period_end_ms: int) -> ChargeRow:
    return ChargeRow(
        category=Category.ADJUSTMENT,
        correction=True,
        billing_period=adj.billing_period,
        charge_period=adj.charge_period,
        institution=adj.institution,
        project=adj.project,
        user=adj.user,
        sku=adj.sku,
        slice_kind=adj.slice_kind,
        tier=adj.tier,
        grant_id="",
        charge_start_ms=period_start_ms,
        charge_end_ms=period_end_ms,
        count=0,
        quantity_micros=0,
        units_micros=0,
        list_price_micros=0,
        price_micros=0,
        list_cents=adj.list_cents,
        billed_cents=adj.billed_cents,
        priced=True,
        attrs=GrantAttrs(user=adj.user, slice_kind=adj.slice_kind),
        description=f"re-rating {adj.rerate} of {adj.charge_period}: {adj.sku} {adj.slice_kind}",
    )


def adjustment_rows(adjustments: Iterable[AdjustmentLine]) -> Iterator[ChargeRow]:
    for adj in adjustments:
        p = Period(int(adj.charge_period[:4]), int(adj.charge_period[5:7]))
        yield adjustment_row(adj, p.start_ms, p.end_ms)


def format_cents(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    q, r = divmod(abs(cents), 100)
    return f"{sign}{q}.{r:02d}"
