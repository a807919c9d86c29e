"""The quota service's values: tenant nodes (cohorts, institutions, projects) with their quota entries
and budgets, the legacy institution and project views, reservations and their phases."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from slicebroker.core.errors import SlicebrokerError
from slicebroker.quota.domain.budget import Budget
from slicebroker.quota.domain.tree import Priority, QuotaEntry


class NodeKind(StrEnum):
    COHORT = "cohort"
    INSTITUTION = "institution"
    PROJECT = "project"
    # A member of a project: id "<project>/<user>"; it holds what its grants hold, and may carry a
    # cap (hard-cap-only entries) and a state of its own, but brings no quota to the tree.
    USER = "user"


class NodeState(StrEnum):
    """Only an active node (and active ancestors) may take new reservations; what is held stays."""

    ACTIVE = "active"
    ON_HOLD = "on_hold"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """What a caller asks a tenant node to be. `parent` "" is a root; `expected_generation` None
    writes whatever the current generation is, a number refuses the write unless it matches."""

    id: str
    kind: NodeKind
    parent: str = ""
    state: NodeState = NodeState.ACTIVE
    display_name: str = ""
    weight: float = 1.0
    expected_generation: int | None = None


@dataclass(frozen=True, slots=True)
class TenantNode:
    id: str
    kind: NodeKind
    parent: str
    state: NodeState
    display_name: str
    generation: int
    weight: float
    entries: Mapping[str, QuotaEntry]
    budget: Budget | None
    # Milli accelerator-hours burned in the budget's period (all time without a budget).
    burned_mh: int
    # Decayed burn history (milli accelerator-hours) and when it was last decayed (ms).
    history_mh: float
    history_at_ms: int
    # Per resource: units held by the subtree, and the part of it beyond the subtree's quota.
    usage: Mapping[str, int]
    borrowed: Mapping[str, int]
    # Per class: the subtree quota (own nominal plus what children lend).
    subtree_quota: Mapping[str, int]


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
    # "" a whole device, "1g.10gb" a MIG profile, "0.25" a share (see resources.slice_size).
    shape: str = ""
    priority: Priority = Priority.STANDARD
    # The member of the project asking ("" none); counts against tenant "<project>/<user>" if it exists.
    user: str = ""


def user_node_id(project: str, user: str) -> str:
    """The tenant id of `user` in `project`: a project's users are named within it."""
    return f"{project}/{user}"


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
    shape: str = ""
    preemptible: bool = False
    charges: Mapping[str, int] = field(default_factory=dict)
    user: str = ""


@dataclass(frozen=True, slots=True)
class ReserveResult:
    """The answer to one Reserve item: `error` is None on success, and then `institution` is set."""

    grant_id: str
    error: SlicebrokerError | None
    institution: str = ""
    # May be preempted: a preemptible class, or a standard grant that borrows.
    preemptible: bool = False
    # Soft budgets that are used up on the way ("budget of snu is used up (-12.5 h left)").
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GrantIdResult:
    """The answer to one Commit or Cancel item: `error` is None on success."""

    grant_id: str
    error: SlicebrokerError | None
