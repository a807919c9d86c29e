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

import csv
import io
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from slicebroker.accounting.domain.columns import ChargeColumns, by_combination, columns_to_rows, rows_to_columns
from slicebroker.accounting.domain.exports import ExportContext, ExportEncoder, ExportFormat
from slicebroker.accounting.domain.ledger import Category, ChargeRow, format_cents
from slicebroker.accounting.domain.pricebook import format_micros

_TS = pa.timestamp("ms", tz="UTC")
_MONEY = pa.decimal128(24, 2)
_QTY = pa.decimal128(24, 6)
_STR = pa.string()


def _decimal(values: Any, scale: int) -> pa.Array:
    """Integers in units of 10^-scale as a decimal128 column, exactly (no float on the way)."""
    a = np.ascontiguousarray(values, dtype=np.int64)
    words = np.empty((len(a), 2), dtype=np.int64)
    words[:, 0] = a
    words[:, 1] = a >> 63  # sign extension into the high word
    return pa.Array.from_buffers(pa.decimal128(24, scale), len(a), [None, pa.py_buffer(words)])


def _opt(arr: pa.Array) -> pa.Array:
    """Strings where "" means null (FOCUS leaves columns that do not apply null)."""
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, _STR), arr)


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
    """Charge columns -> one pyarrow table of FOCUS columns, column-wise: a derived text (a SKU id,
    a tags JSON) is made once per distinct combination of what it is made of, then taken per row."""

    def __init__(self, ctx: ExportContext) -> None:
        self._ctx = ctx

    def table(self, c: ChargeColumns) -> pa.Table:
        ctx, n = self._ctx, len(c)
        usage_only = pc.equal(c.category, Category.USAGE)
        usage_np = usage_only.to_numpy(zero_copy_only=False)
        null_str = pa.scalar(None, _STR)

        def const(v: str) -> pa.Array:
            return pa.repeat(pa.scalar(v, _STR), n)

        def when(mask: Any, values: Any) -> pa.Array:
            return pc.if_else(mask, values, null_str)

        qty_col = pc.if_else(usage_only, _decimal(c.quantity_micros, 6), pa.scalar(None, _QTY))
        inst_col, proj_col, gid_col, site_col = c.institution, c.project, _opt(c.grant_id), _opt(c.site)
        cost = _decimal(c.billed_cents, 2)
        sku_id = pc.binary_join_element_wise(c.sku, c.slice_kind, "/")
        price_id = pc.binary_join_element_wise(c.sku, c.slice_kind, c.tier, f"v{ctx.book_version}", "/")
        tags = by_combination(
            lambda user, prio, iso, tier: _json(
                {"user": user, "priority_class": prio, "isolation_class": iso, "tier": tier}
            ),
            c.user,
            c.priority_class,
            c.isolation_class,
            c.tier,
        )
        has_units = usage_np & (c.quantity_micros != 0)
        per_hour = np.zeros(n, np.int64)
        if has_units.any():
            per_hour[has_units] = _floor_div(c.units_micros[has_units], 1_000_000, c.quantity_micros[has_units])
        details = when(
            pa.array(has_units),
            by_combination(
                lambda units: _json({"AcceleratorHoursPerSliceHour": format_micros(units)}), pa.array(per_hour)
            ),
        )
        shared = pa.array(usage_np & pc.not_equal(c.slice_kind, "whole").to_numpy(zero_copy_only=False))
        alloc_details = by_combination(
            lambda kind: _json({"SliceKind": kind, "Basis": "slice share of the device"}), c.slice_kind
        )
        alloc_res = _opt(pc.if_else(shared, c.node, ""))
        columns = {
            "BilledCost": cost,
            "BillingAccountId": inst_col,
            "BillingAccountName": inst_col,
            "BillingAccountType": const("Institution"),
            "BillingCurrency": const(ctx.currency),
            "BillingPeriodStart": pa.repeat(pa.scalar(ctx.period_start_ms, _TS), n),
            "BillingPeriodEnd": pa.repeat(pa.scalar(ctx.period_end_ms, _TS), n),
            "ChargeCategory": c.category,
            "ChargeClass": when(pa.array(c.correction), "Correction"),
            "ChargeDescription": c.description,
            "ChargeFrequency": const("Usage-Based"),
            "ChargePeriodStart": pa.array(c.charge_start_ms, _TS),
            "ChargePeriodEnd": pa.array(c.charge_end_ms, _TS),
            "ConsumedQuantity": qty_col,
            "ConsumedUnit": when(usage_only, "Slice-Hours"),
            "ContractedCost": cost,
            "ContractedUnitPrice": pc.if_else(usage_only, _decimal(c.price_micros, 6), pa.scalar(None, _QTY)),
            "EffectiveCost": cost,
            "InvoiceIssuerName": const(ctx.provider),
            "ListCost": _decimal(c.list_cents, 2),
            "ListUnitPrice": pc.if_else(usage_only, _decimal(c.list_price_micros, 6), pa.scalar(None, _QTY)),
            "PricingCategory": when(usage_only, "Standard"),
            "PricingCurrency": const(ctx.currency),
            "PricingQuantity": qty_col,
            "PricingUnit": when(usage_only, "Slice-Hours"),
            "ProviderName": const(ctx.provider),
            "PublisherName": const(ctx.provider),
            "RegionId": site_col,
            "RegionName": site_col,
            "ResourceId": gid_col,
            "ResourceName": gid_col,
            "ResourceType": when(usage_only, "Accelerator Slice Lease"),
            "ServiceCategory": const("AI and Machine Learning"),
            "ServiceName": const("Accelerator Slices"),
            "ServiceSubcategory": const("AI Platforms"),
            "SkuId": sku_id,
            "SkuMeter": when(usage_only, "Slice-Hours"),
            "SkuPriceDetails": details,
            "SkuPriceId": when(usage_only, price_id),
            "SubAccountId": proj_col,
            "SubAccountName": proj_col,
            "SubAccountType": const("Project"),
            "Tags": tags,
            "HostProviderName": const(ctx.provider),
            "ServiceProviderName": const(ctx.provider),
            "AllocatedMethodId": when(shared, "slice-share"),
            "AllocatedMethodDetails": when(shared, alloc_details),
            "AllocatedResourceId": alloc_res,
            "AllocatedResourceName": alloc_res,
            "AllocatedTags": pa.nulls(n, _STR),
        }
        return pa.table(columns)


