"""The SDK's result types: frozen, slotted dataclasses that callers hold instead of protobuf messages.

Times are timezone-aware UTC datetimes; collections are tuples (or read-only mappings), so a result
can be shared and cached without defensive copies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class GrantState(StrEnum):
    PENDING = "pending"
    """Placed and being claimed; never visible for long."""
    ACTIVE = "active"
    ENDED = "ended"
    FAILED = "failed"
    """Could not be completed; nothing is held."""
    QUEUED = "queued"
    """Within quota, waiting for capacity (asked for with `queue=True`); holds nothing yet."""
    UNKNOWN = "unknown"
    """A state this SDK does not know, sent by a newer server: upgrade the SDK."""


@dataclass(frozen=True, slots=True)
class Slice:
    """One device on one node, handed to a grant — whole, or a slice of it."""

    node_id: str
    device_id: str
    kind: str = ""
    """Empty for a whole device; "mig", "share" or "npu_partition" for a slice of it."""
    profile: str = ""
    """The partition profile ("1g.10gb"), or a share's fraction of the device ("0.25")."""


@dataclass(frozen=True, slots=True)
class Shape:
    """What each unit of a request is: a whole device (the default), a partition by profile, or
    a share of one device. Build with `Shape.mig("1g.10gb")`, `Shape.npu("2core.12gb")`,
    `Shape.share(0.25)`."""

    kind: str = "whole"
    profile: str = ""
    compute_milli: int = 0
    memory_milli: int = 0

    @classmethod
    def mig(cls, profile: str) -> Shape:
        return cls("mig", profile)

    @classmethod
    def npu(cls, profile: str) -> Shape:
        return cls("npu_partition", profile)

    @classmethod
    def share(cls, fraction: float, memory_fraction: float | None = None) -> Shape:
        memory = round(1000 * memory_fraction) if memory_fraction is not None else 0
        return cls("share", "", round(1000 * fraction), memory)


@dataclass(frozen=True, slots=True)
class HostResources:
    """Host CPU and memory that go with each slice, on the slice's node. Build with
    `HostResources.of(cpu=4, memory="32Gi")`."""

    cpu_milli: int = 0
    memory_mib: int = 0

    @classmethod
    def of(cls, cpu: float = 0, memory: str | int = 0) -> HostResources:
        """`cpu` in cores (0.5 is half a core); `memory` in MiB, or text like "512Mi", "32Gi", "1Ti"."""
        return cls(round(cpu * 1000), parse_memory_mib(memory))

    def __bool__(self) -> bool:
        return self.cpu_milli > 0 or self.memory_mib > 0


_MEMORY_UNITS = {"mi": 1, "m": 1, "gi": 1024, "g": 1024, "ti": 1024 * 1024, "t": 1024 * 1024}


def parse_memory_mib(memory: str | int) -> int:
    """MiB from an int, or from text like "512Mi", "32Gi", "1.5Ti" (plain numbers are MiB).
    Raises ValueError for anything else."""
    if isinstance(memory, int):
        return memory
    text = memory.strip().lower().removesuffix("b")
    number = text.rstrip("imgt")
    unit = text[len(number) :] or "mi"
    try:
        return round(float(number) * _MEMORY_UNITS[unit])
    except (ValueError, KeyError):
        raise ValueError(f"memory {memory!r} is not an amount: use e.g. 512Mi, 32Gi, 1Ti or MiB") from None


class Placement(StrEnum):
    """Where the devices of one grant may be (a gang when count > 1)."""

    ANYWHERE = "anywhere"
    SAME_NODE = "same-node"
    SAME_NVLINK_DOMAIN = "same-nvlink-domain"
    SAME_LEAF = "same-leaf"
    SPREAD = "spread"


@dataclass(frozen=True, slots=True)
class Grant:
    """A lease on concrete slices."""

    id: str
    project: str
    institution: str
    sku: str
    count: int
    slices: tuple[Slice, ...]
    state: GrantState
    created_at: datetime
    expires_at: datetime | None
    """When the lease lapses unless renewed; None for a grant that never became active."""
    ended_at: datetime | None
    end_reason: str
    """released, expired, reclaimed or failed; empty while the grant lives."""
    idempotency_key: str
    queue_position: int = 0
    """While queued: 1 for the next request to be served; 0 otherwise."""
    waiting_reason: str = ""
    """While queued: why it waits (e.g. which capacity it needs)."""
    priority_class: str = "standard"
    preemptible: bool = False
    """Quota says it may be preempted (a preemptible class, or a standard grant that borrows)."""
    host_per_slice: HostResources | None = None
    """Host CPU and memory held on the node with each slice; None when none were asked for."""
    start_after: datetime | None = None
    """Not served before this instant (asked for with `start_after`)."""
    preemption_deadline: datetime | None = None
    """Set once the grant has a preemption notice: its slices are taken back at this instant."""
    preemption_reason: str = ""
    """Why it is being preempted, in plain words."""
    user: str = ""
    """The tenant principal who asked ("" when a facility admin or the operator did)."""

    @property
    def live(self) -> bool:
        """Whether the grant holds (or is about to hold) its slices; a queued one does not yet."""
        return self.state in (GrantState.PENDING, GrantState.ACTIVE)

    @property
    def waiting(self) -> bool:
        """Whether the request waits in the broker's queue (see `queue_position`)."""
        return self.state is GrantState.QUEUED


