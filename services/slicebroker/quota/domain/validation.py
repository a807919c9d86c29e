"""Validation of quota input. Everything is checked before anything is written, and every refusal
names the request field at fault (e.g. "reservations[3].count", "device_caps[RNGD]")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from slicebroker.core.catalogue import sku_names
from slicebroker.core.errors import InvalidArgument
from slicebroker.core.ids import check_grant_id, check_name
from slicebroker.core.reasons import Reason
from slicebroker.quota.domain.model import InstitutionSpec, ProjectSpec, ReservationRequest

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


def validate_reservations(items: Sequence[ReservationRequest]) -> None:
    check_batch("reservations", items)
    for i, item in enumerate(items):
        prefix = f"reservations[{i}]"
        check_grant_id(f"{prefix}.grant_id", item.grant_id)
        check_name(f"{prefix}.project", item.project)
        check_sku(f"{prefix}.sku", item.sku)
        check_int(f"{prefix}.count", item.count, 1, MAX_COUNT)
        check_int(f"{prefix}.ttl_seconds", item.ttl_seconds, 1, MAX_TTL_SECONDS)


def validate_grant_ids(grant_ids: Sequence[str], field: str = "grant_ids") -> None:
    check_batch(field, grant_ids)
    for i, grant_id in enumerate(grant_ids):
        check_grant_id(f"{field}[{i}]", grant_id)
