"""Limits that keep one client from starving the others or exhausting a server's memory:
a token bucket per principal, and bounds on every request (string lengths, list and batch sizes,
page sizes, nesting depth, finite numbers, known enum values), checked before any handler runs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from slicebroker.core.errors import InvalidArgument, ResourceExhausted
from slicebroker.core.reasons import Reason


@dataclass(frozen=True, slots=True)
class Bounds:
    max_string: int = 4096
    max_items: int = 10_000
    max_page_size: int = 1000
    max_depth: int = 16


class RequestTooLarge(InvalidArgument):
    """A bound of `Bounds` broken; the field is named like any other bad input."""


def check_request(message: Message, bounds: Bounds, max_string: int | None = None) -> None:
    """Raises InvalidArgument naming the first field over a bound (or NaN, or an unknown enum)."""
    _check(message, bounds, max_string or bounds.max_string, "", 0)


# Instants from 1970 to the end of 9999 (nothing here predates the epoch; datetime stops at 9999),
# durations up to the protobuf bound of 10,000 years.
_MAX_TIMESTAMP_S = 253_402_300_799
_MAX_DURATION_S = 315_576_000_000


def _check_well_known(message: Message, prefix: str) -> None:
    name = message.DESCRIPTOR.full_name
    path = prefix.rstrip(".") or "request"
    seconds, nanos = getattr(message, "seconds", 0), getattr(message, "nanos", 0)
    if name == "google.protobuf.Timestamp":
        if not (0 <= seconds <= _MAX_TIMESTAMP_S and 0 <= nanos < 1_000_000_000):
            raise InvalidArgument(path, "must be a time between 1970-01-01 and 9999-12-31")
    elif name == "google.protobuf.Duration" and not (
        abs(seconds) <= _MAX_DURATION_S and abs(nanos) < 1_000_000_000 and seconds * nanos >= 0
    ):
        raise InvalidArgument(path, "must be a valid duration (at most 10,000 years)")


def _check(message: Message, bounds: Bounds, max_string: int, prefix: str, depth: int) -> None:
    if depth > bounds.max_depth:
        raise RequestTooLarge(prefix or "request", f"nested deeper than {bounds.max_depth} levels")
    if message.DESCRIPTOR.file.package == "google.protobuf":
        _check_well_known(message, prefix)
        return
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if _is_repeated(field):
            if len(value) > bounds.max_items:
                raise RequestTooLarge(path, f"at most {bounds.max_items} items, got {len(value)}")
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                value_field = field.message_type.fields_by_name["value"]
                for key, item in value.items():
                    _scalar(field.message_type.fields_by_name["key"], key, bounds, max_string, f"{path}[key]")
                    item_path = f"{path}[{str(key)[:64]}]"
                    if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                        _check(item, bounds, max_string, item_path + ".", depth + 1)
                    else:
                        _scalar(value_field, item, bounds, max_string, item_path)
                continue
            for i, item in enumerate(value):
                if field.type == FieldDescriptor.TYPE_MESSAGE:
                    _check(item, bounds, max_string, f"{path}[{i}].", depth + 1)
                else:
                    _scalar(field, item, bounds, max_string, f"{path}[{i}]")
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            _check(value, bounds, max_string, path + ".", depth + 1)
        else:
            _scalar(field, value, bounds, max_string, path)


def _is_repeated(field: FieldDescriptor) -> bool:
    # protobuf 6 deprecates `label` in favour of `is_repeated`; support both.
    repeated = getattr(field, "is_repeated", None)
    if isinstance(repeated, bool):
        return repeated
    return bool(getattr(field, "label", 0) == FieldDescriptor.LABEL_REPEATED)


def _scalar(field: FieldDescriptor, value: object, bounds: Bounds, max_string: int, path: str) -> None:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING and isinstance(value, str):
        if len(value) > max_string:
            raise RequestTooLarge(path, f"at most {max_string} characters, got {len(value)}")
    elif kind == FieldDescriptor.TYPE_BYTES and isinstance(value, bytes):
        if len(value) > max_string:
            raise RequestTooLarge(path, f"at most {max_string} bytes, got {len(value)}")
    elif kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT) and isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument(path, f"must be a finite number, got {value}")
    elif kind == FieldDescriptor.TYPE_ENUM and isinstance(value, int):
        if field.enum_type is not None and value not in field.enum_type.values_by_number:
            known = ", ".join(v.name for v in field.enum_type.values)
            raise InvalidArgument(path, f"unknown value {value}; one of {known}")
    elif field.name == "page_size" and isinstance(value, int) and not 0 <= value <= bounds.max_page_size:
        raise InvalidArgument(path, f"must be between 0 and {bounds.max_page_size}, got {value}")


class RateLimiter:
    """A token bucket per principal: `rate` calls a second on average, bursts of up to `burst`.

    In-process, per replica: with N replicas behind a balancer a principal gets up to N times the
    rate. That keeps the check free of a Redis round trip on every call; the point is that one
    client cannot starve the others of a replica's CPU, not exact global accounting."""

    _MAX_PRINCIPALS = 100_000

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._buckets: dict[str, tuple[float, float]] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, who: str, now: float | None = None) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(who, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            retry_ms = math.ceil((1.0 - tokens) / self.rate * 1000)
            self._buckets[who] = (tokens, now)
            raise ResourceExhausted(
                f"rate limit of {self.rate:g} calls/s (burst {self.burst:g}) exceeded for {who!r}; "
                f"retry in {retry_ms} ms",
                reason=Reason.RATE_LIMITED,
                metadata={"retry_after_ms": retry_ms, "principal": who},
            )
        if len(self._buckets) >= self._MAX_PRINCIPALS and who not in self._buckets:
            # Forget buckets that have refilled by now: a principal seen again starts full, which is
            # what its bucket would hold anyway.
            refill_s = self.burst / self.rate
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < refill_s}
        self._buckets[who] = (tokens - 1.0, now)
