"""Pricing a prospective use: what `count` slices of a SKU for a duration from `at` would cost.

The use is rated as the ledger would rate it once it happened (`rate_span`: the institution's tier,
the preemptible discount, days cut at UTC midnight and each priced with the entry valid that day),
so a quote and the later bill agree to the cent when the book does not change in between.
"""

from __future__ import annotations

from dataclasses import dataclass

from slicebroker.accounting.domain.ledger import LedgerLine, rate_span
from slicebroker.accounting.domain.model import GrantAttrs
from slicebroker.accounting.domain.periods import DAY_MS, Period, day_name
from slicebroker.accounting.domain.pricebook import PREEMPTIBLE, PriceBook
from slicebroker.accounting.domain.validation import MAX_AT_MS, MAX_COUNT, MIN_AT_MS, check_sku, check_slice_kind
from slicebroker.core.errors import InvalidArgument
from slicebroker.core.ids import check_name

# Ten years: rating walks the use day by day.
MAX_DURATION_MS = 3660 * DAY_MS


@dataclass(frozen=True, slots=True)
class RateQuery:
    institution: str
    sku: str
    slice_kind: str
    count: int
    duration_ms: int
    priority_class: str = ""
    # None: now.
    at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class RateResult:
    currency: str
    # Billed cost of the whole use, in hundredths of the currency.
    cost_cents: int
    # What the `count` slices cost per hour at `at`, after any discount, in currency micro-units.
    cost_per_hour_micros: int
    units_micros: int
    tier: str
    book_version: int


def check_rate_query(q: RateQuery, now_ms: int) -> RateQuery:
    """The query with defaults filled in (whole device, now), or the first bad field named."""
    if q.institution:
        check_name("institution", q.institution)
    check_sku("sku", q.sku)
    kind = q.slice_kind or "whole"
    check_slice_kind("slice_kind", kind)
    if q.count <= 0 or q.count > MAX_COUNT:
        raise InvalidArgument("count", f"must be between 1 and {MAX_COUNT}, not {q.count}")
    if q.duration_ms < 0:
        raise InvalidArgument("duration", "must not be negative")
    if q.duration_ms > MAX_DURATION_MS:
        raise InvalidArgument("duration", f"must be at most {MAX_DURATION_MS // DAY_MS} days")
    at = now_ms if q.at_ms is None else q.at_ms
    if not MIN_AT_MS <= at < MAX_AT_MS - MAX_DURATION_MS:
        raise InvalidArgument("at", "must lie between 2000-01-01 and 2090-01-01")
    if len(q.priority_class) > 64:
        raise InvalidArgument("priority_class", "must be at most 64 characters")
    return RateQuery(q.institution, q.sku, kind, q.count, q.duration_ms, q.priority_class, at)


def rate_use(q: RateQuery, book: PriceBook) -> RateResult:
    """Prices a checked query with `book`. A SKU (or slice kind of it) the book has no price for at
    any moment of the use is refused, naming the field: a quote never silently says "free"."""
    assert q.at_ms is not None, "check_rate_query fills it in"
    tier = book.tier_of(q.institution)
    start, end = q.at_ms, q.at_ms + q.duration_ms
    entry = book.price(q.sku, q.slice_kind, tier, start)
    if entry is None:
        _refuse_unpriced(q, book, tier.value, start)
    period = Period.of_ms(start).name
    line = LedgerLine(
        billing_period=period,
        institution=q.institution,
        charge_period=period,
        start_ms=start,
        grant_id="",
        project="",
        sku=q.sku,
        count=q.count,
        end_ms=end,
        reason="",
        attrs=GrantAttrs(slice_kind=q.slice_kind, priority_class=q.priority_class),
    )
    cents = units = 0
    for row in rate_span(line, book, start, end):
        if not row.priced:
            _refuse_unpriced(q, book, tier.value, row.charge_start_ms)
        cents += row.billed_cents
        units += row.units_micros
    assert entry is not None
    keep_bp = 10_000 - book.preemptible_discount_bp if q.priority_class == PREEMPTIBLE else 10_000
    per_hour = q.count * entry.price_micros * keep_bp // 10_000
    if q.duration_ms == 0:
        units = 0
    return RateResult(
        currency=book.currency,
        cost_cents=cents,
        cost_per_hour_micros=per_hour,
        units_micros=units,
        tier=tier.value,
        book_version=book.version,
    )


def _refuse_unpriced(q: RateQuery, book: PriceBook, tier: str, at_ms: int) -> None:
    """Names what is missing: the SKU, the slice kind of a priced SKU, or the time (no entry of the
    kind and tier valid then)."""
    if not any(e.sku == q.sku for e in book.entries):
        field, what = "sku", q.sku
    elif not any(e.sku == q.sku and e.slice_kind == q.slice_kind and e.tier.value == tier for e in book.entries):
        field, what = "slice_kind", f"{q.sku} {q.slice_kind}"
    else:
        field, what = "at", f"{q.sku} {q.slice_kind}"
    raise InvalidArgument(field, f"price book v{book.version} has no {tier} price for {what} on {day_name(at_ms)}")
