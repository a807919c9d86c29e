"""Identifiers: how they are made and what a well-formed one looks like."""

from __future__ import annotations

import re
import secrets
import time

from slicebroker.core.errors import InvalidArgument

# Crockford base32: sortable, unambiguous, URL-safe.
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"

# Names of tenants, nodes and devices: DNS-label-like, so they map onto Kubernetes names.
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")
# Grant ids are "gr_" + 26 base32 chars (48-bit ms time + 80 random bits), sortable by creation.
GRANT_ID_RE = re.compile(r"^gr_[0-9a-hjkmnp-tv-z]{26}$")
# Idempotency keys are client-chosen; bounded so they can live in Redis keys.
IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9._:/=+-]{1,128}$")


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_sortable_id(prefix: str, now_ms: int | None = None) -> str:
    """A ULID-style id: lexicographic order follows creation time."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return f"{prefix}_{_b32(ms, 10)}{_b32(secrets.randbits(80), 16)}"


def new_grant_id(now_ms: int | None = None) -> str:
    return new_sortable_id("gr", now_ms)


def new_event_id(now_ms: int | None = None) -> str:
    return new_sortable_id("ev", now_ms)


def check_name(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(field, "must not be empty")
    if not NAME_RE.match(value):
        raise InvalidArgument(
            field,
            f"{value!r} is not a valid name (lowercase letters, digits, '.', '_' or '-'; at most 63)",
        )
    return value


def check_grant_id(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(field, "must not be empty")
    if not GRANT_ID_RE.match(value):
        raise InvalidArgument(field, f"{value!r} is not a grant id (expected 'gr_' and 26 base32 characters)")
    return value


def check_idempotency_key(field: str, value: str) -> str:
    if not IDEMPOTENCY_KEY_RE.match(value):
        raise InvalidArgument(field, "must be 1-128 characters of letters, digits and ._:/=+-")
    return value
