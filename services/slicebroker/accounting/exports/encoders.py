"""The `ExportEncoder`s: plain CSV and JSON Lines of our own columns, and FOCUS 1.2 (+ the 1.3
allocation and provider columns) as CSV and Parquet, built column-wise with pyarrow.

FOCUS mapping (anchors.md §2.3): institution -> BillingAccountId, project -> SubAccountId,
grant -> ResourceId, "<SKU>/<slice kind>" -> SkuId; the pricing unit is the slice-hour (a whole
device's slice-hour is a device-hour), and the normalised accelerator-hours travel in
SkuPriceDetails. Late usage of a closed period and re-rating adjustments carry
ChargeClass=Correction. Slices of shared devices (any slice kind but "whole") fill the 1.3
Allocated* columns: the provider split the device by slice share.

Every value comes from the rows and the export's context, never from the clock, so a ledger
exports byte-identically every time.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from slicebroker.accounting.domain.exports import ExportContext, ExportEncoder, ExportFormat
from slicebroker.accounting.domain.ledger import Category, ChargeRow, format_cents
from slicebroker.accounting.domain.pricebook import format_micros

_TS = pa.timestamp("ms", tz="UTC")
_ISO = "%Y-%m-%dT%H:%M:%SZ"
_MONEY = pa.decimal128(24, 2)
_QTY = pa.decimal128(24, 6)
_STR = pa.string()


def _decimal(values: Sequence[int], scale: int) -> pa.Array:
    """Integers in units of 10^-scale as a decimal128 column, exactly (no float on the way)."""
    a = np.asarray(values, dtype=np.int64)
    words = np.empty((len(a), 2), dtype=np.int64)
    words[:, 0] = a
    words[:, 1] = a >> 63  # sign extension into the high word
    return pa.Array.from_buffers(pa.decimal128(24, scale), len(a), [None, pa.py_buffer(words)])


def _opt(values: list[str]) -> pa.Array:
    """Strings where "" means null (FOCUS leaves columns that do not apply null)."""
    arr = pa.array(values, _STR)
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, _STR), arr)


class _Memo:
    """Caches a per-row derived string: most rows of a bill repeat the same few values."""

    def __init__(self, make: Callable[..., str]) -> None:
        self._make = make
        self._cache: dict[tuple[Any, ...], str] = {}

    def __call__(self, *key: Any) -> str:
        v = self._cache.get(key)
        if v is None:
            if len(self._cache) > 100_000:
                self._cache.clear()
            v = self._cache[key] = self._make(*key)
        return v


def _json(d: dict[str, str]) -> str:
    return json.dumps({k: v for k, v in d.items() if v}, sort_keys=True, separators=(",", ":"))


class _Drain(io.RawIOBase):
    """A write-only file whose bytes are taken after each batch."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self._parts.append(bytes(b))
        return len(b)

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


FOCUS_COLUMNS = [
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingAccountType",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingCurrency",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SkuId",
    "SkuMeter",
    "SkuPriceDetails",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "SubAccountType",
    "Tags",
    "HostProviderName",
    "ServiceProviderName",
    "AllocatedMethodId",
    "AllocatedMethodDetails",
    "AllocatedResourceId",
    "AllocatedResourceName",
    "AllocatedTags",
]


