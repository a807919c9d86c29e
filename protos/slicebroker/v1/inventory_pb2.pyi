from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WatchEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WATCH_EVENT_TYPE_UNSPECIFIED: _ClassVar[WatchEventType]
    WATCH_EVENT_TYPE_UPSERT: _ClassVar[WatchEventType]
    WATCH_EVENT_TYPE_DELETED: _ClassVar[WatchEventType]
    WATCH_EVENT_TYPE_SNAPSHOT_BEGIN: _ClassVar[WatchEventType]
    WATCH_EVENT_TYPE_SNAPSHOT_END: _ClassVar[WatchEventType]
    WATCH_EVENT_TYPE_BATCH: _ClassVar[WatchEventType]
WATCH_EVENT_TYPE_UNSPECIFIED: WatchEventType
WATCH_EVENT_TYPE_UPSERT: WatchEventType
WATCH_EVENT_TYPE_DELETED: WatchEventType
WATCH_EVENT_TYPE_SNAPSHOT_BEGIN: WatchEventType
WATCH_EVENT_TYPE_SNAPSHOT_END: WatchEventType
WATCH_EVENT_TYPE_BATCH: WatchEventType

class SliceKind(_message.Message):
    __slots__ = ("kind", "isolation")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    kind: str
    isolation: str
    def __init__(self, kind: _Optional[str] = ..., isolation: _Optional[str] = ...) -> None: ...

class PartitionGeometry(_message.Message):
    __slots__ = ("compute_slices", "memory_slices")
    COMPUTE_SLICES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_SLICES_FIELD_NUMBER: _ClassVar[int]
    compute_slices: int
    memory_slices: int
    def __init__(self, compute_slices: _Optional[int] = ..., memory_slices: _Optional[int] = ...) -> None: ...

class PartitionProfile(_message.Message):
    __slots__ = ("profile", "kind", "compute", "memory", "memory_gib", "max", "legacy")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    MEMORY_GIB_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    LEGACY_FIELD_NUMBER: _ClassVar[int]
    profile: str
    kind: str
    compute: int
    memory: int
    memory_gib: int
    max: int
    legacy: bool
    def __init__(self, profile: _Optional[str] = ..., kind: _Optional[str] = ..., compute: _Optional[int] = ..., memory: _Optional[int] = ..., memory_gib: _Optional[int] = ..., max: _Optional[int] = ..., legacy: _Optional[bool] = ...) -> None: ...

class ResourceName(_message.Message):
    __slots__ = ("name", "slice", "profile", "provider", "since", "until", "note")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SLICE_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    name: str
    slice: str
    profile: str
    provider: str
    since: str
    until: str
    note: str
    def __init__(self, name: _Optional[str] = ..., slice: _Optional[str] = ..., profile: _Optional[str] = ..., provider: _Optional[str] = ..., since: _Optional[str] = ..., until: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class NormalisedUnit(_message.Message):
    __slots__ = ("version", "unit", "basis")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    BASIS_FIELD_NUMBER: _ClassVar[int]
    version: str
    unit: str
    basis: str
    def __init__(self, version: _Optional[str] = ..., unit: _Optional[str] = ..., basis: _Optional[str] = ...) -> None: ...

class Sku(_message.Message):
    __slots__ = ("name", "vendor", "model", "memory_gib", "kind", "bf16_dense_tflops", "power_w", "normalised_units", "unit_version", "slice_kinds", "geometry", "partitions", "resource_names")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MEMORY_GIB_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BF16_DENSE_TFLOPS_FIELD_NUMBER: _ClassVar[int]
    POWER_W_FIELD_NUMBER: _ClassVar[int]
    NORMALISED_UNITS_FIELD_NUMBER: _ClassVar[int]
    UNIT_VERSION_FIELD_NUMBER: _ClassVar[int]
    SLICE_KINDS_FIELD_NUMBER: _ClassVar[int]
    GEOMETRY_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_NAMES_FIELD_NUMBER: _ClassVar[int]
    name: str
    vendor: str
    model: str
    memory_gib: int
    kind: str
    bf16_dense_tflops: float
    power_w: int
    normalised_units: float
    unit_version: str
    slice_kinds: _containers.RepeatedCompositeFieldContainer[SliceKind]
    geometry: PartitionGeometry
    partitions: _containers.RepeatedCompositeFieldContainer[PartitionProfile]
    resource_names: _containers.RepeatedCompositeFieldContainer[ResourceName]
    def __init__(self, name: _Optional[str] = ..., vendor: _Optional[str] = ..., model: _Optional[str] = ..., memory_gib: _Optional[int] = ..., kind: _Optional[str] = ..., bf16_dense_tflops: _Optional[float] = ..., power_w: _Optional[int] = ..., normalised_units: _Optional[float] = ..., unit_version: _Optional[str] = ..., slice_kinds: _Optional[_Iterable[_Union[SliceKind, _Mapping]]] = ..., geometry: _Optional[_Union[PartitionGeometry, _Mapping]] = ..., partitions: _Optional[_Iterable[_Union[PartitionProfile, _Mapping]]] = ..., resource_names: _Optional[_Iterable[_Union[ResourceName, _Mapping]]] = ...) -> None: ...

class ListSkusRequest(_message.Message):
    __slots__ = ("names",)
    NAMES_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ...) -> None: ...

