"""Lease durations: what callers may pass (a timedelta, seconds, or text such as "1h30m") and the
one parser for the text form, shared by the SDK and `slicectl --lease`."""

from __future__ import annotations

import math
import re
from datetime import timedelta

Lease = timedelta | float | str
"""A lease: a timedelta, a number of seconds, or text such as "2h", "30m", "3600s", "1d12h", "90"."""

_UNIT_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?[dhms])+")


def parse_lease(text: str) -> timedelta:
    """Parses "2h", "30m", "3600s", "1h30m", "1.5h", "1d" or plain seconds ("90") into a positive
    timedelta. Raises ValueError, naming the accepted forms, for anything else."""
    compact = text.strip().lower().replace(" ", "")
    try:
        seconds = float(compact) if compact and compact[-1].isdigit() else _seconds_with_units(compact)
    except ValueError:
        raise ValueError(f"lease {text!r} is not a duration: use e.g. 2h, 30m, 3600s, 1h30m or plain seconds") from None
    return _positive(_timedelta(seconds, text), text)


def lease_to_timedelta(lease: Lease) -> timedelta:
    """Normalises any accepted lease form; ValueError when it is malformed or not positive."""
    if isinstance(lease, timedelta):
        return _positive(lease, str(lease))
    if isinstance(lease, str):
        return parse_lease(lease)
    if isinstance(lease, bool) or not isinstance(lease, int | float):
        raise ValueError(f"lease must be a timedelta, seconds or text like '2h', not {type(lease).__name__}")
    if not math.isfinite(lease):
        raise ValueError(f"lease {lease!r} is not a finite number of seconds")
    return _positive(_timedelta(lease, f"{lease}s"), f"{lease}s")


def format_duration(delta: timedelta) -> str:
    """The inverse of `parse_lease` for display: "1h30m", "45s", "2d3h"; negative gives "-" + it."""
    seconds = round(delta.total_seconds())
    if seconds < 0:
        return "-" + format_duration(-delta)
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _seconds_with_units(text: str) -> float:
    if not _WHOLE.fullmatch(text):
        raise ValueError(text)
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _PART.findall(text))


def _timedelta(seconds: float, shown: str) -> timedelta:
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"lease {shown} is too long") from None


def _positive(delta: timedelta, shown: str) -> timedelta:
    if delta <= timedelta(0):
        raise ValueError(f"lease must be positive, got {shown}")
    return delta
