"""The SDK's result types: frozen, slotted dataclasses that callers hold instead of protobuf messages.

Times are timezone-aware UTC datetimes; collections are tuples (or read-only mappings), so a result
can be shared and cached without defensive copies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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

    @property
    def live(self) -> bool:
        """Whether the grant holds (or is about to hold) its slices; a queued one does not yet."""
        return self.state in (GrantState.PENDING, GrantState.ACTIVE)

    @property
    def waiting(self) -> bool:
        """Whether the request waits in the broker's queue (see `queue_position`)."""
        return self.state is GrantState.QUEUED


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
