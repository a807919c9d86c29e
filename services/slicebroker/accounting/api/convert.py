"""Proto <-> domain conversion for accounting. Shapes only: checking is the domain's job."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from slicebroker.accounting.domain.access import Caller
from slicebroker.accounting.domain.ledger import format_cents
from slicebroker.accounting.domain.model import (
    EventType,
    GrantAttrs,
    IncomingEvent,
    IngestResult,
    Usage,
    UsageFilter,
)
from slicebroker.accounting.domain.pricebook import (
    OPEN_END_MS,
    PriceBook,
    PriceBookInput,
    PriceEntryInput,
    format_micros,
)
from slicebroker.accounting.domain.rate import RateQuery, RateResult
from slicebroker.accounting.domain.service import LedgerQuery, LedgerQueryResult, RerateResult
from slicebroker.accounting.domain.statements import Statement
from slicebroker.core.catalogue import canonical_kind
from slicebroker.runtime.context import Principal
from slicebroker.v1 import accounting_pb2, common_pb2

_EVENT_TYPES = {
    common_pb2.GRANT_EVENT_TYPE_GRANTED: EventType.GRANTED,
    common_pb2.GRANT_EVENT_TYPE_ENDED: EventType.ENDED,
}


def event_from_proto(event: Any) -> IncomingEvent:
    at_ms = event.at.seconds * 1000 + event.at.nanos // 1_000_000 if event.HasField("at") else None
    return IncomingEvent(
        event_id=event.event_id,
        grant_id=event.grant_id,
        # A type this version does not know is as good as none: validation names the field.
        type=_EVENT_TYPES.get(event.type, EventType.UNSPECIFIED),
        institution=event.institution,
        project=event.project,
        sku=event.sku,
        count=event.count,
        at_ms=at_ms,
        reason=event.reason,
        attrs=GrantAttrs(
            user=event.user,
            # The broker names the kind ("mig") and each slice its profile ("1g.10gb").
            slice_kind=canonical_kind(event.slice_kind, event.slices[0].profile if event.slices else ""),
            priority_class=event.priority_class,
            isolation_class=event.isolation_class,
            node=event.slices[0].node_id if event.slices else "",
            site=event.site,
        ),
    )


def events_from_proto(request: Any) -> list[IncomingEvent]:
    return [event_from_proto(e) for e in request.events]


def ingest_to_proto(result: IngestResult) -> Any:
    return accounting_pb2.IngestEventsResponse(applied=result.applied, duplicates=result.duplicates)


def filter_from_proto(request: Any) -> UsageFilter:
    return UsageFilter(institution=request.institution, project=request.project, sku=request.sku)


def timestamp(ms: int) -> Timestamp:
    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def usage_to_proto(usage: Usage) -> Any:
    return accounting_pb2.GetUsageResponse(
        rows=[
            accounting_pb2.UsageRow(
                institution=r.institution,
                project=r.project,
                sku=r.sku,
                device_seconds=r.device_seconds,
                running_device_seconds=r.running_device_seconds,
                grants=r.grants,
                running_grants=r.running_grants,
            )
            for r in usage.rows
        ],
        as_of=timestamp(usage.as_of_ms),
    )


def caller(principal: Principal) -> Caller:
    return Caller(admin=principal.is_admin, institution=principal.institution)


def book_from_proto(book: Any) -> PriceBookInput:
    return PriceBookInput(
        entries=[
            PriceEntryInput(
                sku=e.sku,
                slice_kind=e.slice_kind,
                tier=e.tier,
                price_per_hour=e.price_per_hour,
                units_per_hour=e.units_per_hour,
                valid_from=e.valid_from,
                valid_until=e.valid_until,
            )
            for e in book.entries
        ],
        currency=book.currency,
        default_tier=book.default_tier,
        institution_tiers=dict(book.institution_tiers),
        preemptible_discount_bp=book.preemptible_discount_bp,
    )


def _day(ms: int) -> str:
    return "" if ms >= OPEN_END_MS else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def book_to_proto(book: PriceBook) -> Any:
    return accounting_pb2.PriceBook(
        version=book.version,
        currency=book.currency,
        default_tier=book.default_tier.value,
        institution_tiers={k: v.value for k, v in book.institution_tiers.items()},
        preemptible_discount_bp=book.preemptible_discount_bp,
        entries=[
            accounting_pb2.PriceEntry(
                sku=e.sku,
                slice_kind=e.slice_kind,
                tier=e.tier.value,
                price_per_hour=format_micros(e.price_micros),
                units_per_hour=format_micros(e.units_micros),
                valid_from=_day(e.valid_from_ms),
                valid_until=_day(e.valid_until_ms),
            )
            for e in book.entries
        ],
    )


def _ms(ts: Any, present: bool) -> int:
    return ts.seconds * 1000 + ts.nanos // 1_000_000 if present else 0


def query_from_proto(request: Any) -> LedgerQuery:
    return LedgerQuery(
        start_ms=_ms(request.start, request.HasField("start")),
        end_ms=_ms(request.end, request.HasField("end")),
        group_by=list(request.group_by),
        institution=request.institution,
        project=request.project,
        user=request.user,
        sku=request.sku,
    )


def query_to_proto(result: LedgerQueryResult) -> Any:
    return accounting_pb2.QueryLedgerResponse(
        rows=[
            accounting_pb2.LedgerRow(
                institution=r.institution,
                project=r.project,
                user=r.user,
                sku=r.sku,
                day=r.day,
                slice_hours=r.quantity_micros / 1e6,
                accelerator_hours=r.units_micros / 1e6,
                cost=format_cents(r.billed_cents),
            )
            for r in result.rows
        ],
        currency=result.currency,
        book_version=result.book_version,
    )


def statements_to_proto(statements: Sequence[Statement]) -> Any:
    return accounting_pb2.StatementsResponse(
        statements=[
            accounting_pb2.Statement(
                period=s.period,
                institution=s.institution,
                currency=s.currency,
                book_version=s.book_version,
                total=format_cents(s.total_cents),
                usage=format_cents(s.usage_cents),
                late_usage=format_cents(s.late_cents),
                adjustments=format_cents(s.adjustment_cents),
                lines=[
                    accounting_pb2.StatementLine(
                        category=x.category,
                        charge_period=x.charge_period,
                        project=x.project,
                        sku=x.sku,
                        slice_kind=x.slice_kind,
                        tier=x.tier,
                        slice_hours=x.quantity_micros / 1e6,
                        accelerator_hours=x.units_micros / 1e6,
                        list_cost=format_cents(x.list_cents),
                        billed_cost=format_cents(x.billed_cents),
                    )
                    for x in s.lines
                ],
            )
            for s in statements
        ]
    )


def rerate_to_proto(r: RerateResult) -> Any:
    return accounting_pb2.RerateResponse(
        period=r.period,
        billed_in=r.billed_in,
        from_version=r.from_version,
        to_version=r.to_version,
        adjustment_lines=len(r.adjustments),
        adjustment_total=format_cents(sum(a.billed_cents for a in r.adjustments)),
    )


def chunk_to_proto(data: bytes, rows: int) -> Any:
    return accounting_pb2.ExportChunk(data=data, rows=rows)


def rate_from_proto(request: Any) -> RateQuery:
    d = request.duration
    # A Duration's seconds and nanos share a sign; either negative is a negative duration.
    duration_ms = d.seconds * 1000 + int(d.nanos / 1_000_000) if d.seconds >= 0 and d.nanos >= 0 else -1
    return RateQuery(
        institution=request.institution,
        sku=request.sku,
        slice_kind=request.slice_kind,
        count=request.count,
        duration_ms=duration_ms,
        priority_class=request.priority_class,
        at_ms=_ms(request.at, True) if request.HasField("at") else None,
    )


def rate_to_proto(r: RateResult) -> Any:
    return accounting_pb2.RateResponse(
        currency=r.currency,
        cost=r.cost_cents / 100,
        cost_per_hour=r.cost_per_hour_micros / 1e6,
        accelerator_hours=r.units_micros / 1e6,
        tier=r.tier,
        price_book_version=r.book_version,
    )
