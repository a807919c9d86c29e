"""Proto <-> domain conversion for accounting. Shapes only: checking is the domain's job."""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from slicebroker.accounting.domain.model import EventType, IncomingEvent, IngestResult, Usage, UsageFilter
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
