"""The price book: versioned, immutable once published, looked up by SKU, slice kind, tier and day.

Money is kept as integers: prices in micro-units of the currency per slice-hour, costs in hundredths
(cents, or "jeon" for KRW) so that sums of lines equal totals exactly. A price entry also gives the
normalised accelerator-hours one slice-hour counts as (e.g. an H100 = 1, a MIG 3g.40gb slice ≈ 0.43),
which is what budgets burn in; left out, it is the slice's share of the device (`slices.slice_size`).

Validity is by whole UTC days, [valid_from, valid_until), so a day's usage has exactly one price and
usage is cut only at midnights. Two entries of the same SKU, slice kind and tier may not overlap.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from itertools import pairwise

from slicebroker.accounting.domain.periods import parse_day
from slicebroker.accounting.domain.slices import slice_size
from slicebroker.core.errors import InvalidArgument
from slicebroker.core.ids import check_name

MICRO = 1_000_000
# Far enough to mean "until further notice" and still an int64 in ms.
OPEN_END_MS = 4_102_444_800_000  # 2100-01-01
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
_KIND_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+/-]{0,63}$")
MAX_ENTRIES = 10_000


class Tier(StrEnum):
    ACADEMIC = "academic"
    PUBLIC_RESEARCH = "public-research"
    INDUSTRY = "industry"


PREEMPTIBLE = "preemptible"


@dataclass(frozen=True, slots=True)
class PriceEntry:
    sku: str
    slice_kind: str
    tier: Tier
    # Currency micro-units per slice-hour.
    price_micros: int
    # Normalised accelerator-hours per slice-hour, in millionths.
    units_micros: int
    valid_from_ms: int
    valid_until_ms: int = OPEN_END_MS


@dataclass(frozen=True, slots=True)
class PriceBook:
    """One version of the book. `version` 0 is a book not yet published."""

    entries: tuple[PriceEntry, ...]
    currency: str = "KRW"
    default_tier: Tier = Tier.ACADEMIC
    institution_tiers: Mapping[str, Tier] = field(default_factory=dict)
    # Discount on grants of priority class "preemptible", in basis points (2500 = 25 %).
    preemptible_discount_bp: int = 0
    version: int = 0
    _index: dict[tuple[str, str, Tier], tuple[list[int], list[PriceEntry]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        grouped: dict[tuple[str, str, Tier], list[PriceEntry]] = {}
        for e in self.entries:
            grouped.setdefault((e.sku, e.slice_kind, e.tier), []).append(e)
        for key, group in grouped.items():
            group.sort(key=lambda e: e.valid_from_ms)
            self._index[key] = ([e.valid_from_ms for e in group], group)

    def tier_of(self, institution: str) -> Tier:
        return self.institution_tiers.get(institution, self.default_tier)

    def price(self, sku: str, slice_kind: str, tier: Tier, at_ms: int) -> PriceEntry | None:
        """The entry valid at `at_ms`, or None when the book has no price for it then."""
        found = self._index.get((sku, slice_kind, tier))
        if found is None:
            return None
        starts, group = found
        i = bisect_right(starts, at_ms) - 1
        if i < 0:
            return None
        entry = group[i]
        return entry if at_ms < entry.valid_until_ms else None


def parse_amount(field_name: str, text: str) -> int:
    """A non-negative decimal text -> millionths. Negative, non-numeric or over-precise is refused."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidArgument(field_name, f"{text!r} is not a decimal number") from None
    if not value.is_finite():
        raise InvalidArgument(field_name, "must be a finite number")
    if value < 0:
        raise InvalidArgument(field_name, f"must not be negative, not {text}")
    micros = value * MICRO
    if micros != micros.to_integral_value():
        raise InvalidArgument(field_name, "at most 6 decimal places")
    if micros >= 10**15:
        raise InvalidArgument(field_name, "too large")
    return int(micros)


def format_micros(micros: int) -> str:
    sign = "-" if micros < 0 else ""
    q, r = divmod(abs(micros), MICRO)
    return f"{sign}{q}.{r:06d}".rstrip("0").rstrip(".") if r else f"{sign}{q}"


@dataclass(frozen=True, slots=True)
class PriceEntryInput:
    """A price entry as a caller sends it: amounts as decimal text, validity as dates."""

    sku: str
    slice_kind: str
    tier: str
    price_per_hour: str
    units_per_hour: str
    valid_from: str
    valid_until: str = ""


