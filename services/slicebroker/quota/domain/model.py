"""The quota service's values: institutions, projects and their caps, reservations and their phases."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from slicebroker.core.errors import SlicebrokerError


@dataclass(frozen=True, slots=True)
class InstitutionSpec:
    """What a caller asks an institution to be (validated)."""

    id: str
    display_name: str


@dataclass(frozen=True, slots=True)
class Institution:
    id: str
    display_name: str
    generation: int


@dataclass(frozen=True, slots=True)
class ProjectSpec:
    """What a caller asks a project to be (validated). `device_caps` maps SKU → most devices of that
    SKU the project may hold at once; a SKU not named has a cap of 0."""

    id: str
    institution: str
    display_name: str
    device_caps: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    institution: str
    display_name: str
    device_caps: Mapping[str, int]
    # Devices of each SKU held now, reserved or committed; SKUs with none are left out.
    devices_in_use: Mapping[str, int]
    generation: int


class Phase(StrEnum):
    RESERVED = "reserved"
    COMMITTED = "committed"


@dataclass(frozen=True, slots=True)
class ReservationRequest:
    """One item of a Reserve call: hold `count` devices of `sku` against `project` for grant `grant_id`."""

    grant_id: str
    project: str
    sku: str
    count: int
    ttl_seconds: int


@dataclass(frozen=True, slots=True)
class HeldReservation:
    grant_id: str
    project: str
    sku: str
    count: int
    phase: Phase
    created_ms: int
    # When an uncommitted reservation lapses; 0 once committed.
    expires_ms: int


@dataclass(frozen=True, slots=True)
class ReserveResult:
    """The answer to one Reserve item: `error` is None on success, and then `institution` is set."""

    grant_id: str
    error: SlicebrokerError | None
    institution: str = ""


@dataclass(frozen=True, slots=True)
class GrantIdResult:
    """The answer to one Commit or Cancel item: `error` is None on success."""

    grant_id: str
    error: SlicebrokerError | None
