"""The inventory's value types: SKUs, node descriptions, nodes with their devices, claims and the
outcomes the store reports. All frozen; the store builds them from Redis and the servicer from protos."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from slicebroker.core.errors import SlicebrokerError

# A node has at most this many devices (the largest NPU trays hold 16 cards; 64 leaves headroom).
MAX_DEVICES_PER_NODE = 64


class DeviceKind(StrEnum):
    GPU = "gpu"
    NPU = "npu"


@dataclass(frozen=True, slots=True)
class Sku:
    """One accelerator model of the catalogue."""

    name: str
    vendor: str
    model: str
    memory_gib: int
    kind: DeviceKind


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """What registering a node says about it: where it is and what it carries."""

    id: str
    site: str
    rack: str
    sku: str
    kind: DeviceKind
    device_count: int

    def device_name(self, index: int) -> str:
        """The device's name on its node ("gpu3"); its global id is "<node id>/<name>"."""
        return f"{self.kind}{index}"


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    sku: str
    index: int
    healthy: bool
    # Grant id holding the device; "" when free.
    holder: str


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    site: str
    rack: str
    sku: str
    devices: tuple[Device, ...]
    generation: int
    schedulable: bool


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
class NodeClaim:
    node_id: str
    expected_generation: int
    # Global device ids ("<node_id>/gpu3"), every one on `node_id`.
    device_ids: tuple[str, ...]

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
