"""The SDK's accounting: usage and cost reports, quotes, statements of closed billing periods, and
billing exports streamed as bytes. Models and Ops here; `Client` and `AsyncClient` expose them.

Money arrives from the service as exact decimal text ("12345.67") and stays `Decimal` here, so
sums of lines equal totals to the cent; hours are floats.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from slicebroker.client._ops import Op, Service, _invalid, _rpc
from slicebroker.v1 import accounting_pb2

_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


class ExportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
    FOCUS_CSV = "focus-csv"
    FOCUS_PARQUET = "focus-parquet"


@dataclass(frozen=True, slots=True)
class CostRow:
    """Use and cost of one group (the keys not grouped by are "")."""

    institution: str
    project: str
    user: str
    sku: str
    day: str
    slice_hours: float
    accelerator_hours: float
    """Normalised accelerator-hours (a slice counts its share of the device)."""
    cost: Decimal


@dataclass(frozen=True, slots=True)
class CostReport:
    """Use and cost over [start, end), rated with the latest price book (an estimate for periods
    not yet closed: statements are what is billed)."""

    start: datetime
    end: datetime
    group_by: tuple[str, ...]
    rows: tuple[CostRow, ...]
    currency: str
    book_version: int

    @property
    def total_cost(self) -> Decimal:
        return sum((r.cost for r in self.rows), Decimal(0))


@dataclass(frozen=True, slots=True)
class StatementLine:
    category: str
    """Usage or Adjustment."""
    charge_period: str
    """The period the usage happened in (earlier than the statement's for late usage)."""
    project: str
    sku: str
    slice_kind: str
    tier: str
    slice_hours: float
    accelerator_hours: float
    list_cost: Decimal
    billed_cost: Decimal


@dataclass(frozen=True, slots=True)
class Statement:
    """One institution's bill for one closed period; it never changes once made."""

    period: str
    institution: str
    currency: str
    book_version: int
    total: Decimal
    usage: Decimal
    late_usage: Decimal
    adjustments: Decimal
    lines: tuple[StatementLine, ...]


@dataclass(frozen=True, slots=True)
class PriceQuote:
    """What a prospective use would cost (`Client.rate`), as the ledger would later bill it."""

    currency: str
    cost: float
    cost_per_hour: float
    accelerator_hours: float
    tier: str
    price_book_version: int


@dataclass(frozen=True, slots=True)
class ExportProgress:
    """How far a streaming export has come, passed to the progress callback after each chunk."""

    bytes: int
    rows: int
    chunks: int


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What an export wrote (`Client.export_to`)."""

    period: str
    institution: str
    format: ExportFormat
    path: str
    bytes: int
    rows: int
    chunks: int


ProgressCallback = Callable[[ExportProgress], None]

QUERY_LEDGER = _rpc(Service.ACCOUNTING, "QueryLedger", accounting_pb2.QueryLedgerResponse)
GET_STATEMENTS = _rpc(Service.ACCOUNTING, "GetStatements", accounting_pb2.StatementsResponse)
CLOSE_PERIOD = _rpc(Service.ACCOUNTING, "ClosePeriod", accounting_pb2.StatementsResponse)
RATE = _rpc(Service.ACCOUNTING, "Rate", accounting_pb2.RateResponse)
EXPORT_LEDGER = _rpc(Service.ACCOUNTING, "ExportLedger", accounting_pb2.ExportChunk)


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """ "2026-11" -> its first instant and the next month's (UTC); InvalidArgumentError otherwise."""
    m = _PERIOD.match(period)
    if not m or not 1 <= int(m[2]) <= 12:
        raise _invalid("period", f"period {period!r} is not a month such as 2026-11")
    year, month = int(m[1]), int(m[2])
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def current_period(now: datetime | None = None) -> str:
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    return f"{today.year:04d}-{today.month:02d}"


def _ts(when: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(when.astimezone(UTC))
    return ts


def cost_report(
    start: datetime,
    end: datetime,
    group_by: Sequence[str],
    institution: str | None = None,
    project: str | None = None,
    user: str | None = None,
    sku: str | None = None,
) -> Op[CostReport]:
    request = accounting_pb2.QueryLedgerRequest(
        start=_ts(start),
        end=_ts(end),
        group_by=list(group_by),
        institution=institution or "",
        project=project or "",
        user=user or "",
        sku=sku or "",
    )

    def convert(response: Any) -> CostReport:
        rows = tuple(
            CostRow(r.institution, r.project, r.user, r.sku, r.day, r.slice_hours, r.accelerator_hours, Decimal(r.cost))
            for r in response.rows
        )
        return CostReport(start, end, tuple(group_by), rows, response.currency, response.book_version)

    return Op(QUERY_LEDGER, request, convert)


def _statements(response: Any) -> list[Statement]:
    return [
        Statement(
            period=s.period,
            institution=s.institution,
            currency=s.currency,
            book_version=s.book_version,
            total=Decimal(s.total),
            usage=Decimal(s.usage),
            late_usage=Decimal(s.late_usage),
            adjustments=Decimal(s.adjustments),
            lines=tuple(
                StatementLine(
                    x.category,
                    x.charge_period,
                    x.project,
                    x.sku,
                    x.slice_kind,
                    x.tier,
                    x.slice_hours,
                    x.accelerator_hours,
                    Decimal(x.list_cost),
                    Decimal(x.billed_cost),
                )
                for x in s.lines
            ),
        )
        for s in response.statements
    ]


def statements(period: str, institution: str | None = None) -> Op[list[Statement]]:
    period_bounds(period)
    request = accounting_pb2.GetStatementsRequest(period=period, institution=institution or "")
    return Op(GET_STATEMENTS, request, _statements)


def close_period(period: str) -> Op[list[Statement]]:
    period_bounds(period)
    return Op(CLOSE_PERIOD, accounting_pb2.ClosePeriodRequest(period=period), _statements)


def rate(
    sku: str,
    count: int,
    duration: timedelta,
    *,
    institution: str | None = None,
    slice_kind: str = "",
    priority_class: str = "",
    at: datetime | None = None,
) -> Op[PriceQuote]:
    seconds = int(duration.total_seconds())
    request = accounting_pb2.RateRequest(
        institution=institution or "",
        sku=sku,
        slice_kind=slice_kind,
        count=count,
        duration=Duration(seconds=seconds, nanos=round((duration.total_seconds() - seconds) * 1e9)),
        priority_class=priority_class,
    )
    if at is not None:
        request.at.CopyFrom(_ts(at))

    def convert(r: Any) -> PriceQuote:
        return PriceQuote(r.currency, r.cost, r.cost_per_hour, r.accelerator_hours, r.tier, r.price_book_version)

    return Op(RATE, request, convert)


def export_request(period: str, fmt: ExportFormat | str, institution: str | None = None) -> Any:
    """The ExportLedger request, checked here so that a bad period or format fails before a call."""
    period_bounds(period)
    try:
        export_format = ExportFormat(fmt)
    except ValueError:
        known = ", ".join(f.value for f in ExportFormat)
        raise _invalid("format", f"format {fmt!r} is not one of {known}") from None
    return accounting_pb2.ExportLedgerRequest(period=period, format=export_format.value, institution=institution or "")


class ExportCounter:
    """Counts an export's chunks as they arrive and reports progress after each."""

    def __init__(self, on_progress: ProgressCallback | None) -> None:
        self._on_progress = on_progress
        self.bytes = self.rows = self.chunks = 0

    def add(self, chunk: Any) -> bytes:
        data: bytes = chunk.data
        self.bytes += len(data)
        self.rows += chunk.rows
        self.chunks += 1
        if self._on_progress is not None:
            self._on_progress(ExportProgress(self.bytes, self.rows, self.chunks))
        return data

    def summary(self, period: str, institution: str | None, fmt: ExportFormat | str, path: str) -> ExportSummary:
        return ExportSummary(period, institution or "", ExportFormat(fmt), path, self.bytes, self.rows, self.chunks)


def days_of(period: str) -> list[date]:
    """Every day of a period, for charts that show days without use too."""
    start, end = period_bounds(period)
    return [(start + timedelta(days=i)).date() for i in range((end - start).days)]
