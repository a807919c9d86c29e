from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Sku(_message.Message):
    __slots__ = ("name", "vendor", "model", "memory_gib", "kind")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MEMORY_GIB_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    name: str
    vendor: str
    model: str
    memory_gib: int
    kind: str
    def __init__(self, name: _Optional[str] = ..., vendor: _Optional[str] = ..., model: _Optional[str] = ..., memory_gib: _Optional[int] = ..., kind: _Optional[str] = ...) -> None: ...

class ListSkusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSkusResponse(_message.Message):
    __slots__ = ("skus",)
    SKUS_FIELD_NUMBER: _ClassVar[int]
    skus: _containers.RepeatedCompositeFieldContainer[Sku]
    def __init__(self, skus: _Optional[_Iterable[_Union[Sku, _Mapping]]] = ...) -> None: ...

class Device(_message.Message):
    __slots__ = ("id", "sku", "index", "healthy", "holder")
    ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    id: str
    sku: str
    index: int
    healthy: bool
    holder: str
    def __init__(self, id: _Optional[str] = ..., sku: _Optional[str] = ..., index: _Optional[int] = ..., healthy: _Optional[bool] = ..., holder: _Optional[str] = ...) -> None: ...

class Node(_message.Message):
    __slots__ = ("id", "site", "rack", "devices", "generation", "schedulable")
    ID_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    RACK_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    SCHEDULABLE_FIELD_NUMBER: _ClassVar[int]
    id: str
    site: str
    rack: str
    devices: _containers.RepeatedCompositeFieldContainer[Device]
    generation: int
    schedulable: bool
    def __init__(self, id: _Optional[str] = ..., site: _Optional[str] = ..., rack: _Optional[str] = ..., devices: _Optional[_Iterable[_Union[Device, _Mapping]]] = ..., generation: _Optional[int] = ..., schedulable: _Optional[bool] = ...) -> None: ...

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
    __slots__ = ("id", "site", "rack", "sku", "device_count")
    ID_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    RACK_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    DEVICE_COUNT_FIELD_NUMBER: _ClassVar[int]
    id: str
    site: str
    rack: str
    sku: str
    device_count: int
    def __init__(self, id: _Optional[str] = ..., site: _Optional[str] = ..., rack: _Optional[str] = ..., sku: _Optional[str] = ..., device_count: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("node_id", "expected_generation", "device_ids")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    DEVICE_IDS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    expected_generation: int
    device_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, node_id: _Optional[str] = ..., expected_generation: _Optional[int] = ..., device_ids: _Optional[_Iterable[str]] = ...) -> None: ...

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
