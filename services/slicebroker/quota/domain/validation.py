"""Validation of quota input. Everything is checked before anything is written, and every refusal
names the request field at fault (e.g. "reservations[3].count", "device_caps[RNGD]")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from slicebroker.core.catalogue import sku_names
from slicebroker.core.errors import InvalidArgument
from slicebroker.core.ids import check_grant_id, check_name
from slicebroker.core.reasons import Reason
from slicebroker.quota.domain.amount import UNLIMITED, Amount, parse_amount
from slicebroker.quota.domain.budget import Budget
from slicebroker.quota.domain.model import (
    InstitutionSpec,
    NodeKind,
    NodeSpec,
    ProjectSpec,
    ReservationRequest,
    user_node_id,
)
from slicebroker.quota.domain.resources import charges, resource_classes
from slicebroker.quota.domain.store import BurnEvent, ChargedRequest
from slicebroker.quota.domain.tree import QuotaEntry

# The canonical SKU names (case-sensitive) shared by every service of the mesh.
KNOWN_SKUS: tuple[str, ...] = sku_names()
_KNOWN = frozenset(KNOWN_SKUS)

MAX_CAP = 1_000_000
MAX_COUNT = 100_000
MAX_TTL_SECONDS = 3600
MAX_DISPLAY_NAME = 200
# Bounds the work one Lua call does, so a single call cannot stall Redis for other clients.
MAX_BATCH = 10_000


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def check_sku(field: str, sku: str) -> str:
    if sku not in _KNOWN:
        shown = repr(sku) if sku else "an empty name"
        raise InvalidArgument(field, f"unknown SKU {shown}; known: {', '.join(KNOWN_SKUS)}", reason=Reason.UNKNOWN_SKU)
    return sku


def check_display_name(field: str, value: str) -> str:
    if len(value) > MAX_DISPLAY_NAME:
        raise InvalidArgument(field, f"must be at most {MAX_DISPLAY_NAME} characters")
    if not value.isprintable():
        raise InvalidArgument(field, "must not contain control characters")
    return value


def check_int(field: str, value: object, low: int, high: int) -> int:
    # bool is an int in Python; a YAML `true` is not a count.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(field, f"must be a whole number, not {value!r}")
    if not low <= value <= high:
        raise InvalidArgument(field, f"must be between {low} and {high}, not {value}")
    return value


def check_batch(field: str, items: Sequence[object]) -> None:
    if len(items) > MAX_BATCH:
        raise InvalidArgument(field, f"at most {MAX_BATCH} items per call, not {len(items)}")


def validate_institution(spec: InstitutionSpec, prefix: str = "") -> InstitutionSpec:
    check_name(_join(prefix, "id"), spec.id)
    check_display_name(_join(prefix, "display_name"), spec.display_name)
    return spec


def validate_caps(caps: Mapping[str, object], prefix: str = "") -> dict[str, int]:
    checked: dict[str, int] = {}
    for sku, cap in caps.items():
        field = _join(prefix, f"device_caps[{sku}]")
        check_sku(field, sku)
        checked[sku] = check_int(field, cap, 0, MAX_CAP)
    return checked


def validate_project(spec: ProjectSpec, prefix: str = "", institution_field: str = "") -> ProjectSpec:
    """`institution_field` names where the institution came from when it is not `<prefix>.institution`
    (a tenants file nests projects under their institution)."""
    check_name(_join(prefix, "id"), spec.id)
    check_name(institution_field or _join(prefix, "institution"), spec.institution)
    check_display_name(_join(prefix, "display_name"), spec.display_name)
    caps = validate_caps(spec.device_caps, prefix)
    return ProjectSpec(id=spec.id, institution=spec.institution, display_name=spec.display_name, device_caps=caps)


def validate_reservations(items: Sequence[ReservationRequest], *, grant_ids: bool = True) -> list[ChargedRequest]:
    """Checked items with the units each charges (slices counted by their real size). Without
    `grant_ids` (a check, which holds nothing) the items' grant ids are not looked at."""
    check_batch("reservations", items)
    charged: list[ChargedRequest] = []
    for i, item in enumerate(items):
        prefix = f"reservations[{i}]"
        if grant_ids:
            check_grant_id(f"{prefix}.grant_id", item.grant_id)
        check_name(f"{prefix}.project", item.project)
        if item.user:
            check_name(f"{prefix}.user", item.user)
        check_sku(f"{prefix}.sku", item.sku)
        check_int(f"{prefix}.count", item.count, 1, MAX_COUNT)
        check_int(f"{prefix}.ttl_seconds", item.ttl_seconds, 1, MAX_TTL_SECONDS)
        charged.append(ChargedRequest(item, charges(item.sku, item.shape, item.count, field=f"{prefix}.shape")))
    return charged


# Largest amount of one limit (devices or normalised units); keeps every sum exact in Lua.
MAX_DEVICES = Amount.of(MAX_CAP)
MAX_WEIGHT = 1000.0
# Largest award or top-up: a million accelerator-hours per period, in milli-hours.
MAX_MH = 10**12
_CLASSES = frozenset(resource_classes())


def check_class(field: str, cls: str) -> str:
    if cls not in _CLASSES:
        raise InvalidArgument(field, f"unknown resource class {cls!r}; known: {', '.join(resource_classes())}")
    return cls


