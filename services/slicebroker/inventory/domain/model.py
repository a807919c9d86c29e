"""The inventory's value types: SKUs, node descriptions, nodes with their devices, claims and the
outcomes the store reports. All frozen; the store builds them from Redis and the servicer from protos."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from slicebroker.core.errors import SlicebrokerError

# A node has at most this many devices (the largest NPU trays hold 16 cards; 64 leaves headroom).
MAX_DEVICES_PER_NODE = 64
# Host capacity bounds: far beyond any one server today (4,096 cores, 64 TiB), so a typo is caught.
MAX_CPU_MILLI = 4096 * 1000
MAX_MEMORY_MIB = 64 * 1024 * 1024


class DeviceKind(StrEnum):
    GPU = "gpu"
    NPU = "npu"


class SliceKind(StrEnum):
    """How a device is granted."""

    WHOLE = "whole"
    MIG = "mig"
    SHARE = "share"
    NPU_PARTITION = "npu_partition"


class Isolation(StrEnum):
    EXCLUSIVE = "exclusive"
    HARDWARE = "hardware"
    SOFT = "soft"


class NodeState(StrEnum):
    ACTIVE = "active"
    CORDONED = "cordoned"
    DRAINING = "draining"


# A share is counted in milli-units of one device's compute and memory.
SHARE_MILLI = 1000

# A node's fixed MIG layout: (profile, instances across the node), sorted by profile; () for none
# (devices are cut as requests come). Checked by mig.check_mig_layout.
MigLayout = tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Geometry:
    """The counters a device's hardware partitions consume (DRA's sharedCounters)."""

    compute_slices: int
    memory_slices: int


@dataclass(frozen=True, slots=True)
class Partition:
    profile: str
    kind: SliceKind
    compute: int
    memory: int
    memory_gib: int
    max: int
    legacy: bool = False


@dataclass(frozen=True, slots=True)
class ResourceName:
    """A Kubernetes name devices of a SKU appear under, and the provider versions it applies to."""

    name: str
    slice: SliceKind
    profile: str
    provider: str
    since: str = ""
    until: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True)
class UnitVersion:
    version: str
    unit: str
    basis: str


@dataclass(frozen=True, slots=True)
class Sku:
    """One accelerator model of the catalogue."""

    name: str
    vendor: str
    model: str
    memory_gib: int
    kind: DeviceKind
    bf16_dense_tflops: float = 0.0
    power_w: int = 0
    # Normalised units per device in the catalogue's current unit version.
    normalised_units: float = 0.0
    slice_kinds: tuple[tuple[SliceKind, Isolation], ...] = ((SliceKind.WHOLE, Isolation.EXCLUSIVE),)
    geometry: Geometry | None = None
    partitions: tuple[Partition, ...] = ()
    resource_names: tuple[ResourceName, ...] = ()

    def isolation(self, kind: SliceKind) -> Isolation | None:
        return next((iso for k, iso in self.slice_kinds if k == kind), None)

    def partition(self, profile: str) -> Partition | None:
        return next((p for p in self.partitions if p.profile == profile), None)


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """What registering a node says about it: where it is and what it carries."""

    id: str
    site: str
    rack: str
    sku: str
    kind: DeviceKind
    device_count: int
    hall: str = ""
    pod: str = ""
    # "" stands for the node itself (NVLink inside one chassis).
    nvlink_domain: str = ""
    leaf: str = ""
    spine: str = ""
    # Host capacity offered to grants (0: not declared; then no host request fits here).
    cpu_milli: int = 0
    memory_mib: int = 0
    mig_layout: MigLayout = ()

    def device_name(self, index: int) -> str:
        """The device's name on its node ("gpu3"); its global id is "<node id>/<name>"."""
        return f"{self.kind}{index}"


@dataclass(frozen=True, slots=True)
class SliceAllocation:
    grant_id: str
    kind: SliceKind
    profile: str
    compute: int
    memory: int


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    sku: str
    index: int
    healthy: bool
    # Grant id holding the device whole; "" when free or sliced.
    holder: str
    slices: tuple[SliceAllocation, ...] = ()

    @property
    def free(self) -> bool:
        return self.healthy and not self.holder and not self.slices


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    site: str
    rack: str
    sku: str
    devices: tuple[Device, ...]
    generation: int
    schedulable: bool
    hall: str = ""
    pod: str = ""
    nvlink_domain: str = ""
    leaf: str = ""
    spine: str = ""
    state: NodeState = NodeState.ACTIVE
    last_heartbeat_ms: int = 0
    cpu_milli: int = 0
    memory_mib: int = 0
    # Host CPU and memory held by grants now.
    cpu_milli_used: int = 0
    memory_mib_used: int = 0
    mig_layout: MigLayout = ()

    @property
    def spec(self) -> NodeSpec:
        kind = DeviceKind.NPU if self.devices and "/npu" in self.devices[0].id else DeviceKind.GPU
        return NodeSpec(
            self.id,
            self.site,
            self.rack,
            self.sku,
            kind,
            len(self.devices),
            self.hall,
            self.pod,
            self.nvlink_domain,
            self.leaf,
            self.spine,
            self.cpu_milli,
            self.memory_mib,
            self.mig_layout,
        )


@dataclass(frozen=True, slots=True)
class NodePage:
    nodes: tuple[Node, ...]
    # Opaque; "" on the last page.
    next_page_token: str


@dataclass(frozen=True, slots=True)
class SkuCapacity:
    sku: str
    nodes: int
    devices: int
    # Healthy devices no grant holds.
    free: int
    unhealthy: int