class _FocusTables:
    """Charge rows -> one pyarrow table of FOCUS columns."""

    def __init__(self, ctx: ExportContext) -> None:
        self._ctx = ctx
        self._sku_id = _Memo(lambda sku, kind: f"{sku}/{kind}")
        self._price_id = _Memo(lambda sku, kind, tier: f"{sku}/{kind}/{tier}/v{ctx.book_version}")
        self._tags = _Memo(
            lambda user, prio, iso, tier: _json(
                {"user": user, "priority_class": prio, "isolation_class": iso, "tier": tier}
            )
        )
        self._details = _Memo(lambda units: _json({"AcceleratorHoursPerSliceHour": units}))
        self._alloc_details = _Memo(lambda kind: _json({"SliceKind": kind, "Basis": "slice share of the device"}))

    def table(self, rows: Sequence[ChargeRow]) -> pa.Table:
        ctx, n = self._ctx, len(rows)
        sku_id, price_id, tags, details, alloc_details = (
            self._sku_id,
            self._price_id,
            self._tags,
            self._details,
            self._alloc_details,
        )
        usage = Category.USAGE
        billed, lst, qty, price, lprice = [], [], [], [], []
        inst, cat, cls, desc, start, end, site, gid, sku, pid, proj, tg, det = ([] for _ in range(13))
        alloc_id, alloc_det, alloc_res = [], [], []
        for r in rows:
            billed.append(r.billed_cents)
            lst.append(r.list_cents)
            qty.append(r.quantity_micros)
            price.append(r.price_micros)
            lprice.append(r.list_price_micros)
            inst.append(r.institution)
            cat.append(r.category)
            cls.append("Correction" if r.correction else "")
            desc.append(r.description)
            start.append(r.charge_start_ms)
            end.append(r.charge_end_ms)
            a = r.attrs
            site.append(a.site)
            gid.append(r.grant_id)
            sku.append(sku_id(r.sku, r.slice_kind))
            pid.append(price_id(r.sku, r.slice_kind, r.tier) if r.category == usage else "")
            proj.append(r.project)
            tg.append(tags(a.user, a.priority_class, a.isolation_class, r.tier))
            is_usage = r.category == usage
            det.append(
                details(format_micros(r.units_micros * 1_000_000 // r.quantity_micros))
                if is_usage and r.quantity_micros
                else ""
            )
            shared = is_usage and r.slice_kind != "whole"
            alloc_id.append("slice-share" if shared else "")
            alloc_det.append(alloc_details(r.slice_kind) if shared else "")
            alloc_res.append(a.node if shared else "")

        def const(v: str) -> pa.Array:
            return pa.repeat(pa.scalar(v, _STR), n)

        nulls = pa.nulls(n, _STR)
        usage_only = pc.equal(pa.array(cat, _STR), usage)
        qty_col = pc.if_else(usage_only, _decimal(qty, 6), pa.scalar(None, _QTY))
        inst_col, proj_col, gid_col, site_col = pa.array(inst, _STR), pa.array(proj, _STR), _opt(gid), _opt(site)
        cost = _decimal(billed, 2)
        columns = {
            "BilledCost": cost,
            "BillingAccountId": inst_col,
            "BillingAccountName": inst_col,
            "BillingAccountType": const("Institution"),
            "BillingCurrency": const(ctx.currency),
            "BillingPeriodStart": pa.repeat(pa.scalar(ctx.period_start_ms, _TS), n),
            "BillingPeriodEnd": pa.repeat(pa.scalar(ctx.period_end_ms, _TS), n),
            "ChargeCategory": pa.array(cat, _STR),
            "ChargeClass": _opt(cls),
            "ChargeDescription": pa.array(desc, _STR),
            "ChargeFrequency": const("Usage-Based"),
            "ChargePeriodStart": pa.array(start, _TS),
            "ChargePeriodEnd": pa.array(end, _TS),
            "ConsumedQuantity": qty_col,
            "ConsumedUnit": pc.if_else(usage_only, "Slice-Hours", pa.scalar(None, _STR)),
            "ContractedCost": cost,
            "ContractedUnitPrice": pc.if_else(usage_only, _decimal(price, 6), pa.scalar(None, _QTY)),
            "EffectiveCost": cost,
            "InvoiceIssuerName": const(ctx.provider),
            "ListCost": _decimal(lst, 2),
            "ListUnitPrice": pc.if_else(usage_only, _decimal(lprice, 6), pa.scalar(None, _QTY)),
            "PricingCategory": pc.if_else(usage_only, "Standard", pa.scalar(None, _STR)),
            "PricingCurrency": const(ctx.currency),
            "PricingQuantity": qty_col,
            "PricingUnit": pc.if_else(usage_only, "Slice-Hours", pa.scalar(None, _STR)),
            "ProviderName": const(ctx.provider),
            "PublisherName": const(ctx.provider),
            "RegionId": site_col,
            "RegionName": site_col,
            "ResourceId": gid_col,
            "ResourceName": gid_col,
            "ResourceType": pc.if_else(usage_only, "Accelerator Slice Lease", pa.scalar(None, _STR)),
            "ServiceCategory": const("AI and Machine Learning"),
            "ServiceName": const("Accelerator Slices"),
            "ServiceSubcategory": const("AI Platforms"),
            "SkuId": pa.array(sku, _STR),
            "SkuMeter": pc.if_else(usage_only, "Slice-Hours", pa.scalar(None, _STR)),
            "SkuPriceDetails": _opt(det),
            "SkuPriceId": _opt(pid),
            "SubAccountId": proj_col,
            "SubAccountName": proj_col,
            "SubAccountType": const("Project"),
            "Tags": pa.array(tg, _STR),
            "HostProviderName": const(ctx.provider),
            "ServiceProviderName": const(ctx.provider),
            "AllocatedMethodId": _opt(alloc_id),
            "AllocatedMethodDetails": _opt(alloc_det),
            "AllocatedResourceId": _opt(alloc_res),
            "AllocatedResourceName": _opt(alloc_res),
            "AllocatedTags": nulls,
        }
        return pa.table(columns)


def _iso_timestamps(table: pa.Table) -> pa.Table:
    """FOCUS wants ISO 8601 to the second with a Z; pyarrow's default text form has a space and
    milliseconds. (Parquet keeps the millisecond timestamps.)"""
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            seconds = pc.cast(table.column(i), pa.timestamp("s", tz="UTC"), safe=False)
            table = table.set_column(i, field.name, pc.strftime(seconds, format=_ISO))
    return table


class FocusCsvEncoder:
    def __init__(self, ctx: ExportContext) -> None:
        self._tables = _FocusTables(ctx)

    def begin(self) -> bytes:
        return (",".join(FOCUS_COLUMNS) + "\n").encode()

    def encode(self, rows: Sequence[ChargeRow]) -> bytes:
        sink = io.BytesIO()
        options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
        pacsv.write_csv(_iso_timestamps(self._tables.table(rows)), sink, options)
        return sink.getvalue()

    def end(self) -> bytes:
        return b""


class FocusParquetEncoder:
    """One row group per batch; the footer (schema, row-group index) comes at the end."""

    def __init__(self, ctx: ExportContext) -> None:
        self._tables = _FocusTables(ctx)
        self._sink = _Drain()
        self._writer: pq.ParquetWriter | None = None

    def _open(self, schema: pa.Schema) -> pq.ParquetWriter:
        # No creator/version strings that could change bytes between runs beyond the library's own.
        return pq.ParquetWriter(self._sink, schema, compression="zstd")

    def begin(self) -> bytes:
        return b""

    def encode(self, rows: Sequence[ChargeRow]) -> bytes:
        table = self._tables.table(rows)
        if self._writer is None:
            self._writer = self._open(table.schema)
        self._writer.write_table(table)
        return self._sink.take()

    def end(self) -> bytes:
        if self._writer is None:
            self._writer = self._open(self._tables.table([]).schema)
        self._writer.close()
        return self._sink.take()


PLAIN_COLUMNS = [
    "billing_period",
    "charge_period",
    "category",
    "correction",
    "institution",
    "project",
    "user",
    "sku",
    "slice_kind",
    "tier",
    "grant_id",
    "charge_start",
    "charge_end",
    "count",
    "slice_hours",
    "accelerator_hours",
    "list_unit_price",
    "unit_price",
    "list_cost",
    "billed_cost",
    "currency",
    "priced",
    "priority_class",
    "isolation_class",
    "node",
    "site",
]


def _plain(r: ChargeRow, currency: str) -> list[Any]:
    a = r.attrs
    return [
        r.billing_period,
        r.charge_period,
        r.category,
        r.correction,
        r.institution,
        r.project,
        r.user,
        r.sku,
        r.slice_kind,
        r.tier,
        r.grant_id,
        r.charge_start_ms,
        r.charge_end_ms,
        r.count,
        format_micros(r.quantity_micros),
        format_micros(r.units_micros),
        format_micros(r.list_price_micros),
        format_micros(r.price_micros),
        format_cents(r.list_cents),
        format_cents(r.billed_cents),
        currency,
        r.priced,
        a.priority_class,
        a.isolation_class,
        a.node,
        a.site,
    ]


class CsvEncoder:
    def __init__(self, ctx: ExportContext) -> None:
        self._currency = ctx.currency

    def begin(self) -> bytes:
        return (",".join(PLAIN_COLUMNS) + "\n").encode()

    def encode(self, rows: Sequence[ChargeRow]) -> bytes:
        import csv

        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        cur = self._currency
        w.writerows(_plain(r, cur) for r in rows)
        return out.getvalue().encode()

    def end(self) -> bytes:
        return b""


class JsonLinesEncoder:
    def __init__(self, ctx: ExportContext) -> None:
        self._currency = ctx.currency

    def begin(self) -> bytes:
        return b""

    def encode(self, rows: Sequence[ChargeRow]) -> bytes:
        cur, names, dumps = self._currency, PLAIN_COLUMNS, json.dumps
        return "".join(
            dumps(dict(zip(names, _plain(r, cur), strict=True)), separators=(",", ":")) + "\n" for r in rows
        ).encode()

    def end(self) -> bytes:
        return b""


_ENCODERS: dict[ExportFormat, Callable[[ExportContext], ExportEncoder]] = {
    ExportFormat.CSV: CsvEncoder,
    ExportFormat.JSONL: JsonLinesEncoder,
    ExportFormat.FOCUS_CSV: FocusCsvEncoder,
    ExportFormat.FOCUS_PARQUET: FocusParquetEncoder,
}


def encoder(fmt: ExportFormat, ctx: ExportContext) -> ExportEncoder:
    return _ENCODERS[fmt](ctx)