def check_amount(field: str, text: str, default: Amount) -> Amount:
    """An amount as the API spells it: "" for the default, "unlimited", or devices ("8", "0.25", "1/7")."""
    if not text:
        return default
    try:
        amount = parse_amount(text)
    except (ValueError, ZeroDivisionError) as exc:
        raise InvalidArgument(field, f"not an amount ({exc}); use a number of devices or 'unlimited'") from None
    if not amount <= MAX_DEVICES:
        if amount.unlimited:
            return amount
        raise InvalidArgument(field, f"must be at most {MAX_CAP}")
    return amount


# Which kind of node may be the parent of each kind (None: a root).
_PARENT_KINDS: dict[NodeKind, frozenset[NodeKind | None]] = {
    NodeKind.COHORT: frozenset({None, NodeKind.COHORT}),
    NodeKind.INSTITUTION: frozenset({None, NodeKind.COHORT}),
    NodeKind.PROJECT: frozenset({NodeKind.INSTITUTION}),
    NodeKind.USER: frozenset({NodeKind.PROJECT}),
}


def check_node_id(field: str, value: str) -> str:
    """A tenant id: a name, or "<project>/<user>" (two names) for a user."""
    project, slash, user = value.partition("/")
    if not slash:
        return check_name(field, value)
    try:
        check_name(field, project)
        check_name(field, user)
    except InvalidArgument:
        raise InvalidArgument(field, f"{value!r} is neither a name nor '<project>/<user>' of two names") from None
    return value


def validate_node(spec: NodeSpec, parent_kind: NodeKind | None) -> NodeSpec:
    """`parent_kind` is the kind of the parent as read now (None: no such node, or no parent)."""
    check_node_id("id", spec.id)
    check_display_name("display_name", spec.display_name)
    if (spec.kind is NodeKind.USER) != ("/" in spec.id):
        raise InvalidArgument("id", "users, and only users, are named '<project>/<user>'")
    if spec.kind is NodeKind.USER and spec.id != user_node_id(spec.parent, spec.id.partition("/")[2]):
        raise InvalidArgument("parent", f"the user {spec.id} belongs to project {spec.id.partition('/')[0]}")
    if spec.parent:
        check_name("parent", spec.parent)
        if spec.parent == spec.id:
            raise InvalidArgument("parent", f"{spec.id} cannot be its own parent")
    allowed = _PARENT_KINDS[spec.kind]
    if (parent_kind if spec.parent else None) not in allowed:
        names = " or ".join(sorted("no parent" if k is None else f"a {k}" for k in allowed))
        raise InvalidArgument("parent", f"the parent of a {spec.kind} must be {names}")
    if not 0 < spec.weight <= MAX_WEIGHT:
        raise InvalidArgument("weight", f"must be in (0, {MAX_WEIGHT:g}]")
    return spec


def validate_entries(
    entries: Mapping[str, QuotaEntry | None], has_parent: bool, prefix: str = "entries", cap_only: bool = False
) -> Mapping[str, QuotaEntry | None]:
    """Classes known; borrowing only where there is a pool to borrow from; a user (`cap_only`)
    takes a hard cap and nothing else. Amounts are already non-negative (parsed by `check_amount`)."""
    check_batch(prefix, list(entries))
    for cls, entry in entries.items():
        field = f"{prefix}[{cls}]"
        check_class(field, cls)
        if entry is None:
            continue
        if entry.nominal.unlimited:
            raise InvalidArgument(f"{field}.nominal", "a guarantee must be finite")
        if cap_only:
            for name, value, default in (
                ("nominal", entry.nominal, Amount(0)),
                ("borrowing_limit", entry.borrowing_limit, UNLIMITED),
                ("lending_limit", entry.lending_limit, UNLIMITED),
            ):
                if value != default:
                    raise InvalidArgument(
                        f"{field}.{name}", "a user takes only a hard cap (its project's quota is shared)"
                    )
        if not has_parent and entry.borrowing_limit != Amount(0) and entry.borrowing_limit != UNLIMITED:
            raise InvalidArgument(
                f"{field}.borrowing_limit", "borrowing needs a cohort (a parent to borrow from); this node has none"
            )
    return entries


def validate_budget(b: Budget) -> Budget:
    check_int("budget.award_mh", b.award_mh, 0, MAX_MH)
    check_int("budget.carry_max_mh", b.carry_max_mh, 0, MAX_MH)
    if b.start_ms < 0:
        raise InvalidArgument("budget.start", "must be set")
    if b.end_ms <= b.start_ms:
        raise InvalidArgument("budget.end", "must be after the start")
    if b.expiry_ms < b.end_ms:
        raise InvalidArgument("budget.expiry", "must not be before the end (the period's hours expire after it)")
    return b


def validate_burn(events: Sequence[BurnEvent]) -> None:
    check_batch("events", events)
    for i, e in enumerate(events):
        if not e.event_id or len(e.event_id) > 128 or "|" in e.event_id:
            raise InvalidArgument(f"events[{i}].event_id", "must be 1–128 characters without '|'")
        check_name(f"events[{i}].project", e.project)
        check_int(f"events[{i}].milli_hours", e.mh, 0, MAX_MH)


def validate_grant_ids(grant_ids: Sequence[str], field: str = "grant_ids") -> None:
    check_batch(field, grant_ids)
    for i, grant_id in enumerate(grant_ids):
        check_grant_id(f"{field}[{i}]", grant_id)