@dataclass(frozen=True, slots=True)
class RegisterOutcome:
    """What a registration did. `refused` is the index (in the request) of the first node whose
    shape change was refused because it has `refused_held` held devices; nothing was written then."""

    registered: int
    unchanged: int
    refused: int | None = None
    refused_held: int = 0


@dataclass(frozen=True, slots=True)
class LoadOutcome:
    nodes_registered: int
    nodes_unchanged: int
    devices: int


@dataclass(frozen=True, slots=True)
class SliceClaim:
    """A partition or share of one device. `compute` / `memory` are what it consumes of the
    device: partition counters (filled in from the catalogue) or milli-units for shares."""

    device_id: str
    # A SliceKind value once validated; the raw request string before.
    kind: str
    profile: str = ""
    compute: int = 0
    memory: int = 0
    # The device's capacity in the same units, filled in from the catalogue by the service.
    capacity_compute: int = 0
    capacity_memory: int = 0

    @property
    def device_name(self) -> str:
        return self.device_id.rpartition("/")[2]


@dataclass(frozen=True, slots=True)
class NodeClaim:
    node_id: str
    expected_generation: int
    # Global device ids ("<node_id>/gpu3"), every one on `node_id`.
    device_ids: tuple[str, ...]
    slices: tuple[SliceClaim, ...] = ()
    # The node's SKU the slices were sized for (filled in by the service when there are slices).
    sku: str = ""
    # Host CPU (milli-cores) and memory taken on the node with these devices and slices, in all.
    cpu_milli: int = 0
    memory_mib: int = 0

    @property
    def device_names(self) -> tuple[str, ...]:
        """The devices' names on the node ("gpu3"): how the store addresses them."""
        cut = len(self.node_id) + 1
        return tuple(device_id[cut:] for device_id in self.device_ids)


@dataclass(frozen=True, slots=True)
class DeviceClaim:
    """All-or-nothing: every listed device for `grant_id`, or none."""

    grant_id: str
    nodes: tuple[NodeClaim, ...]


@dataclass(frozen=True, slots=True)
class NodeGeneration:
    node_id: str
    generation: int


class ClaimFailure(StrEnum):
    """Why the store refused one claim (the Lua script's status strings)."""

    NODE_NOT_FOUND = "NODE_NOT_FOUND"
    NODE_NOT_SCHEDULABLE = "NODE_NOT_SCHEDULABLE"
    GENERATION_CONFLICT = "GENERATION_CONFLICT"
    DEVICE_NOT_FOUND = "DEVICE_NOT_FOUND"
    DEVICE_UNHEALTHY = "DEVICE_UNHEALTHY"
    DEVICE_TAKEN = "DEVICE_TAKEN"
    # The device is granted in another way (whole, or another slice kind), or the partition or
    # share does not fit next to what the device already carries.
    SLICE_CONFLICT = "SLICE_CONFLICT"
    # The node has not the host CPU or memory left that the claim takes there.
    HOST_RESOURCES_TAKEN = "HOST_RESOURCES_TAKEN"


@dataclass(frozen=True, slots=True)
class ClaimOutcome:
    """The store's answer for one claim. On failure, `node_index` / `device_index` point into the
    claim at the culprit (device_index is -1 for node-level failures). `generations` holds every
    existing node of the claim: new generations on success, current ones on failure."""

    grant_id: str
    failure: ClaimFailure | None
    node_index: int
    device_index: int
    generations: tuple[NodeGeneration, ...]


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """One claim's result as the domain reports it: `error` is None on success."""

    grant_id: str
    error: SlicebrokerError | None
    generations: tuple[NodeGeneration, ...]


@dataclass(frozen=True, slots=True)
class ReleaseOutcome:
    devices_released: int
    generations: tuple[NodeGeneration, ...]


@dataclass(frozen=True, slots=True)
class CapacityRow:
    group: str
    sku: str
    nodes: int = 0
    devices: int = 0
    free: int = 0
    held: int = 0
    sliced: int = 0
    unhealthy: int = 0
    cordoned: int = 0
    free_units: float = 0.0


@dataclass(frozen=True, slots=True)
class Subtree:
    """A part of the topology; empty fields do not filter."""

    site: str = ""
    hall: str = ""
    pod: str = ""
    rack: str = ""
    leaf: str = ""

    def contains(self, node: Node) -> bool:
        return all(
            not want or want == have
            for want, have in (
                (self.site, node.site),
                (self.hall, node.hall),
                (self.pod, node.pod),
                (self.rack, node.rack),
                (self.leaf, node.leaf),
            )
        )


class WatchEventType(StrEnum):
    UPSERT = "upsert"
    DELETED = "deleted"
    SNAPSHOT_BEGIN = "snapshot_begin"
    SNAPSHOT_END = "snapshot_end"


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: WatchEventType
    revision: int
    node_id: str = ""
    node: Node | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the change log: `node_id` changed (or was removed) at `revision`."""

    revision: int
    node_id: str


class LifecycleFailure(StrEnum):
    """Why the store refused a lifecycle write (the Lua script's status strings)."""

    NODE_NOT_FOUND = "NODE_NOT_FOUND"
    GENERATION_CONFLICT = "GENERATION_CONFLICT"
    DEVICE_NOT_FOUND = "DEVICE_NOT_FOUND"
    NODE_NOT_EMPTY = "NODE_NOT_EMPTY"


@dataclass(frozen=True, slots=True)
class LifecycleOutcome:
    failure: LifecycleFailure | None
    generation: int
    # For NODE_NOT_EMPTY and drains: grants holding devices on the node; for DEVICE_NOT_FOUND the device.
    detail: tuple[str, ...] = ()
