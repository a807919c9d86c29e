"""Checks of what callers send, raised as `InvalidArgument` naming the request field, before any write.

Beyond well-formedness, the bounds here keep the store's integer arithmetic inside int64: with at
most `MAX_COUNT` devices per grant and times inside this century, count x start-ms stays below
4.2e17, so a row's sums overflow only past millions of such grants.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from slicebroker.accounting.domain.model import EventType, GrantEvent, IncomingEvent, UsageFilter
from slicebroker.core.errors import InvalidArgument
from slicebroker.core.ids import check_grant_id, check_name

MAX_EVENT_ID_LEN = 128
MAX_REASON_LEN = 64
MAX_COUNT = 100_000
# 2000-01-01 and 2100-01-01 (UTC), epoch ms.
MIN_AT_MS = 946_684_800_000
MAX_AT_MS = 4_102_444_800_000
# SKUs are the inventory's to define, so accounting takes any name of this shape; '|' and ':' stay
# out because the store joins institution, project and SKU into one row name with them.
SKU_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+/-]{0,63}$")
# Free-form fields stay free of control characters, which the store uses as separators.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# Grant attributes travel packed in the ledger index, joined by control characters.
_ATTR_BAD_RE = re.compile(r"[\x00-\x1f\x7f|]")
MAX_ATTR_LEN = 128


def check_sku(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(field, "must not be empty")
    if not SKU_RE.match(value):
        raise InvalidArgument(
            field, f"{value!r} is not a SKU name (letters, digits, '.', '_', '+', '/' or '-'; at most 64)"
        )
    return value


def check_slice_kind(field: str, value: str) -> str:
    """A slice kind as the price book names it ("whole", "mig-1g.10gb", "fraction-0.25", …)."""
    if len(value) > MAX_ATTR_LEN or not SKU_RE.match(value):
        raise InvalidArgument(field, f"{value!r} is not a slice kind (e.g. whole, mig-1g.10gb, fraction-0.25)")
    return value


def parse_event(field: str, event: IncomingEvent) -> GrantEvent:
    """The checked form of one event; `field` is its place in the request, e.g. "events[4]"."""
    if not event.event_id:
        raise InvalidArgument(f"{field}.event_id", "must not be empty")
    if len(event.event_id) > MAX_EVENT_ID_LEN:
        raise InvalidArgument(f"{field}.event_id", f"must be at most {MAX_EVENT_ID_LEN} characters")
    if _CONTROL_RE.search(event.event_id):
        raise InvalidArgument(f"{field}.event_id", "must not contain control characters")
    check_grant_id(f"{field}.grant_id", event.grant_id)
    if event.type is EventType.UNSPECIFIED:
        raise InvalidArgument(f"{field}.type", "must be GRANTED or ENDED")
    check_name(f"{field}.institution", event.institution)
    check_name(f"{field}.project", event.project)
    check_sku(f"{field}.sku", event.sku)
    if not 1 <= event.count <= MAX_COUNT:
        raise InvalidArgument(f"{field}.count", f"must be between 1 and {MAX_COUNT}, not {event.count}")
    if event.at_ms is None:
        raise InvalidArgument(f"{field}.at", "must be set")
    if not MIN_AT_MS <= event.at_ms < MAX_AT_MS:
        raise InvalidArgument(f"{field}.at", "must lie between 2000-01-01 and 2100-01-01")
    if len(event.reason) > MAX_REASON_LEN:
        raise InvalidArgument(f"{field}.reason", f"must be at most {MAX_REASON_LEN} characters")
    if _CONTROL_RE.search(event.reason):
        raise InvalidArgument(f"{field}.reason", "must not contain control characters")
    attrs = event.attrs
    for name in ("user", "slice_kind", "priority_class", "isolation_class", "node", "site"):
        value = getattr(attrs, name)
        if len(value) > MAX_ATTR_LEN or _ATTR_BAD_RE.search(value):
            raise InvalidArgument(
                f"{field}.{name}", f"at most {MAX_ATTR_LEN} characters, none of them control characters or '|'"
            )
    if not attrs.slice_kind:
        attrs = replace(attrs, slice_kind="whole")
    return GrantEvent(
        event_id=event.event_id,
        grant_id=event.grant_id,
        type=event.type,
        institution=event.institution,
        project=event.project,
        sku=event.sku,
        count=event.count,
        at_ms=event.at_ms,
        reason=event.reason,
        attrs=attrs,
    )


def parse_events(events: Sequence[IncomingEvent], max_events: int) -> list[GrantEvent]:
    """All events checked, or the first bad one's field named: a batch is taken whole or not at all."""
    if len(events) > max_events:
        raise InvalidArgument("events", f"at most {max_events} events per call, not {len(events)}")
    return [parse_event(f"events[{i}]", event) for i, event in enumerate(events)]


def check_filter(usage_filter: UsageFilter) -> UsageFilter:
    if usage_filter.institution:
        check_name("institution", usage_filter.institution)
    if usage_filter.project:
        check_name("project", usage_filter.project)
    if usage_filter.sku:
        check_sku("sku", usage_filter.sku)
    return usage_filter
