"""Billing periods (calendar months, UTC) and the day boundaries usage is split at.

A period is named "YYYY-MM" everywhere: in requests, in the ledger index and in statements. Usage
is charged to the day (and so the month) in which it happened: a grant's lifetime is cut at every
UTC midnight, so no charge line ever spans two days or two periods.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

from slicebroker.core.errors import InvalidArgument

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
_PERIOD_RE = re.compile(r"^(\d{4})-(\d{2})$")


def _ms(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * 1000


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """One billing month: [start_ms, end_ms)."""

    year: int
    month: int

    @property
    def name(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start_ms(self) -> int:
        return _ms(date(self.year, self.month, 1))

    @property
    def end_ms(self) -> int:
        return self.next().start_ms

    def next(self) -> Period:
        return Period(self.year + 1, 1) if self.month == 12 else Period(self.year, self.month + 1)

    @classmethod
    def of_ms(cls, ms: int) -> Period:
        d = datetime.fromtimestamp(ms / 1000, UTC)
        return cls(d.year, d.month)


def parse_period(field: str, value: str) -> Period:
    """ "2026-11" -> Period; anything else names `field`."""
    m = _PERIOD_RE.match(value)
    if not m or not 1 <= int(m.group(2)) <= 12 or not 2000 <= int(m.group(1)) < 2100:
        raise InvalidArgument(field, f"{value!r} is not a billing period: use YYYY-MM, e.g. 2026-11")
    return Period(int(m.group(1)), int(m.group(2)))


def day_name(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def day_start_ms(ms: int) -> int:
    return ms - ms % DAY_MS


def parse_day(field: str, value: str) -> int:
    """ "2026-11-01" -> its midnight (UTC), epoch ms."""
    try:
        d = date.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(field, f"{value!r} is not a date: use YYYY-MM-DD") from None
    return _ms(d)


def day_segments(start_ms: int, end_ms: int) -> Iterator[tuple[int, int]]:
    """[start, end) cut at every UTC midnight; nothing for an empty or inverted interval."""
    t = start_ms
    while t < end_ms:
        cut = min(end_ms, day_start_ms(t) + DAY_MS)
        yield t, cut
        t = cut
