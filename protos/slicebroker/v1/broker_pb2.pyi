import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from slicebroker.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GrantState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GRANT_STATE_UNSPECIFIED: _ClassVar[GrantState]
    GRANT_STATE_PENDING: _ClassVar[GrantState]
    GRANT_STATE_ACTIVE: _ClassVar[GrantState]
    GRANT_STATE_ENDED: _ClassVar[GrantState]
    GRANT_STATE_FAILED: _ClassVar[GrantState]
    GRANT_STATE_QUEUED: _ClassVar[GrantState]

class TopologyConstraint(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOPOLOGY_CONSTRAINT_UNSPECIFIED: _ClassVar[TopologyConstraint]
    TOPOLOGY_CONSTRAINT_SAME_NODE: _ClassVar[TopologyConstraint]
    TOPOLOGY_CONSTRAINT_SAME_NVLINK_DOMAIN: _ClassVar[TopologyConstraint]
    TOPOLOGY_CONSTRAINT_SAME_LEAF: _ClassVar[TopologyConstraint]
    TOPOLOGY_CONSTRAINT_SPREAD: _ClassVar[TopologyConstraint]

class GrantChangeType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GRANT_CHANGE_TYPE_UNSPECIFIED: _ClassVar[GrantChangeType]
    GRANT_CHANGE_TYPE_QUEUED: _ClassVar[GrantChangeType]
    GRANT_CHANGE_TYPE_GRANTED: _ClassVar[GrantChangeType]
    GRANT_CHANGE_TYPE_RENEWED: _ClassVar[GrantChangeType]
    GRANT_CHANGE_TYPE_PREEMPTION_NOTICE: _ClassVar[GrantChangeType]
    GRANT_CHANGE_TYPE_PREEMPTED: _ClassVar[GrantChangeType]
    GRANT_CHANGE_TYPE_EXPIRED: _ClassVar[GrantChangeType]
    GRANT_CHANGE_TYPE_RELEASED: _ClassVar[GrantChangeType]
    GRANT_CHANGE_TYPE_FAILED: _ClassVar[GrantChangeType]
    GRANT_CHANGE_TYPE_SNAPSHOT_BEGIN: _ClassVar[GrantChangeType]
    GRANT_CHANGE_TYPE_SNAPSHOT: _ClassVar[GrantChangeType]
    GRANT_CHANGE_TYPE_SNAPSHOT_END: _ClassVar[GrantChangeType]
GRANT_STATE_UNSPECIFIED: GrantState
GRANT_STATE_PENDING: GrantState
GRANT_STATE_ACTIVE: GrantState
GRANT_STATE_ENDED: GrantState
GRANT_STATE_FAILED: GrantState
GRANT_STATE_QUEUED: GrantState
TOPOLOGY_CONSTRAINT_UNSPECIFIED: TopologyConstraint
TOPOLOGY_CONSTRAINT_SAME_NODE: TopologyConstraint
TOPOLOGY_CONSTRAINT_SAME_NVLINK_DOMAIN: TopologyConstraint
TOPOLOGY_CONSTRAINT_SAME_LEAF: TopologyConstraint
TOPOLOGY_CONSTRAINT_SPREAD: TopologyConstraint
GRANT_CHANGE_TYPE_UNSPECIFIED: GrantChangeType
GRANT_CHANGE_TYPE_QUEUED: GrantChangeType
GRANT_CHANGE_TYPE_GRANTED: GrantChangeType
GRANT_CHANGE_TYPE_RENEWED: GrantChangeType
GRANT_CHANGE_TYPE_PREEMPTION_NOTICE: GrantChangeType
GRANT_CHANGE_TYPE_PREEMPTED: GrantChangeType
GRANT_CHANGE_TYPE_EXPIRED: GrantChangeType
GRANT_CHANGE_TYPE_RELEASED: GrantChangeType
GRANT_CHANGE_TYPE_FAILED: GrantChangeType
GRANT_CHANGE_TYPE_SNAPSHOT_BEGIN: GrantChangeType
GRANT_CHANGE_TYPE_SNAPSHOT: GrantChangeType
GRANT_CHANGE_TYPE_SNAPSHOT_END: GrantChangeType

class Grant(_message.Message):
    __slots__ = ("id", "project", "institution", "sku", "count", "slices", "state", "created_at", "expires_at", "ended_at", "end_reason", "idempotency_key", "topology", "priority_class", "preemptible", "warnings", "queue_position", "waiting_reason", "shape", "start_after", "preemption_deadline", "preemption_reason", "host_per_slice", "user")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SLICES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    END_REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    TOPOLOGY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_CLASS_FIELD_NUMBER: _ClassVar[int]
    PREEMPTIBLE_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    WAITING_REASON_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    START_AFTER_FIELD_NUMBER: _ClassVar[int]
    PREEMPTION_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    PREEMPTION_REASON_FIELD_NUMBER: _ClassVar[int]
    HOST_PER_SLICE_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    id: str
    project: str
    institution: str
    sku: str
    count: int
    slices: _containers.RepeatedCompositeFieldContainer[_common_pb2.Slice]
    state: GrantState
    created_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    end_reason: str
    idempotency_key: str
    topology: Topology
    priority_class: str
    preemptible: bool
    warnings: _containers.RepeatedScalarFieldContainer[str]
    queue_position: int
    waiting_reason: str
    shape: SliceShape
    start_after: _timestamp_pb2.Timestamp
    preemption_deadline: _timestamp_pb2.Timestamp
    preemption_reason: str
    host_per_slice: HostResources
    user: str
    def __init__(self, id: _Optional[str] = ..., project: _Optional[str] = ..., institution: _Optional[str] = ..., sku: _Optional[str] = ..., count: _Optional[int] = ..., slices: _Optional[_Iterable[_Union[_common_pb2.Slice, _Mapping]]] = ..., state: _Optional[_Union[GrantState, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_reason: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., topology: _Optional[_Union[Topology, _Mapping]] = ..., priority_class: _Optional[str] = ..., preemptible: _Optional[bool] = ..., warnings: _Optional[_Iterable[str]] = ..., queue_position: _Optional[int] = ..., waiting_reason: _Optional[str] = ..., shape: _Optional[_Union[SliceShape, _Mapping]] = ..., start_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., preemption_deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., preemption_reason: _Optional[str] = ..., host_per_slice: _Optional[_Union[HostResources, _Mapping]] = ..., user: _Optional[str] = ...) -> None: ...

class HostResources(_message.Message):
    __slots__ = ("cpu_milli", "memory_mib")
    CPU_MILLI_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    cpu_milli: int
    memory_mib: int
    def __init__(self, cpu_milli: _Optional[int] = ..., memory_mib: _Optional[int] = ...) -> None: ...

class Topology(_message.Message):
    __slots__ = ("constraint", "required", "devices_per_member")
    CONSTRAINT_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    DEVICES_PER_MEMBER_FIELD_NUMBER: _ClassVar[int]
    constraint: TopologyConstraint
    required: bool
    devices_per_member: int
    def __init__(self, constraint: _Optional[_Union[TopologyConstraint, str]] = ..., required: _Optional[bool] = ..., devices_per_member: _Optional[int] = ...) -> None: ...

class Alternative(_message.Message):
    __slots__ = ("sku", "count")
    SKU_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    sku: str
    count: int
    def __init__(self, sku: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class RequestGrantRequest(_message.Message):
    __slots__ = ("project", "sku", "count", "lease", "idempotency_key", "topology", "alternatives", "priority_class", "queue", "shape", "start_after", "host_per_slice")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    TOPOLOGY_FIELD_NUMBER: _ClassVar[int]
    ALTERNATIVES_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_CLASS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    START_AFTER_FIELD_NUMBER: _ClassVar[int]
    HOST_PER_SLICE_FIELD_NUMBER: _ClassVar[int]
    project: str
    sku: str
    count: int
    lease: _duration_pb2.Duration
    idempotency_key: str
    topology: Topology
    alternatives: _containers.RepeatedCompositeFieldContainer[Alternative]
    priority_class: str
    queue: bool
    shape: SliceShape
    start_after: _timestamp_pb2.Timestamp
    host_per_slice: HostResources
    def __init__(self, project: _Optional[str] = ..., sku: _Optional[str] = ..., count: _Optional[int] = ..., lease: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., topology: _Optional[_Union[Topology, _Mapping]] = ..., alternatives: _Optional[_Iterable[_Union[Alternative, _Mapping]]] = ..., priority_class: _Optional[str] = ..., queue: _Optional[bool] = ..., shape: _Optional[_Union[SliceShape, _Mapping]] = ..., start_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., host_per_slice: _Optional[_Union[HostResources, _Mapping]] = ...) -> None: ...

class SliceShape(_message.Message):
    __slots__ = ("kind", "profile", "compute_milli", "memory_milli")
    KIND_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_MILLI_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MILLI_FIELD_NUMBER: _ClassVar[int]
    kind: str
    profile: str
    compute_milli: int
    memory_milli: int
    def __init__(self, kind: _Optional[str] = ..., profile: _Optional[str] = ..., compute_milli: _Optional[int] = ..., memory_milli: _Optional[int] = ...) -> None: ...

class GetGrantRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListGrantsRequest(_message.Message):
    __slots__ = ("project", "state", "page_size", "page_token")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    project: str
    state: GrantState
    page_size: int
    page_token: str
    def __init__(self, project: _Optional[str] = ..., state: _Optional[_Union[GrantState, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListGrantsResponse(_message.Message):
    __slots__ = ("grants", "next_page_token")
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    grants: _containers.RepeatedCompositeFieldContainer[Grant]
    next_page_token: str
    def __init__(self, grants: _Optional[_Iterable[_Union[Grant, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RenewGrantRequest(_message.Message):
    __slots__ = ("id", "lease")
    ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    id: str
    lease: _duration_pb2.Duration
    def __init__(self, id: _Optional[str] = ..., lease: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ReleaseGrantRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class WatchGrantsRequest(_message.Message):
    __slots__ = ("project", "grant_id", "from_revision")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    GRANT_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_REVISION_FIELD_NUMBER: _ClassVar[int]
    project: str
    grant_id: str
    from_revision: str
    def __init__(self, project: _Optional[str] = ..., grant_id: _Optional[str] = ..., from_revision: _Optional[str] = ...) -> None: ...

class GrantChange(_message.Message):
    __slots__ = ("type", "revision", "grant", "at")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    GRANT_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    type: GrantChangeType
    revision: str
    grant: Grant
    at: _timestamp_pb2.Timestamp
    def __init__(self, type: _Optional[_Union[GrantChangeType, str]] = ..., revision: _Optional[str] = ..., grant: _Optional[_Union[Grant, _Mapping]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class QuoteResponse(_message.Message):
    __slots__ = ("sku", "count", "currency", "cost", "cost_per_hour", "accelerator_hours", "price_tier", "price_book_version", "available_now", "estimated_start", "queue_position", "waiting_reason", "refusal_reason", "refusal_message", "warnings")
    SKU_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    COST_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    ACCELERATOR_HOURS_FIELD_NUMBER: _ClassVar[int]
    PRICE_TIER_FIELD_NUMBER: _ClassVar[int]
    PRICE_BOOK_VERSION_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_NOW_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_START_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    WAITING_REASON_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_REASON_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    sku: str
    count: int
    currency: str
    cost: float
    cost_per_hour: float
    accelerator_hours: float
    price_tier: str
    price_book_version: int
    available_now: bool
    estimated_start: _timestamp_pb2.Timestamp
    queue_position: int
    waiting_reason: str
    refusal_reason: str
    refusal_message: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, sku: _Optional[str] = ..., count: _Optional[int] = ..., currency: _Optional[str] = ..., cost: _Optional[float] = ..., cost_per_hour: _Optional[float] = ..., accelerator_hours: _Optional[float] = ..., price_tier: _Optional[str] = ..., price_book_version: _Optional[int] = ..., available_now: _Optional[bool] = ..., estimated_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., queue_position: _Optional[int] = ..., waiting_reason: _Optional[str] = ..., refusal_reason: _Optional[str] = ..., refusal_message: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...
