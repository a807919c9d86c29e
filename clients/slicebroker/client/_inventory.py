"""The SDK's facility side: capacity under any part of the topology (per SKU and per hall, rack,
leaf ...), facility import and export, and what the node agent needs (register, heartbeat).
Models and Ops here; `Client` and `AsyncClient` expose them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from slicebroker.client._ops import Op, Service, _rpc
from slicebroker.v1 import inventory_pb2

QUERY_CAPACITY = _rpc(Service.INVENTORY, "QueryCapacity", inventory_pb2.QueryCapacityResponse)
EXPORT_FACILITY = _rpc(Service.INVENTORY, "ExportFacility", inventory_pb2.ExportFacilityResponse)
LOAD_FACILITY = _rpc(Service.INVENTORY, "LoadFacility", inventory_pb2.LoadFacilityResponse)
REGISTER_NODE = _rpc(Service.INVENTORY, "RegisterNode", inventory_pb2.Node)
HEARTBEAT = _rpc(Service.INVENTORY, "Heartbeat", inventory_pb2.Node)
GET_NODE = _rpc(Service.INVENTORY, "GetNode", inventory_pb2.Node)
SET_NODE_STATE = _rpc(Service.INVENTORY, "SetNodeState", inventory_pb2.SetNodeStateResponse)

GROUPS = ("", "site", "hall", "pod", "rack", "leaf")


@dataclass(frozen=True, slots=True)
class CapacityRow:
    """Devices of one SKU in one group (a hall, a rack, a leaf ...; "" when not grouped)."""

    group: str
    sku: str
    nodes: int
    devices: int
    free: int
    """Healthy, schedulable, holding nothing."""
    held: int
    """Held whole by grants."""
    sliced: int
    """Carrying MIG / NPU partitions or shares."""
    unhealthy: int
    cordoned: int
    free_units: float
    """Free devices in normalised units (H100-equivalents)."""

    @property
    def utilization(self) -> float:
        """Held and sliced devices over the devices that could be used (healthy ones)."""
        usable = self.devices - self.unhealthy
        return (self.held + self.sliced) / usable if usable > 0 else 0.0


@dataclass(frozen=True, slots=True)
class FacilityExport:
    yaml: str
    nodes: int
    devices: int


@dataclass(frozen=True, slots=True)
class FacilityLoad:
    nodes_registered: int
    nodes_unchanged: int
    devices: int


@dataclass(frozen=True, slots=True)
class NodeState:
    """A node as the inventory has it: its generation is what a conditional change names."""

    id: str
    sku: str
    devices: int
    unhealthy: int
    generation: int
    state: str
    last_heartbeat_ms: int
    mig_layout: dict[str, int] = field(default_factory=dict)
    """The MIG instances the node's GPUs are cut into ahead of time (profile -> instances across
    the node); empty when devices are cut as requests come."""


def _row(msg: inventory_pb2.CapacityRow) -> CapacityRow:
    return CapacityRow(
        group=msg.group,
        sku=msg.sku,
        nodes=msg.nodes,
        devices=msg.devices,
        free=msg.free,
        held=msg.held,
        sliced=msg.sliced,
        unhealthy=msg.unhealthy,
        cordoned=msg.cordoned,
        free_units=msg.free_units,
    )


def _node(msg: inventory_pb2.Node) -> NodeState:
    return NodeState(
        id=msg.id,
        sku=msg.sku,
        devices=len(msg.devices),
        unhealthy=sum(1 for d in msg.devices if not d.healthy),
        generation=msg.generation,
        state=msg.state,
        last_heartbeat_ms=msg.last_heartbeat_ms,
        mig_layout=dict(msg.mig_layout),
    )


def query_capacity(
    group_by: str = "",
    *,
    sku: str = "",
    site: str = "",
    hall: str = "",
    pod: str = "",
    rack: str = "",
    leaf: str = "",
) -> Op[list[CapacityRow]]:
    request = inventory_pb2.QueryCapacityRequest(
        site=site, hall=hall, pod=pod, rack=rack, leaf=leaf, sku=sku, group_by=group_by
    )
    return Op(QUERY_CAPACITY, request, lambda msg: [_row(r) for r in msg.rows])


def export_facility() -> Op[FacilityExport]:
    return Op(
        EXPORT_FACILITY,
        inventory_pb2.ExportFacilityRequest(),
        lambda msg: FacilityExport(msg.yaml, msg.nodes, msg.devices),
    )


def load_facility(yaml: str) -> Op[FacilityLoad]:
    return Op(
        LOAD_FACILITY,
        inventory_pb2.LoadFacilityRequest(yaml=yaml),
        lambda msg: FacilityLoad(msg.nodes_registered, msg.nodes_unchanged, msg.devices),
    )


@dataclass(frozen=True, slots=True)
class NodeTopology:
    """Where a node sits: the facility tree (site → hall → pod → rack) and the network tiers
    (NVLink domain, InfiniBand leaf and spine). Empty fields are left to inventory's defaults."""

    site: str = ""
    rack: str = ""
    hall: str = ""
    pod: str = ""
    leaf: str = ""
    spine: str = ""
    nvlink_domain: str = ""


@dataclass(frozen=True, slots=True)
class NodeStateChange:
    """A node after a cordon, drain or uncordon, and the grants still holding devices on it."""

    node: NodeState
    grant_ids: tuple[str, ...]


def register_node(
    node_id: str,
    sku: str,
    device_count: int,
    topology: NodeTopology,
    *,
    cpu_milli: int = 0,
    memory_mib: int = 0,
    mig_layout: Mapping[str, int] | None = None,
) -> Op[NodeState]:
    request = inventory_pb2.RegisterNodeRequest(
        id=node_id,
        sku=sku,
        device_count=device_count,
        site=topology.site,
        rack=topology.rack,
        hall=topology.hall,
        pod=topology.pod,
        leaf=topology.leaf,
        spine=topology.spine,
        nvlink_domain=topology.nvlink_domain,
        cpu_milli=cpu_milli,
        memory_mib=memory_mib,
        mig_layout=dict(mig_layout or {}),
    )
    return Op(REGISTER_NODE, request, _node)


def get_node(node_id: str) -> Op[NodeState]:
    return Op(GET_NODE, inventory_pb2.GetNodeRequest(id=node_id), _node)


def set_node_state(node_id: str, state: str, expected_generation: int) -> Op[NodeStateChange]:
    request = inventory_pb2.SetNodeStateRequest(node_id=node_id, state=state, expected_generation=expected_generation)
    return Op(SET_NODE_STATE, request, lambda msg: NodeStateChange(_node(msg.node), tuple(msg.grant_ids)))


def heartbeat(node_id: str, health: Sequence[tuple[str, bool]] = ()) -> Op[NodeState]:
    request = inventory_pb2.HeartbeatRequest(
        node_id=node_id, devices=[inventory_pb2.DeviceHealth(device=d, healthy=h) for d, h in health]
    )
    return Op(HEARTBEAT, request, _node)