def _floor_div(a: Any, b: int, d: Any) -> Any:
    """a * b // d elementwise, exactly (object integers where a * b could pass int64)."""
    if int(np.max(a)) * b > 2**63 - 1:
        return np.asarray(a.astype(object) * b // d.astype(object), dtype=np.int64)
    return a * b // d


def _iso_timestamps(table: pa.Table) -> pa.Table:
    """FOCUS wants ISO 8601 to the second with a Z; pyarrow's default text form has a space and
    milliseconds. (Parquet keeps the millisecond timestamps.) Cast to whole seconds without a zone,
    pyarrow writes "YYYY-MM-DD HH:MM:SS" (the UTC wall time): a tenth of what strftime costs."""
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            text = pc.cast(pc.cast(table.column(i), pa.timestamp("s"), safe=False), _STR)
            text = pc.replace_substring(text, " ", "T", max_replacements=1)
            table = table.set_column(i, field.name, pc.binary_join_element_wise(text, "Z", ""))
    return table


class FocusCsvEncoder:
    def __init__(self, ctx: ExportContext) -> None:
        self._tables = _FocusTables(ctx)

    def begin(self) -> bytes:
        return (",".join(FOCUS_COLUMNS) + "\n").encode()

    def encode(self, batch: ChargeColumns) -> bytes:
        sink = io.BytesIO()
        options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
        pacsv.write_csv(_iso_timestamps(self._tables.table(batch)), sink, options)
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

    def encode(self, batch: ChargeColumns) -> bytes:
        table = self._tables.table(batch)
        if self._writer is None:
            self._writer = self._open(table.schema)
        self._writer.write_table(table)
        return self._sink.take()

    def end(self) -> bytes:
        if self._writer is None:
            self._writer = self._open(self._tables.table(rows_to_columns([])).schema)
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

    def encode(self, batch: ChargeColumns) -> bytes:
        rows = columns_to_rows(batch)
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

    def encode(self, batch: ChargeColumns) -> bytes:
        rows = columns_to_rows(batch)
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
