"""Validation of broker requests. Everything is checked before anything is written."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from slicebroker.broker.domain.model import (
    WHOLE,
    Choice,
    GrantRequest,
    PriorityClass,
    Shape,
    SkuShapes,
    SliceKind,
)
from slicebroker.broker.domain.snapshot import ANYWHERE, NO_HOST, HostResources, Topology
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
    shape: tuple[str, str, int, int] = ("", "", 0, 0),
    host: tuple[int, int] = (0, 0),
    catalogue: Mapping[str, SkuShapes] | None = None,
    start_after_ms: int = 0,
    now_ms: int = 0,
    max_start_after_ms: int = 30 * 24 * 3600 * 1000,
    clock_skew_ms: int = 60_000,
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
    check_members(topology, choices)
    slice_shape = check_shape(shape, [c.sku for c in choices], catalogue or {})
    start_after = check_start_after(start_after_ms, now_ms, max_start_after_ms, clock_skew_ms)
    host_per_slice = check_host(*host)
    return GrantRequest(
        host=host_per_slice,
        start_after_ms=start_after,
        shape=slice_shape,
        project=project,
        choices=tuple(choices),
        lease_ms=lease_ms,
        idempotency_key=idempotency_key,
        topology=topology,
        priority=priority_class,
        queue=queue,
    )


def check_members(topology: Topology, choices: Sequence[Choice]) -> None:
    """Devices per member (0 or 1: no grouping) must divide every count asked for, so that each
    member's devices can go on one node."""
    per_member = topology.devices_per_member
    if per_member < 0:
        raise InvalidArgument(FIELD_PER_MEMBER, f"must be 0 (no grouping) or more, not {per_member}")
    if per_member <= 1:
        return
    for i, choice in enumerate(choices):
        field = "count" if i == 0 else f"alternatives[{i - 1}].count"
        if choice.count < per_member:
            raise InvalidArgument(
                FIELD_PER_MEMBER, f"{per_member} devices per member is more than the {choice.count} asked for ({field})"
            )
        if choice.count % per_member:
            raise InvalidArgument(
                FIELD_PER_MEMBER,
                f"{choice.count} devices ({field}) do not divide into members of {per_member}; "
                "ask for a multiple of it",
            )


FIELD_PER_MEMBER = "topology.devices_per_member"


def check_start_after(start_after_ms: int, now_ms: int, max_ahead_ms: int, skew_ms: int) -> int:
    """When the request may start (0: now): not further in the past than the clock skew allowed
    between client and broker, at most `max_ahead_ms` ahead. Kept as given, so that a replay of
    the request compares equal."""
    if not start_after_ms:
        return 0
    if start_after_ms < now_ms - skew_ms:
        raise InvalidArgument(
            "start_after", f"is {(now_ms - start_after_ms) // 1000} s in the past; leave it unset to start now"
        )
    if start_after_ms > now_ms + max_ahead_ms:
        raise InvalidArgument("start_after", f"must be at most {max_ahead_ms // 86_400_000} days ahead")
    return start_after_ms


# Host resources one slice may ask for: beyond any one server (4,096 cores, 64 TiB), so a typo is caught.
MAX_HOST_CPU_MILLI = 4096 * 1000
MAX_HOST_MEMORY_MIB = 64 * 1024 * 1024


def check_host(cpu_milli: int, memory_mib: int) -> HostResources:
    """Host CPU (milli-cores) and memory (MiB) per slice; 0 asks for none."""
    for name, value, most in (
        ("cpu_milli", cpu_milli, MAX_HOST_CPU_MILLI),
        ("memory_mib", memory_mib, MAX_HOST_MEMORY_MIB),
    ):
        if not 0 <= value <= most:
            raise InvalidArgument(f"host_per_slice.{name}", f"must be between 0 and {most}, not {value}")
    return HostResources(cpu_milli, memory_mib) if cpu_milli or memory_mib else NO_HOST


def check_choice(
    sku_field: str, count_field: str, sku: str, count: int, known_skus: Collection[str], max_count: int
) -> Choice:
    check_sku(sku_field, sku, known_skus)
    if count <= 0:
        raise InvalidArgument(count_field, "must be at least 1")
    if count > max_count:
        raise InvalidArgument(count_field, f"must be at most {max_count}")
    return Choice(sku, count)


def check_shape(shape: tuple[str, str, int, int], skus: Sequence[str], catalogue: Mapping[str, SkuShapes]) -> Shape:
    """The slice shape asked for, checked against every SKU the request accepts."""
    kind_name, profile, compute_milli, memory_milli = shape
    try:
        kind = SliceKind(kind_name or SliceKind.WHOLE)
    except ValueError:
        raise InvalidArgument(
            "shape.kind", f"{kind_name!r} is not one of {', '.join(k.value for k in SliceKind)}"
        ) from None
    if kind is SliceKind.WHOLE:
        return WHOLE
    for sku in skus:
        shapes = catalogue.get(sku)
        if shapes is None or kind.value not in shapes.kinds:
            raise InvalidArgument("shape.kind", f"{sku} does not come in {kind.value} slices")
    if kind is SliceKind.SHARE:
        if not 1 <= compute_milli <= 999:
            raise InvalidArgument("shape.compute_milli", "a share is 1..999 milli of a device (1000 is a whole device)")
        if not 0 <= memory_milli <= 1000:
            raise InvalidArgument("shape.memory_milli", "must be 0..1000 (0: the same as compute)")
        return Shape(kind, "", compute_milli, memory_milli or compute_milli)
    found: tuple[str, int, int] | None = None
    for sku in skus:
        entry = catalogue[sku].profiles.get(profile)
        if entry is None or entry[0] != kind.value:
            known = ", ".join(p for p, e in catalogue[sku].profiles.items() if e[0] == kind.value)
            raise InvalidArgument("shape.profile", f"{sku} has no {kind.value} profile {profile!r}; known: {known}")
        if found is not None and found != entry:
            raise InvalidArgument("shape.profile", f"{profile!r} differs between the SKUs asked for; ask for one")
        found = entry
    assert found is not None
    return Shape(kind, profile, found[1], found[2])
