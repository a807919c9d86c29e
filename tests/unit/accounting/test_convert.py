"""Proto <-> domain conversion: times in ms, unset or unknown values left for validation to name."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from slicebroker.accounting.api import convert
from slicebroker.accounting.domain.model import EventType, Usage, UsageRow
from slicebroker.v1 import common_pb2


def test_event_times_become_epoch_milliseconds() -> None:
    event = common_pb2.GrantEvent(
        event_id="e1",
        type=common_pb2.GRANT_EVENT_TYPE_ENDED,
        at=Timestamp(seconds=1_750_000_000, nanos=123_999_999),
        reason="expired",
    )
    parsed = convert.event_from_proto(event)
    assert (parsed.at_ms, parsed.type, parsed.reason) == (1_750_000_000_123, EventType.ENDED, "expired")


def test_an_unset_time_and_an_unknown_type_are_kept_for_validation() -> None:
    parsed = convert.event_from_proto(common_pb2.GrantEvent(event_id="e1", type=7))  # type: ignore[arg-type]
    assert parsed.at_ms is None
    assert parsed.type is EventType.UNSPECIFIED


def test_usage_converts_back_with_as_of() -> None:
    row = UsageRow("kaist", "llm", "RNGD", 1.5, 2.25, 3, 1)
    reply = convert.usage_to_proto(Usage(rows=(row,), as_of_ms=1_750_000_000_042))
    assert reply.as_of.seconds == 1_750_000_000 and reply.as_of.nanos == 42_000_000
    (out,) = reply.rows
    assert (
        out.institution,
        out.device_seconds,
        out.running_device_seconds,
        out.grants,
        out.running_grants,
    ) == (
        "kaist",
        1.5,
        2.25,
        3,
        1,
    )