class ListSkusResponse(_message.Message):
    __slots__ = ("skus", "unit")
    SKUS_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    skus: _containers.RepeatedCompositeFieldContainer[Sku]
    unit: NormalisedUnit
    def __init__(self, skus: _Optional[_Iterable[_Union[Sku, _Mapping]]] = ..., unit: _Optional[_Union[NormalisedUnit, _Mapping]] = ...) -> None: ...

class Device(_message.Message):
    __slots__ = ("id", "sku", "index", "healthy", "holder", "slices")
    ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    SLICES_FIELD_NUMBER: _ClassVar[int]
    id: str
    sku: str
    index: int
    healthy: bool
    holder: str
    slices: _containers.RepeatedCompositeFieldContainer[SliceAllocation]
    def __init__(self, id: _Optional[str] = ..., sku: _Optional[str] = ..., index: _Optional[int] = ..., healthy: _Optional[bool] = ..., holder: _Optional[str] = ..., slices: _Optional[_Iterable[_Union[SliceAllocation, _Mapping]]] = ...) -> None: ...

class SliceAllocation(_message.Message):
    __slots__ = ("grant_id", "kind", "profile", "compute", "memory")
    GRANT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    grant_id: str
    kind: str
    profile: str
    compute: int
    memory: int
    def __init__(self, grant_id: _Optional[str] = ..., kind: _Optional[str] = ..., profile: _Optional[str] = ..., compute: _Optional[int] = ..., memory: _Optional[int] = ...) -> None: ...

class Node(_message.Message):
    __slots__ = ("id", "site", "rack", "devices", "generation", "schedulable", "hall", "pod", "nvlink_domain", "leaf", "spine", "state", "last_heartbeat_ms", "sku", "cpu_milli", "memory_mib", "cpu_milli_used", "memory_mib_used", "mig_layout")
    class MigLayoutEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    RACK_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    SCHEDULABLE_FIELD_NUMBER: _ClassVar[int]
    HALL_FIELD_NUMBER: _ClassVar[int]
    POD_FIELD_NUMBER: _ClassVar[int]
    NVLINK_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    LEAF_FIELD_NUMBER: _ClassVar[int]
    SPINE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_MS_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    CPU_MILLI_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    CPU_MILLI_USED_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_USED_FIELD_NUMBER: _ClassVar[int]
    MIG_LAYOUT_FIELD_NUMBER: _ClassVar[int]
    id: str
    site: str
    rack: str
    devices: _containers.RepeatedCompositeFieldContainer[Device]
    generation: int
    schedulable: bool
    hall: str
    pod: str
    nvlink_domain: str
    leaf: str
    spine: str
    state: str
    last_heartbeat_ms: int
    sku: str
    cpu_milli: int
    memory_mib: int
    cpu_milli_used: int
    memory_mib_used: int
    mig_layout: _containers.ScalarMap[str, int]
    def __init__(self, id: _Optional[str] = ..., site: _Optional[str] = ..., rack: _Optional[str] = ..., devices: _Optional[_Iterable[_Union[Device, _Mapping]]] = ..., generation: _Optional[int] = ..., schedulable: _Optional[bool] = ..., hall: _Optional[str] = ..., pod: _Optional[str] = ..., nvlink_domain: _Optional[str] = ..., leaf: _Optional[str] = ..., spine: _Optional[str] = ..., state: _Optional[str] = ..., last_heartbeat_ms: _Optional[int] = ..., sku: _Optional[str] = ..., cpu_milli: _Optional[int] = ..., memory_mib: _Optional[int] = ..., cpu_milli_used: _Optional[int] = ..., memory_mib_used: _Optional[int] = ..., mig_layout: _Optional[_Mapping[str, int]] = ...) -> None: ...

