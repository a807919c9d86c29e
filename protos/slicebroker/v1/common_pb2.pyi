import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GrantEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GRANT_EVENT_TYPE_UNSPECIFIED: _ClassVar[GrantEventType]
    GRANT_EVENT_TYPE_GRANTED: _ClassVar[GrantEventType]
    GRANT_EVENT_TYPE_ENDED: _ClassVar[GrantEventType]
GRANT_EVENT_TYPE_UNSPECIFIED: GrantEventType
GRANT_EVENT_TYPE_GRANTED: GrantEventType
GRANT_EVENT_TYPE_ENDED: GrantEventType

class Slice(_message.Message):
    __slots__ = ("node_id", "device_id", "kind", "profile")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    device_id: str
    kind: str
    profile: str
    def __init__(self, node_id: _Optional[str] = ..., device_id: _Optional[str] = ..., kind: _Optional[str] = ..., profile: _Optional[str] = ...) -> None: ...

class GrantEvent(_message.Message):
    __slots__ = ("event_id", "grant_id", "type", "institution", "project", "sku", "count", "at", "reason", "slices", "user", "slice_kind", "priority_class", "isolation_class", "site")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    GRANT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SLICES_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    SLICE_KIND_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_CLASS_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_CLASS_FIELD_NUMBER: _ClassVar[int]
    SITE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    grant_id: str
    type: GrantEventType
    institution: str
    project: str
    sku: str
    count: int
    at: _timestamp_pb2.Timestamp
    reason: str
    slices: _containers.RepeatedCompositeFieldContainer[Slice]
    user: str
    slice_kind: str
    priority_class: str
    isolation_class: str
    site: str
    def __init__(self, event_id: _Optional[str] = ..., grant_id: _Optional[str] = ..., type: _Optional[_Union[GrantEventType, str]] = ..., institution: _Optional[str] = ..., project: _Optional[str] = ..., sku: _Optional[str] = ..., count: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., slices: _Optional[_Iterable[_Union[Slice, _Mapping]]] = ..., user: _Optional[str] = ..., slice_kind: _Optional[str] = ..., priority_class: _Optional[str] = ..., isolation_class: _Optional[str] = ..., site: _Optional[str] = ...) -> None: ...
