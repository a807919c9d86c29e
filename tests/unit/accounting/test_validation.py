"""Checks of ingested events and usage filters: every bad field is named, the batch refused whole."""

from __future__ import annotations

import dataclasses

import pytest

from slicebroker.accounting.domain.model import EventType, IncomingEvent, UsageFilter
from slicebroker.accounting.domain.validation import (
    MAX_AT_MS,
    MAX_COUNT,
    MIN_AT_MS,
    check_filter,
    check_sku,
    parse_event,
    parse_events,
)
from slicebroker.core.errors import InvalidArgument
from slicebroker.core.reasons import Reason

GRANT = "gr_01hzy3k5m7p9r1t3v5x7z9b1d3"
T0 = 1_750_000_000_000


def event(**changes: object) -> IncomingEvent:
    base = IncomingEvent(
        event_id=f"{GRANT}:granted",
        grant_id=GRANT,
        type=EventType.GRANTED,
        institution="kaist",
        project="llm-pretrain",
        sku="H100-SXM-80GB",
        count=8,
        at_ms=T0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_a_well_formed_event_parses_to_the_same_values() -> None:
    parsed = parse_event("events[0]", event(type=EventType.ENDED, reason="released"))
    assert (parsed.event_id, parsed.grant_id, parsed.type, parsed.count, parsed.at_ms, parsed.reason) == (
        f"{GRANT}:granted",
        GRANT,
        EventType.ENDED,
        8,
        T0,
        "released",
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"event_id": ""}, "event_id"),
        ({"event_id": "x" * 129}, "event_id"),
        ({"event_id": "a\x1fb"}, "event_id"),
        ({"event_id": "a\nb"}, "event_id"),
        ({"grant_id": ""}, "grant_id"),
        ({"grant_id": "gr_short"}, "grant_id"),
        ({"grant_id": "GR_01HZY3K5M7P9R1T3V5X7Z9B1D3"}, "grant_id"),
        ({"type": EventType.UNSPECIFIED}, "type"),
        ({"institution": ""}, "institution"),
        ({"institution": "KAIST"}, "institution"),
        ({"project": ""}, "project"),
        ({"project": "a|b"}, "project"),
        ({"sku": ""}, "sku"),
        ({"sku": "H100|SXM"}, "sku"),
        ({"sku": "H100:SXM"}, "sku"),
        ({"sku": "x" * 65}, "sku"),
        ({"count": 0}, "count"),
        ({"count": -1}, "count"),
        ({"count": MAX_COUNT + 1}, "count"),
        ({"at_ms": None}, "at"),
        ({"at_ms": 0}, "at"),
        ({"at_ms": MIN_AT_MS - 1}, "at"),
        ({"at_ms": MAX_AT_MS}, "at"),
        ({"reason": "r" * 65}, "reason"),
        ({"reason": "released\x1f"}, "reason"),
    ],
)
def test_a_bad_field_is_named(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_event("events[3]", event(**changes))
    assert exc.value.field == f"events[3].{field}"
    assert exc.value.reason is Reason.INVALID_FIELD


@pytest.mark.parametrize(
    "changes",
    [
        {"event_id": "e" * 128},
        {"event_id": "ev:01hzy3k5m7p9r1t3v5x7z9b1d3/any thing+=é"},
        {"reason": "released by owner"},
        {"count": 1},
        {"count": MAX_COUNT},
        {"at_ms": MIN_AT_MS},
        {"at_ms": MAX_AT_MS - 1},
        {"sku": "RNGD"},
        {"sku": "H100-SXM-80GB/mig-1g.10gb"},
        {"institution": "snu.ac.kr", "project": "a-b_c"},
    ],
)
def test_values_at_the_bounds_are_accepted(changes: dict[str, object]) -> None:
    parse_event("events[0]", event(**changes))


def test_the_first_bad_event_of_a_batch_is_named_by_its_index() -> None:
    batch = [event(event_id=f"e{i}") for i in range(6)]
    batch[4] = event(event_id="e4", count=0)
    batch[5] = event(event_id="e5", sku="")
    with pytest.raises(InvalidArgument) as exc:
        parse_events(batch, max_events=100)
    assert exc.value.field == "events[4].count"


def test_a_batch_over_the_limit_is_refused_as_a_whole() -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_events([event(event_id=f"e{i}") for i in range(11)], max_events=10)
    assert exc.value.field == "events"
    assert len(parse_events([event(event_id=f"e{i}") for i in range(10)], max_events=10)) == 10


@pytest.mark.parametrize(
    ("usage_filter", "field"),
    [
        (UsageFilter(institution="Not A Name"), "institution"),
        (UsageFilter(project="-bad"), "project"),
        (UsageFilter(sku="H100 SXM"), "sku"),
    ],
)
def test_a_bad_filter_is_named(usage_filter: UsageFilter, field: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        check_filter(usage_filter)
    assert exc.value.field == field


def test_empty_filters_match_everything_and_are_valid() -> None:
    assert check_filter(UsageFilter()) == UsageFilter()
    assert check_filter(UsageFilter("kaist", "llm", "RNGD")) == UsageFilter("kaist", "llm", "RNGD")


def test_check_sku_returns_the_name() -> None:
    assert check_sku("sku", "ATOM") == "ATOM"
