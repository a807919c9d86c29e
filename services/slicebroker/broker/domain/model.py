"""The broker's values: requests, grants, slices, events."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from slicebroker.broker.domain.snapshot import ANYWHERE, NO_HOST, HostResources, Topology


class GrantState(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    ENDED = "ended"
    FAILED = "failed"
    QUEUED = "queued"


class PriorityClass(StrEnum):
    """Whether a grant may borrow beyond its tenant's guarantee and whether it may be preempted."""

    GUARANTEED = "guaranteed"
    STANDARD = "standard"
    PREEMPTIBLE = "preemptible"


class EndReason(StrEnum):
    RELEASED = "released"
    EXPIRED = "expired"
    RECLAIMED = "reclaimed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PREEMPTED = "preempted"


@dataclass(frozen=True, slots=True)
class Slice:
    node_id: str
    device_id: str
    # Empty for a whole device; else "mig", "share" or "npu_partition" with its profile/size.
    kind: str = ""
    profile: str = ""


class SliceKind(StrEnum):
    WHOLE = "whole"
    MIG = "mig"
    SHARE = "share"
    NPU_PARTITION = "npu_partition"


@dataclass(frozen=True, slots=True)
class Shape:
    """What one unit of a request is: a whole device, a hardware partition of one (by profile),
    or a share of one in milli-units of its compute and memory."""

    kind: SliceKind = SliceKind.WHOLE
    profile: str = ""
    compute: int = 0  # partition counters, or milli-units for a share
    memory: int = 0

    @property
    def whole(self) -> bool:
        return self.kind is SliceKind.WHOLE

    @property
    def quota_shape(self) -> str:
        """How quota names it: "" whole, the profile, or the share as a fraction ("0.25")."""
        if self.kind is SliceKind.SHARE:
            return f"{self.compute / 1000:g}"
        return self.profile


WHOLE = Shape()


@dataclass(frozen=True, slots=True)
class SkuShapes:
    """What the catalogue says a SKU can be cut into."""

    geometry: tuple[int, int]  # compute and memory partition counters of one device
    kinds: frozenset[str] = frozenset({"whole"})
    # profile -> (kind, compute counters, memory counters)
    profiles: dict[str, tuple[str, int, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Choice:
    """One acceptable accelerator: `count` whole devices of `sku`."""

    sku: str
    count: int


@dataclass(frozen=True, slots=True)
class GrantRequest:
    """A validated request: the first of `choices` that can be had, placed within `topology`."""

    project: str
    choices: tuple[Choice, ...]
    lease_ms: int
    idempotency_key: str
    topology: Topology = ANYWHERE
    priority: PriorityClass = PriorityClass.STANDARD
    queue: bool = False
    # Host CPU and memory needed on the node with each slice.
    host: HostResources = NO_HOST
    shape: Shape = WHOLE
    start_after_ms: int = 0  # 0: serve now

    @property
    def sku(self) -> str:
        return self.choices[0].sku

    @property
    def count(self) -> int:
        return self.choices[0].count


@dataclass(frozen=True, slots=True)
class Grant:
    id: str
    project: str
    sku: str
    count: int
    lease_ms: int
    idempotency_key: str
    state: GrantState
    created_ms: int
    institution: str = ""
    slices: tuple[Slice, ...] = ()
    expires_ms: int = 0
    ended_ms: int = 0
    end_reason: str = ""
    topology: Topology = ANYWHERE
    priority: PriorityClass = PriorityClass.STANDARD
    preemptible: bool = False
    warnings: tuple[str, ...] = ()
    # The alternatives asked for (the granted one is `sku` x `count`); for replays' comparison.
    choices: tuple[Choice, ...] = ()
    queue: bool = False
    waiting_reason: str = ""
    queue_position: int = 0
    # Host CPU and memory held on the node with each slice.
    host: HostResources = NO_HOST
    shape: Shape = WHOLE
    # Lifecycle instants (ms; 0 = not set): activation, "serve no earlier than", and the deadline
    # of a preemption notice with its reason in plain words.
    started_ms: int = 0
    start_after_ms: int = 0
    preemption_deadline_ms: int = 0
    preemption_reason: str = ""
    # The change-stream id of the grant's last announced change (see GrantChange); "" if none.
    revision: str = ""
    # The tenant principal who asked ("" for facility admins and the mesh's services): counted
    # against "<project>/<user>" in quota, billed to them in accounting.
    user: str = ""

    @property
    def queue_score(self) -> int:
        """Queue order: priority class first (guaranteed, standard, preemptible), then age (from
        start_after for a request that asked to start later)."""
        rank = list(PriorityClass).index(self.priority)
        return rank * 10**13 + max(self.created_ms, self.start_after_ms)

    @property
    def live(self) -> bool:
        return self.state in (GrantState.PENDING, GrantState.ACTIVE)

    def same_request(self, request: GrantRequest) -> bool:
        asked = self.choices or (Choice(self.sku, self.count),)
        return (self.project, asked, self.topology, self.priority, self.shape, self.start_after_ms, self.host) == (
            request.project,
            request.choices,
            request.topology,
            request.priority,
            request.shape,
            request.start_after_ms,
            request.host,
        )

    def with_(self, **changes: object) -> Grant:
        return replace(self, **changes)  # type: ignore[arg-type]


class EventType(StrEnum):
    GRANTED = "granted"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class GrantEvent:
    """What accounting learns about a grant. Ids are deterministic per grant and type, so a
    re-emitted event is recognised as the same one downstream."""

    event_id: str
    grant_id: str
    type: EventType
    institution: str
    project: str
    sku: str
    count: int
    at_ms: int
    reason: str = ""
    slices: tuple[Slice, ...] = field(default=())
    slice_kind: str = ""  # "" for whole devices
    priority_class: str = ""
    user: str = ""

    @staticmethod
    def of(grant: Grant, type_: EventType, at_ms: int, reason: str = "") -> GrantEvent:
        return GrantEvent(
            event_id=f"{grant.id}:{type_.value}",
            grant_id=grant.id,
            type=type_,
            institution=grant.institution,
            project=grant.project,
            sku=grant.sku,
            count=grant.count,
            at_ms=at_ms,
            reason=reason,
            slices=grant.slices,
            slice_kind="" if grant.shape.whole else grant.shape.kind.value,
            priority_class=grant.priority.value,
            user=grant.user,
        )


class ChangeType(StrEnum):
    """What happened to a grant, as WatchGrants reports it."""

    QUEUED = "queued"
    GRANTED = "granted"
    RENEWED = "renewed"
    PREEMPTION_NOTICE = "preemption_notice"
    PREEMPTED = "preempted"
    EXPIRED = "expired"
    RELEASED = "released"
    FAILED = "failed"
    SNAPSHOT_BEGIN = "snapshot_begin"
    SNAPSHOT = "snapshot"
    SNAPSHOT_END = "snapshot_end"

    @staticmethod
    def of_end(reason: str) -> ChangeType:
        """The change an ending is announced as: a cancelled queued request counts as released."""
        return {
            EndReason.EXPIRED.value: ChangeType.EXPIRED,
            EndReason.PREEMPTED.value: ChangeType.PREEMPTED,
            EndReason.FAILED.value: ChangeType.FAILED,
        }.get(reason, ChangeType.RELEASED)


@dataclass(frozen=True, slots=True)
class GrantChange:
    """One entry of the grant change stream: the grant right after the change. `revision` is the
    stream id to resume after ("" for the snapshot's own entries, which are no resume points)."""

    type: ChangeType
    revision: str
    grant: Grant | None = None
    at_ms: int = 0