@dataclass(frozen=True, slots=True)
class Quote:
    """What a request would cost and when it would likely start (nothing was submitted)."""

    sku: str
    """The alternative quoted: the first quota allows that could start soonest."""
    count: int
    currency: str
    """Empty when nothing could be priced (see `warnings`)."""
    cost: float
    """For the whole lease."""
    cost_per_hour: float
    accelerator_hours: float
    """Normalised accelerator-hours the lease would burn from a budget."""
    price_tier: str
    price_book_version: int
    available_now: bool
    """True when the request would be granted at once."""
    estimated_start: datetime | None
    """Best estimate of the start; None when unknown."""
    queue_position: int
    waiting_reason: str
    refusal_reason: str
    """Set when quota or budget would refuse it (e.g. QUOTA_EXCEEDED); empty otherwise."""
    refusal_message: str
    warnings: tuple[str, ...] = ()

    @property
    def refused(self) -> bool:
        return bool(self.refusal_reason)


class GrantChangeType(StrEnum):
    """What happened to a grant, as `watch()` reports it."""

    QUEUED = "queued"
    GRANTED = "granted"
    RENEWED = "renewed"
    PREEMPTION_NOTICE = "preemption_notice"
    """The grant will be preempted at `grant.preemption_deadline`."""
    PREEMPTED = "preempted"
    EXPIRED = "expired"
    RELEASED = "released"
    FAILED = "failed"
    SNAPSHOT_BEGIN = "snapshot_begin"
    """A snapshot follows: drop what you knew; each live grant comes as SNAPSHOT, then SNAPSHOT_END."""
    SNAPSHOT = "snapshot"
    SNAPSHOT_END = "snapshot_end"
    UNKNOWN = "unknown"
    """A change this SDK does not know, sent by a newer server."""


@dataclass(frozen=True, slots=True)
class GrantChange:
    """One change to a grant, with the grant right after it."""

    type: GrantChangeType
    revision: str
    """Where to resume after this change (opaque, ordered); empty for a snapshot's grants."""
    grant: Grant | None
    at: datetime | None

    @property
    def snapshot(self) -> bool:
        """Whether it is part of a snapshot (the state of things, not a change)."""
        return self.type in (GrantChangeType.SNAPSHOT_BEGIN, GrantChangeType.SNAPSHOT, GrantChangeType.SNAPSHOT_END)


@dataclass(frozen=True, slots=True)
class Sku:
    """An accelerator model the facility knows."""

    name: str
    vendor: str
    model: str
    memory_gib: int
    kind: str
    """"gpu" or "npu"."""


@dataclass(frozen=True, slots=True)
class SkuCapacity:
    """Devices of one SKU across the facility."""

    sku: str
    nodes: int
    devices: int
    free: int
    """Healthy devices no grant holds."""
    unhealthy: int

    @property
    def used(self) -> int:
        """Devices held by grants (counting neither free nor unhealthy ones)."""
        return max(self.devices - self.free - self.unhealthy, 0)

    @property
    def utilization(self) -> float:
        """Share of the healthy devices held by grants, 0.0 to 1.0."""
        healthy = self.devices - self.unhealthy
        return self.used / healthy if healthy > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    """Globally unique: "<node_id>/<kind><index>", e.g. "h100-r001-n01/gpu3"."""
    sku: str
    index: int
    healthy: bool
    holder: str | None
    """Id of the grant holding the device; None when free."""


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    site: str
    rack: str
    devices: tuple[Device, ...]
    generation: int
    """Incremented by every write to the node."""
    schedulable: bool
    mig_layout: dict[str, int] = field(default_factory=dict)
    """The MIG instances the node's GPUs are cut into ahead of time (profile -> instances across
    the node); empty when devices are cut as requests come."""

    @property
    def skus(self) -> tuple[str, ...]:
        """The SKUs of the node's devices, in device order, each once."""
        return tuple(dict.fromkeys(d.sku for d in self.devices))

    @property
    def free(self) -> int:
        """Healthy devices no grant holds."""
        return sum(1 for d in self.devices if d.healthy and d.holder is None)

    @property
    def unhealthy(self) -> int:
        return sum(1 for d in self.devices if not d.healthy)


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Use by one project of one SKU."""

    institution: str
    project: str
    sku: str
    device_seconds: float
    """Device-seconds of grants that have ended."""
    running_device_seconds: float
    """Device-seconds so far of grants still running (as of `Usage.as_of`)."""
    grants: int
    running_grants: int

    @property
    def device_hours(self) -> float:
        return self.device_seconds / 3600.0

    @property
    def running_device_hours(self) -> float:
        return self.running_device_seconds / 3600.0


@dataclass(frozen=True, slots=True)
class Usage:
    rows: tuple[UsageRow, ...]
    as_of: datetime
    """The instant running grants were measured at."""


@dataclass(frozen=True, slots=True)
class Institution:
    id: str
    display_name: str
    generation: int


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    institution: str
    display_name: str
    device_caps: Mapping[str, int]
    """Most devices of each SKU the project may hold at once (read-only)."""
    devices_in_use: Mapping[str, int]
    """Devices of each SKU held now, reserved or committed (read-only)."""
    generation: int