@dataclass(frozen=True, slots=True)
class PriceBookInput:
    entries: Sequence[PriceEntryInput]
    currency: str = ""
    default_tier: str = ""
    institution_tiers: Mapping[str, str] = field(default_factory=dict)
    preemptible_discount_bp: int = 0


def _tier(field_name: str, value: str) -> Tier:
    try:
        return Tier(value)
    except ValueError:
        known = ", ".join(t.value for t in Tier)
        raise InvalidArgument(field_name, f"{value!r} is not a tier: one of {known}") from None


def parse_price_book(book: PriceBookInput, default_currency: str) -> PriceBook:
    """The checked book, or the first bad field named (e.g. "book.entries[3].valid_from")."""
    currency = book.currency or default_currency
    if not _CURRENCY_RE.match(currency):
        raise InvalidArgument("book.currency", f"{currency!r} is not an ISO 4217 code such as KRW")
    default_tier = _tier("book.default_tier", book.default_tier) if book.default_tier else Tier.ACADEMIC
    tiers: dict[str, Tier] = {}
    for name, tier in sorted(book.institution_tiers.items()):
        check_name(f"book.institution_tiers[{name}]", name)
        tiers[name] = _tier(f"book.institution_tiers[{name}]", tier)
    if not 0 <= book.preemptible_discount_bp <= 10_000:
        raise InvalidArgument("book.preemptible_discount_bp", "must be between 0 and 10000 (basis points)")
    if len(book.entries) > MAX_ENTRIES:
        raise InvalidArgument("book.entries", f"at most {MAX_ENTRIES} entries")
    entries: list[PriceEntry] = []
    for i, e in enumerate(book.entries):
        f = f"book.entries[{i}]"
        if not _KIND_RE.match(e.sku):
            raise InvalidArgument(f"{f}.sku", f"{e.sku!r} is not a SKU name")
        kind = e.slice_kind or "whole"
        if not _KIND_RE.match(kind):
            raise InvalidArgument(f"{f}.slice_kind", f"{kind!r} is not a slice kind")
        start = parse_day(f"{f}.valid_from", e.valid_from)
        until = parse_day(f"{f}.valid_until", e.valid_until) if e.valid_until else OPEN_END_MS
        if until <= start:
            raise InvalidArgument(f"{f}.valid_until", "must be after valid_from")
        entries.append(
            PriceEntry(
                sku=e.sku,
                slice_kind=kind,
                tier=_tier(f"{f}.tier", e.tier),
                price_micros=parse_amount(f"{f}.price_per_hour", e.price_per_hour),
                units_micros=(
                    parse_amount(f"{f}.units_per_hour", e.units_per_hour)
                    if e.units_per_hour
                    else _default_units(e.sku, kind)
                ),
                valid_from_ms=start,
                valid_until_ms=until,
            )
        )
    _check_no_overlap(entries)
    return PriceBook(
        entries=tuple(entries),
        currency=currency,
        default_tier=default_tier,
        institution_tiers=tiers,
        preemptible_discount_bp=book.preemptible_discount_bp,
    )


def _default_units(sku: str, kind: str) -> int:
    """Accelerator-hours per slice-hour when the book gives none: a whole device counts 1, a slice
    its share of the device (a 1g.10gb MIG slice of an H100 1/7), never a whole one."""
    size = slice_size(sku, kind)
    return (size.numerator * MICRO * 2 + size.denominator) // (2 * size.denominator)


def _check_no_overlap(entries: Sequence[PriceEntry]) -> None:
    by_key: dict[tuple[str, str, Tier], list[tuple[int, int, int]]] = {}
    for i, e in enumerate(entries):
        by_key.setdefault((e.sku, e.slice_kind, e.tier), []).append((e.valid_from_ms, e.valid_until_ms, i))
    for (sku, kind, tier), spans in by_key.items():
        spans.sort()
        for (_, until, i), (start, _, j) in pairwise(spans):
            if start < until:
                raise InvalidArgument(
                    f"book.entries[{max(i, j)}].valid_from",
                    f"validity overlaps entries[{min(i, j)}] for {sku}/{kind}/{tier.value}",
                )
