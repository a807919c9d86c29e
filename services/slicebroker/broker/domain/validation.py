"""Validation of broker requests. Everything is checked before anything is written."""

from __future__ import annotations

from collections.abc import Collection

from slicebroker.broker.domain.model import GrantRequest
from slicebroker.core.errors import InvalidArgument
from slicebroker.core.ids import check_idempotency_key, check_name
from slicebroker.core.reasons import Reason


def check_sku(field: str, sku: str, known: Collection[str]) -> str:
    if not sku:
        raise InvalidArgument(field, "must not be empty")
    if sku not in known:
        raise InvalidArgument(
            field, f"unknown SKU {sku!r}; known: {', '.join(sorted(known))}", reason=Reason.UNKNOWN_SKU
        )
    return sku


def check_lease(field: str, lease_ms: int, max_lease_ms: int) -> int:
    if lease_ms <= 0:
        raise InvalidArgument(field, "must be a positive duration")
    if lease_ms > max_lease_ms:
        raise InvalidArgument(field, f"must be at most {max_lease_ms // 1000} s")
    return lease_ms


def validate_request(
    *,
    project: str,
    sku: str,
    count: int,
    lease_ms: int,
    idempotency_key: str,
    known_skus: Collection[str],
    max_count: int,
    max_lease_ms: int,
) -> GrantRequest:
    check_name("project", project)
    check_sku("sku", sku, known_skus)
    if count <= 0:
        raise InvalidArgument("count", "must be at least 1")
    if count > max_count:
        raise InvalidArgument("count", f"must be at most {max_count}")
    check_lease("lease", lease_ms, max_lease_ms)
    if idempotency_key:
        check_idempotency_key("idempotency_key", idempotency_key)
    return GrantRequest(project=project, sku=sku, count=count, lease_ms=lease_ms, idempotency_key=idempotency_key)
