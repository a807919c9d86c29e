"""Validation of broker requests. Everything is checked before anything is written."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from slicebroker.broker.domain.model import Choice, GrantRequest, PriorityClass
from slicebroker.broker.domain.snapshot import ANYWHERE, Topology
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
    alternatives: Sequence[tuple[str, int]] = (),
    topology: Topology = ANYWHERE,
    priority: str = "",
    max_alternatives: int = 8,
    queue: bool = False,
) -> GrantRequest:
    check_name("project", project)
    choices = [check_choice("sku", "count", sku, count, known_skus, max_count)]
    if len(alternatives) > max_alternatives:
        raise InvalidArgument("alternatives", f"at most {max_alternatives} alternatives")
    for i, (alt_sku, alt_count) in enumerate(alternatives):
        choice = check_choice(
            f"alternatives[{i}].sku", f"alternatives[{i}].count", alt_sku, alt_count, known_skus, max_count
        )
        if choice in choices:
            raise InvalidArgument(f"alternatives[{i}]", f"{alt_count} x {alt_sku} is already asked for")
        choices.append(choice)
    check_lease("lease", lease_ms, max_lease_ms)
    if idempotency_key:
        check_idempotency_key("idempotency_key", idempotency_key)
    try:
        priority_class = PriorityClass(priority or PriorityClass.STANDARD)
    except ValueError:
        raise InvalidArgument(
            "priority_class", f"{priority!r} is not one of {', '.join(p.value for p in PriorityClass)}"
        ) from None
    return GrantRequest(
        project=project,
        choices=tuple(choices),
        lease_ms=lease_ms,
        idempotency_key=idempotency_key,
        topology=topology,
        priority=priority_class,
        queue=queue,
    )


def check_choice(
    sku_field: str, count_field: str, sku: str, count: int, known_skus: Collection[str], max_count: int
) -> Choice:
    check_sku(sku_field, sku, known_skus)
    if count <= 0:
        raise InvalidArgument(count_field, "must be at least 1")
    if count > max_count:
        raise InvalidArgument(count_field, f"must be at most {max_count}")
    return Choice(sku, count)
