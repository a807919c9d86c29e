import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from slicebroker.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IngestEventsRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_common_pb2.GrantEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[_common_pb2.GrantEvent, _Mapping]]] = ...) -> None: ...

class IngestEventsResponse(_message.Message):
    __slots__ = ("applied", "duplicates")
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    applied: int
    duplicates: int
    def __init__(self, applied: _Optional[int] = ..., duplicates: _Optional[int] = ...) -> None: ...

class GetUsageRequest(_message.Message):
    __slots__ = ("institution", "project", "sku")
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    institution: str
    project: str
    sku: str
    def __init__(self, institution: _Optional[str] = ..., project: _Optional[str] = ..., sku: _Optional[str] = ...) -> None: ...

class UsageRow(_message.Message):
    __slots__ = ("institution", "project", "sku", "device_seconds", "running_device_seconds", "grants", "running_grants")
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    DEVICE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_DEVICE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    GRANTS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_GRANTS_FIELD_NUMBER: _ClassVar[int]
    institution: str
    project: str
    sku: str
    device_seconds: float
    running_device_seconds: float
    grants: int
    running_grants: int
    def __init__(self, institution: _Optional[str] = ..., project: _Optional[str] = ..., sku: _Optional[str] = ..., device_seconds: _Optional[float] = ..., running_device_seconds: _Optional[float] = ..., grants: _Optional[int] = ..., running_grants: _Optional[int] = ...) -> None: ...

class GetUsageResponse(_message.Message):
    __slots__ = ("rows", "as_of")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[UsageRow]
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, rows: _Optional[_Iterable[_Union[UsageRow, _Mapping]]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