class LoadFacilityRequest(_message.Message):
    __slots__ = ("yaml",)
    YAML_FIELD_NUMBER: _ClassVar[int]
    yaml: str
    def __init__(self, yaml: _Optional[str] = ...) -> None: ...

class LoadFacilityResponse(_message.Message):
    __slots__ = ("nodes_registered", "nodes_unchanged", "devices")
    NODES_REGISTERED_FIELD_NUMBER: _ClassVar[int]
    NODES_UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    nodes_registered: int
    nodes_unchanged: int
    devices: int
    def __init__(self, nodes_registered: _Optional[int] = ..., nodes_unchanged: _Optional[int] = ..., devices: _Optional[int] = ...) -> None: ...

class RegisterNodeRequest(_message.Message):
    __slots__ = ("id", "site", "rack", "sku", "device_count", "hall", "pod", "nvlink_domain", "leaf", "spine", "cpu_milli", "memory_mib", "mig_layout")
    class MigLayoutEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    RACK_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    DEVICE_COUNT_FIELD_NUMBER: _ClassVar[int]
    HALL_FIELD_NUMBER: _ClassVar[int]
    POD_FIELD_NUMBER: _ClassVar[int]
    NVLINK_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    LEAF_FIELD_NUMBER: _ClassVar[int]
    SPINE_FIELD_NUMBER: _ClassVar[int]
    CPU_MILLI_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    MIG_LAYOUT_FIELD_NUMBER: _ClassVar[int]
    id: str
    site: str
    rack: str
    sku: str
    device_count: int
    hall: str
    pod: str
    nvlink_domain: str
    leaf: str
    spine: str
    cpu_milli: int
    memory_mib: int
    mig_layout: _containers.ScalarMap[str, int]
    def __init__(self, id: _Optional[str] = ..., site: _Optional[str] = ..., rack: _Optional[str] = ..., sku: _Optional[str] = ..., device_count: _Optional[int] = ..., hall: _Optional[str] = ..., pod: _Optional[str] = ..., nvlink_domain: _Optional[str] = ..., leaf: _Optional[str] = ..., spine: _Optional[str] = ..., cpu_milli: _Optional[int] = ..., memory_mib: _Optional[int] = ..., mig_layout: _Optional[_Mapping[str, int]] = ...) -> None: ...

class GetNodeRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListNodesRequest(_message.Message):
    __slots__ = ("sku", "page_size", "page_token")
    SKU_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sku: str
    page_size: int
    page_token: str
    def __init__(self, sku: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListNodesResponse(_message.Message):
    __slots__ = ("nodes", "next_page_token")
    NODES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[Node]
    next_page_token: str
    def __init__(self, nodes: _Optional[_Iterable[_Union[Node, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetCapacityRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SkuCapacity(_message.Message):
    __slots__ = ("sku", "nodes", "devices", "free", "unhealthy")
    SKU_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    FREE_FIELD_NUMBER: _ClassVar[int]
    UNHEALTHY_FIELD_NUMBER: _ClassVar[int]
    sku: str
    nodes: int
    devices: int
    free: int
    unhealthy: int
    def __init__(self, sku: _Optional[str] = ..., nodes: _Optional[int] = ..., devices: _Optional[int] = ..., free: _Optional[int] = ..., unhealthy: _Optional[int] = ...) -> None: ...

class GetCapacityResponse(_message.Message):
    __slots__ = ("skus",)
    SKUS_FIELD_NUMBER: _ClassVar[int]
    skus: _containers.RepeatedCompositeFieldContainer[SkuCapacity]
    def __init__(self, skus: _Optional[_Iterable[_Union[SkuCapacity, _Mapping]]] = ...) -> None: ...

class NodeClaim(_message.Message):
    __slots__ = ("node_id", "expected_generation", "device_ids", "slices", "cpu_milli", "memory_mib")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    DEVICE_IDS_FIELD_NUMBER: _ClassVar[int]
    SLICES_FIELD_NUMBER: _ClassVar[int]
    CPU_MILLI_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    expected_generation: int
    device_ids: _containers.RepeatedScalarFieldContainer[str]
    slices: _containers.RepeatedCompositeFieldContainer[SliceClaim]
    cpu_milli: int
    memory_mib: int
    def __init__(self, node_id: _Optional[str] = ..., expected_generation: _Optional[int] = ..., device_ids: _Optional[_Iterable[str]] = ..., slices: _Optional[_Iterable[_Union[SliceClaim, _Mapping]]] = ..., cpu_milli: _Optional[int] = ..., memory_mib: _Optional[int] = ...) -> None: ...

class SliceClaim(_message.Message):
    __slots__ = ("device_id", "kind", "profile", "compute_milli", "memory_milli")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_MILLI_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MILLI_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    kind: str
    profile: str
    compute_milli: int
    memory_milli: int
    def __init__(self, device_id: _Optional[str] = ..., kind: _Optional[str] = ..., profile: _Optional[str] = ..., compute_milli: _Optional[int] = ..., memory_milli: _Optional[int] = ...) -> None: ...

class DeviceClaim(_message.Message):
    __slots__ = ("grant_id", "nodes")
    GRANT_ID_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    grant_id: str
    nodes: _containers.RepeatedCompositeFieldContainer[NodeClaim]
    def __init__(self, grant_id: _Optional[str] = ..., nodes: _Optional[_Iterable[_Union[NodeClaim, _Mapping]]] = ...) -> None: ...

class ClaimRequest(_message.Message):
    __slots__ = ("claims",)
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    claims: _containers.RepeatedCompositeFieldContainer[DeviceClaim]
    def __init__(self, claims: _Optional[_Iterable[_Union[DeviceClaim, _Mapping]]] = ...) -> None: ...

class NodeGeneration(_message.Message):
    __slots__ = ("node_id", "generation")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    generation: int
    def __init__(self, node_id: _Optional[str] = ..., generation: _Optional[int] = ...) -> None: ...

class ClaimResult(_message.Message):
    __slots__ = ("grant_id", "status", "generations")
    GRANT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    GENERATIONS_FIELD_NUMBER: _ClassVar[int]
    grant_id: str
    status: _status_pb2.Status
    generations: _containers.RepeatedCompositeFieldContainer[NodeGeneration]
    def __init__(self, grant_id: _Optional[str] = ..., status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., generations: _Optional[_Iterable[_Union[NodeGeneration, _Mapping]]] = ...) -> None: ...

class ClaimResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ClaimResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ClaimResult, _Mapping]]] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("grant_ids",)
    GRANT_IDS_FIELD_NUMBER: _ClassVar[int]
    grant_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, grant_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ReleaseResponse(_message.Message):
    __slots__ = ("devices_released", "generations")
    DEVICES_RELEASED_FIELD_NUMBER: _ClassVar[int]
    GENERATIONS_FIELD_NUMBER: _ClassVar[int]
    devices_released: int
    generations: _containers.RepeatedCompositeFieldContainer[NodeGeneration]
    def __init__(self, devices_released: _Optional[int] = ..., generations: _Optional[_Iterable[_Union[NodeGeneration, _Mapping]]] = ...) -> None: ...

class ListHoldersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListHoldersResponse(_message.Message):
    __slots__ = ("grant_ids",)
    GRANT_IDS_FIELD_NUMBER: _ClassVar[int]
    grant_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, grant_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ExportFacilityRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ExportFacilityResponse(_message.Message):
    __slots__ = ("yaml", "nodes", "devices")
    YAML_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    yaml: str
    nodes: int
    devices: int
    def __init__(self, yaml: _Optional[str] = ..., nodes: _Optional[int] = ..., devices: _Optional[int] = ...) -> None: ...

class QueryCapacityRequest(_message.Message):
    __slots__ = ("site", "hall", "pod", "rack", "leaf", "sku", "group_by")
    SITE_FIELD_NUMBER: _ClassVar[int]
    HALL_FIELD_NUMBER: _ClassVar[int]
    POD_FIELD_NUMBER: _ClassVar[int]
    RACK_FIELD_NUMBER: _ClassVar[int]
    LEAF_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    site: str
    hall: str
    pod: str
    rack: str
    leaf: str
    sku: str
    group_by: str
    def __init__(self, site: _Optional[str] = ..., hall: _Optional[str] = ..., pod: _Optional[str] = ..., rack: _Optional[str] = ..., leaf: _Optional[str] = ..., sku: _Optional[str] = ..., group_by: _Optional[str] = ...) -> None: ...

class CapacityRow(_message.Message):
    __slots__ = ("group", "sku", "nodes", "devices", "free", "held", "sliced", "unhealthy", "cordoned", "free_units")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    FREE_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    SLICED_FIELD_NUMBER: _ClassVar[int]
    UNHEALTHY_FIELD_NUMBER: _ClassVar[int]
    CORDONED_FIELD_NUMBER: _ClassVar[int]
    FREE_UNITS_FIELD_NUMBER: _ClassVar[int]
    group: str
    sku: str
    nodes: int
    devices: int
    free: int
    held: int
    sliced: int
    unhealthy: int
    cordoned: int
    free_units: float
    def __init__(self, group: _Optional[str] = ..., sku: _Optional[str] = ..., nodes: _Optional[int] = ..., devices: _Optional[int] = ..., free: _Optional[int] = ..., held: _Optional[int] = ..., sliced: _Optional[int] = ..., unhealthy: _Optional[int] = ..., cordoned: _Optional[int] = ..., free_units: _Optional[float] = ...) -> None: ...

class QueryCapacityResponse(_message.Message):
    __slots__ = ("rows",)
    ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[CapacityRow]
    def __init__(self, rows: _Optional[_Iterable[_Union[CapacityRow, _Mapping]]] = ...) -> None: ...

class ListLeafNeighboursRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class ListLeafNeighboursResponse(_message.Message):
    __slots__ = ("leaf", "node_ids")
    LEAF_FIELD_NUMBER: _ClassVar[int]
    NODE_IDS_FIELD_NUMBER: _ClassVar[int]
    leaf: str
    node_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, leaf: _Optional[str] = ..., node_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeviceHealth(_message.Message):
    __slots__ = ("device", "healthy")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    device: str
    healthy: bool
    def __init__(self, device: _Optional[str] = ..., healthy: _Optional[bool] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("node_id", "devices")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    devices: _containers.RepeatedCompositeFieldContainer[DeviceHealth]
    def __init__(self, node_id: _Optional[str] = ..., devices: _Optional[_Iterable[_Union[DeviceHealth, _Mapping]]] = ...) -> None: ...

class SetNodeStateRequest(_message.Message):
    __slots__ = ("node_id", "expected_generation", "state")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    expected_generation: int
    state: str
    def __init__(self, node_id: _Optional[str] = ..., expected_generation: _Optional[int] = ..., state: _Optional[str] = ...) -> None: ...

class SetNodeStateResponse(_message.Message):
    __slots__ = ("node", "grant_ids")
    NODE_FIELD_NUMBER: _ClassVar[int]
    GRANT_IDS_FIELD_NUMBER: _ClassVar[int]
    node: Node
    grant_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, node: _Optional[_Union[Node, _Mapping]] = ..., grant_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SetDeviceHealthRequest(_message.Message):
    __slots__ = ("node_id", "expected_generation", "devices")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    expected_generation: int
    devices: _containers.RepeatedCompositeFieldContainer[DeviceHealth]
    def __init__(self, node_id: _Optional[str] = ..., expected_generation: _Optional[int] = ..., devices: _Optional[_Iterable[_Union[DeviceHealth, _Mapping]]] = ...) -> None: ...

class RemoveNodeRequest(_message.Message):
    __slots__ = ("node_id", "expected_generation")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    expected_generation: int
    def __init__(self, node_id: _Optional[str] = ..., expected_generation: _Optional[int] = ...) -> None: ...

class RemoveNodeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("from_revision", "max_batch")
    FROM_REVISION_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    from_revision: int
    max_batch: int
    def __init__(self, from_revision: _Optional[int] = ..., max_batch: _Optional[int] = ...) -> None: ...

class WatchEvent(_message.Message):
    __slots__ = ("type", "revision", "node", "node_id", "events")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    type: WatchEventType
    revision: int
    node: Node
    node_id: str
    events: _containers.RepeatedCompositeFieldContainer[WatchEvent]
    def __init__(self, type: _Optional[_Union[WatchEventType, str]] = ..., revision: _Optional[int] = ..., node: _Optional[_Union[Node, _Mapping]] = ..., node_id: _Optional[str] = ..., events: _Optional[_Iterable[_Union[WatchEvent, _Mapping]]] = ...) -> None: ...
