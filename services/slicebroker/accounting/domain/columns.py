"""Rating a page of ledger lines column-wise: the exporter's fast path, equal to `rate_line`.

`rate_line` builds one `ChargeRow` object per day of a grant, which costs tens of microseconds per
row in Python; an export of a million rows needs a few. Here a page of lines is a set of columns
(pyarrow string arrays, numpy int64 arrays), split into days with `np.repeat`, priced by looking
up each distinct (SKU, slice kind, tier, day) once, and its money computed with the same integer
half-up roundings as `rate_line`, overflow-safe (see `_muldiv`). The result, `ChargeColumns`,
holds exactly what the `ChargeRow`s of the same lines would, in the same order: a test checks the
two paths row for row, and statements (summed from `rate_line`) reconcile with exports (encoded
from these columns).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from slicebroker.accounting.domain.ledger import _CENTS_DEN, Category, ChargeRow, LedgerLine
from slicebroker.accounting.domain.model import GrantAttrs
from slicebroker.accounting.domain.periods import DAY_MS, Period
from slicebroker.accounting.domain.pricebook import PREEMPTIBLE, PriceBook, Tier

Ints = npt.NDArray[np.int64]
_STR = pa.string()
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class LineColumns:
    """One page of ledger lines (`LedgerLine`'s fields), column by column."""

    billing_period: pa.Array
    institution: pa.Array
    charge_period: pa.Array
    start_ms: Ints
    grant_id: pa.Array
    project: pa.Array
    sku: pa.Array
    count: Ints
    end_ms: Ints
    reason: pa.Array
    user: pa.Array
    slice_kind: pa.Array
    priority_class: pa.Array
    isolation_class: pa.Array
    node: pa.Array
    site: pa.Array

    def __len__(self) -> int:
        return len(self.start_ms)


@dataclass(frozen=True, slots=True)
class ChargeColumns:
    """Charge rows (`ChargeRow`'s fields, attributes flattened), column by column."""

    category: pa.Array
    correction: npt.NDArray[np.bool_]
    billing_period: pa.Array
    charge_period: pa.Array
    institution: pa.Array
    project: pa.Array
    user: pa.Array
    sku: pa.Array
    slice_kind: pa.Array
    tier: pa.Array
    grant_id: pa.Array
    charge_start_ms: Ints
    charge_end_ms: Ints
    count: Ints
    quantity_micros: Ints
    units_micros: Ints
    list_price_micros: Ints
    price_micros: Ints
    list_cents: Ints
    billed_cents: Ints
    priced: npt.NDArray[np.bool_]
    priority_class: pa.Array
    isolation_class: pa.Array
    node: pa.Array
    site: pa.Array
    description: pa.Array

    def __len__(self) -> int:
        return len(self.charge_start_ms)


_ATTRS = ("priority_class", "isolation_class", "node", "site")
_INT_FIELDS = frozenset(
    f.name
    for f in fields(ChargeColumns)
    if f.name.endswith(("_ms", "_micros", "_cents")) or f.name in ("count", "correction", "priced")
)


def lines_to_columns(lines: Sequence[LedgerLine]) -> LineColumns:
    """Columns of `LedgerLine` objects (what the store reads as columns directly)."""

    def s(get: Callable[[LedgerLine], str]) -> pa.Array:
        return pa.array([get(x) for x in lines], _STR)

    def i(get: Callable[[LedgerLine], int]) -> Ints:
        return np.fromiter((get(x) for x in lines), np.int64, len(lines))

    return LineColumns(
        billing_period=s(lambda x: x.billing_period),
        institution=s(lambda x: x.institution),
        charge_period=s(lambda x: x.charge_period),
        start_ms=i(lambda x: x.start_ms),
        grant_id=s(lambda x: x.grant_id),
        project=s(lambda x: x.project),
        sku=s(lambda x: x.sku),
        count=i(lambda x: x.count),
        end_ms=i(lambda x: x.end_ms),
        reason=s(lambda x: x.reason),
        user=s(lambda x: x.attrs.user),
        slice_kind=s(lambda x: x.attrs.slice_kind),
        priority_class=s(lambda x: x.attrs.priority_class),
        isolation_class=s(lambda x: x.attrs.isolation_class),
        node=s(lambda x: x.attrs.node),
        site=s(lambda x: x.attrs.site),
    )


def rows_to_columns(rows: Sequence[ChargeRow]) -> ChargeColumns:
    """Columns of `ChargeRow` objects (adjustment rows, which are few, take this way)."""
    values: dict[str, object] = {}
    for f in fields(ChargeColumns):
        name = f.name
        column = [getattr(r.attrs if name in _ATTRS else r, name) for r in rows]
        if name in ("correction", "priced"):
            values[name] = np.array(column, dtype=np.bool_)
        elif name in _INT_FIELDS:
            values[name] = np.array(column, dtype=np.int64)
        else:
            values[name] = pa.array(column, _STR)
    return ChargeColumns(**values)  # type: ignore[arg-type]


def columns_to_rows(c: ChargeColumns) -> list[ChargeRow]:
    """`ChargeRow` objects of columns (for encoders that write row by row)."""
    py = {f.name: _pylist(getattr(c, f.name)) for f in fields(ChargeColumns)}
    out = []
    for i in range(len(c)):
        attrs = GrantAttrs(
            user=py["user"][i],
            slice_kind=py["slice_kind"][i],
            priority_class=py["priority_class"][i],
            isolation_class=py["isolation_class"][i],
            node=py["node"][i],
            site=py["site"][i],
        )
        out.append(
            ChargeRow(
                **{n: py[n][i] for n in py if n not in _ATTRS},
                attrs=attrs,
            )
        )
    return out


def _pylist(v: object) -> list[Any]:
    if isinstance(v, np.ndarray):
        return list(v.tolist())
    assert isinstance(v, pa.Array)
    return list(v.to_pylist())


def _muldiv(a: Ints, b: Ints | int, d: int) -> Ints:
    """round_half_up(a * b / d) for non-negative integers, exactly: in int64 where the product
    fits, by splitting `a` into quotient and remainder of `d` where only the result does, and in
    Python integers (object arrays) past that."""
    if not len(a):
        return a
    b_max = int(np.max(b)) if isinstance(b, np.ndarray) else b
    a_max = int(np.max(a))
    half = d // 2
    if a_max * b_max + half <= _INT64_MAX:
        return np.asarray((a * b + half) // d, dtype=np.int64)
    if d * b_max + half <= _INT64_MAX and (a_max // d + 1) * b_max <= _INT64_MAX:
        q, r = np.divmod(a, d)
        return np.asarray(q * b + (r * b + half) // d, dtype=np.int64)
    big = (a.astype(object) * (b.astype(object) if isinstance(b, np.ndarray) else b) + half) // d
    return np.asarray(big, dtype=np.int64)


def _codes(*columns: pa.Array) -> tuple[Ints, list[tuple[str, ...]]]:
    """For each row, the index of its combination of `columns`' values among the distinct ones,
    and those distinct combinations: per-combination work (a price lookup, a JSON text) then runs
    once per combination instead of once per row."""
    code = np.zeros(len(columns[0]), dtype=np.int64)
    dictionaries = []
    for col in columns:
        enc = pc.dictionary_encode(col)
        dictionaries.append(enc.dictionary.to_pylist())
        code = code * len(enc.dictionary) + enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    uniq, inverse = np.unique(code, return_inverse=True)
    combos = []
    for value in uniq.tolist():
        parts = []
        for dictionary in reversed(dictionaries):
            value, k = divmod(value, len(dictionary))
            parts.append(dictionary[k])
        combos.append(tuple(reversed(parts)))
    return inverse.astype(np.int64), combos


def by_combination(make: Callable[..., str], *columns: pa.Array) -> pa.Array:
    """`make(*values)` for each row's values of `columns`, computed once per distinct combination."""
    if not len(columns[0]):
        return pa.array([], _STR)
    inverse, combos = _codes(*columns)
    return pa.array([make(*c) for c in combos], _STR).take(pa.array(inverse))


def rate_columns(lines: LineColumns, book: PriceBook) -> ChargeColumns:
    """What `rate_lines` yields for these lines, as columns: each line cut at every UTC midnight
    inside its charge period, each day priced with the book's entry valid that day."""
    n = len(lines)
    # 1. Clip each line to its charge period.
    period_of, combos = _codes(lines.charge_period) if n else (np.zeros(0, np.int64), [])
    bounds = [Period(int(p[:4]), int(p[5:7])) for (p,) in combos]
    p_start = np.array([b.start_ms for b in bounds], np.int64)[period_of] if n else np.zeros(0, np.int64)
    p_end = np.array([b.end_ms for b in bounds], np.int64)[period_of] if n else np.zeros(0, np.int64)
    start = np.maximum(lines.start_ms, p_start)
    end = np.minimum(lines.end_ms, p_end)
    # 2. One row per UTC day the clipped lifetime touches (none for an empty one).
    first = start // DAY_MS
    days = np.where(end > start, (end - 1) // DAY_MS - first + 1, 0)
    line_of = np.repeat(np.arange(n, dtype=np.int64), days)
    offset = np.arange(len(line_of), dtype=np.int64) - np.repeat(np.cumsum(days) - days, days)
    day = first[line_of] + offset
    t = np.maximum(start[line_of], day * DAY_MS)
    cut = np.minimum(end[line_of], (day + 1) * DAY_MS)
    take = pa.array(line_of)

    def rows(col: pa.Array) -> pa.Array:
        return col.take(take)

    count = lines.count[line_of]
    slice_ms = count * (cut - t)
    # 3. The tier of each institution and the entry valid on each (SKU, kind, tier, day), looked
    # up once per distinct combination.
    tiers = by_combination(lambda inst: book.tier_of(inst).value, lines.institution)
    sku, kind, tier = rows(lines.sku), rows(lines.slice_kind), rows(tiers) if n else pa.array([], _STR)
    day_col = pa.array(day)
    m = len(line_of)
    list_price = np.zeros(m, np.int64)
    units = np.zeros(m, np.int64)
    priced = np.zeros(m, np.bool_)
    if m:
        inverse, keys = _codes(sku, kind, tier, day_col)
        found = [book.price(s, k, Tier(tr), int(d) * DAY_MS) for s, k, tr, d in keys]
        list_price = np.array([e.price_micros if e else 0 for e in found], np.int64)[inverse]
        units = np.array([e.units_micros if e else 0 for e in found], np.int64)[inverse]
        priced = np.array([e is not None for e in found], np.bool_)[inverse]
    preemptible = pc.equal(rows(lines.priority_class), PREEMPTIBLE).to_numpy(zero_copy_only=False)
    keep_bp = np.where(preemptible, 10_000 - book.preemptible_discount_bp, 10_000).astype(np.int64)
    # 4. Money and quantities with rate_line's roundings.
    price = np.where(keep_bp != 10_000, _muldiv_floor(list_price, keep_bp, 10_000), list_price)
    list_cents = _muldiv(slice_ms, list_price, _CENTS_DEN)
    billed_cents = _billed(slice_ms, list_price, keep_bp)
    correction = pc.not_equal(lines.billing_period, lines.charge_period).to_numpy(zero_copy_only=False)
    count_text = pc.cast(pa.array(count), _STR)
    grant = rows(lines.grant_id)
    description = pc.binary_join_element_wise(count_text, " x ", sku, " ", kind, ", grant ", grant, "")
    return ChargeColumns(
        category=pa.repeat(pa.scalar(Category.USAGE, _STR), m),
        correction=correction[line_of],
        billing_period=rows(lines.billing_period),
        charge_period=rows(lines.charge_period),
        institution=rows(lines.institution),
        project=rows(lines.project),
        user=rows(lines.user),
        sku=sku,
        slice_kind=kind,
        tier=tier,
        grant_id=grant,
        charge_start_ms=t,
        charge_end_ms=cut,
        count=count,
        quantity_micros=_muldiv(slice_ms, 10, 36),
        units_micros=_muldiv(slice_ms, units, 3_600_000),
        list_price_micros=list_price,
        price_micros=price,
        list_cents=list_cents,
        billed_cents=billed_cents,
        priced=priced,
        priority_class=rows(lines.priority_class),
        isolation_class=rows(lines.isolation_class),
        node=rows(lines.node),
        site=rows(lines.site),
        description=description,
    )


def _muldiv_floor(a: Ints, b: Ints, d: int) -> Ints:
    """floor(a * b / d), as `rate_line`'s `list_price * keep_bp // 10_000` (prices < 1e15, keep < 1e4)."""
    if len(a) and int(np.max(a)) * 10_000 > _INT64_MAX:
        return np.asarray(a.astype(object) * b.astype(object) // d, dtype=np.int64)
    return a * b // d


def _billed(slice_ms: Ints, list_price: Ints, keep_bp: Ints) -> Ints:
    """round_half_up(slice_ms * list_price * keep_bp / (_CENTS_DEN * 10_000)), as `rate_line`."""
    den = _CENTS_DEN * 10_000
    if not len(slice_ms):
        return slice_ms
    if int(np.max(slice_ms)) * int(np.max(list_price)) <= _INT64_MAX:
        list_num = slice_ms * list_price
        # keep_bp < 2^14 and den < 2^49: the remainder's product stays inside int64.
        q, r = np.divmod(list_num, den)
        return q * keep_bp + (r * keep_bp + den // 2) // den
    big = slice_ms.astype(object) * list_price.astype(object) * keep_bp.astype(object)
    return np.asarray((big + den // 2) // den, dtype=np.int64)
