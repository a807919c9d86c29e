"""Accounting's values: grant events as received and as checked, usage totals and ledger records."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class GrantAttrs:
    """What a GRANTED event tells beyond identity, for rating and exports. The broker does not fill
    these yet; the defaults describe what it grants today (whole devices, normal priority)."""

    user: str = ""
    slice_kind: str = "whole"
    priority_class: str = ""
    isolation_class: str = ""
    node: str = ""
    site: str = ""


class EventType(StrEnum):
    # What a caller sent when it named no type (or one this version does not know).
    UNSPECIFIED = "unspecified"
    GRANTED = "granted"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    """A grant event as the caller sent it, not yet checked: `at_ms` is None when `at` was unset."""

    event_id: str
    grant_id: str
    type: EventType
    institution: str
    project: str
    sku: str
    count: int
    at_ms: int | None
    reason: str = ""
    attrs: GrantAttrs = GrantAttrs()


@dataclass(frozen=True, slots=True)
class GrantEvent:
    """A checked grant event: every field is well-formed, so the store may key and add with it."""

    event_id: str
    grant_id: str
    type: EventType
    institution: str
    project: str
    sku: str
    count: int
    # When the event took effect, epoch ms: the grant's start for GRANTED, its end for ENDED.
    at_ms: int
    reason: str = ""
    attrs: GrantAttrs = GrantAttrs()


@dataclass(frozen=True, slots=True)
class IngestResult:
    applied: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class UsageFilter:
    """Exact-match filters of a usage query; an empty string matches everything."""

    institution: str = ""
    project: str = ""
    sku: str = ""


@dataclass(frozen=True, slots=True)
class RowTotals:
    """What the store keeps per (institution, project, SKU), in exact integers.

    Running usage is kept as two sums over the open grants (their size, and size x start ms) so
    that the device-ms used so far by all of them is `now * running_devices - running_start_sum`,
    one multiplication per row instead of a walk over every open grant. Sizes count a slice as its
    share of the device: `running_devices` is in `slices.SIZE_DEN`ths of a device, the device-ms
    sums in device-ms.
    """

    institution: str
    project: str
    sku: str
    device_ms: int = 0
    grants: int = 0
    running_grants: int = 0
    running_devices: int = 0
    running_start_sum: int = 0


@dataclass(frozen=True, slots=True)
class UsageRow:
    institution: str
    project: str
    sku: str
    # Device-seconds of grants that have ended.
    device_seconds: float
    # Device-seconds so far of grants still running, as of the usage's `as_of_ms`.
    running_device_seconds: float
    grants: int
    running_grants: int


@dataclass(frozen=True, slots=True)
class Usage:
    rows: tuple[UsageRow, ...]
    as_of_ms: int


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    """One closed grant, appended once to the ledger when it closes."""

    # The ledger's own position of the record (a Redis stream id), for reading on from it.
    position: str
    grant_id: str
    institution: str
    project: str
    sku: str
    count: int
    start_ms: int
    end_ms: int
    device_ms: int
    end_reason: str

    @property
    def device_seconds(self) -> float:
        return self.device_ms / 1000
