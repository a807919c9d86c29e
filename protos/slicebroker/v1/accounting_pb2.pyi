import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from slicebroker.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PriceEntry(_message.Message):
    __slots__ = ("sku", "slice_kind", "tier", "price_per_hour", "units_per_hour", "valid_from", "valid_until")
    SKU_FIELD_NUMBER: _ClassVar[int]
    SLICE_KIND_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    UNITS_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    sku: str
    slice_kind: str
    tier: str
    price_per_hour: str
    units_per_hour: str
    valid_from: str
    valid_until: str
    def __init__(self, sku: _Optional[str] = ..., slice_kind: _Optional[str] = ..., tier: _Optional[str] = ..., price_per_hour: _Optional[str] = ..., units_per_hour: _Optional[str] = ..., valid_from: _Optional[str] = ..., valid_until: _Optional[str] = ...) -> None: ...

class PriceBook(_message.Message):
    __slots__ = ("version", "currency", "default_tier", "institution_tiers", "preemptible_discount_bp", "entries")
    class InstitutionTiersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TIER_FIELD_NUMBER: _ClassVar[int]
    INSTITUTION_TIERS_FIELD_NUMBER: _ClassVar[int]
    PREEMPTIBLE_DISCOUNT_BP_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    version: int
    currency: str
    default_tier: str
    institution_tiers: _containers.ScalarMap[str, str]
    preemptible_discount_bp: int
    entries: _containers.RepeatedCompositeFieldContainer[PriceEntry]
    def __init__(self, version: _Optional[int] = ..., currency: _Optional[str] = ..., default_tier: _Optional[str] = ..., institution_tiers: _Optional[_Mapping[str, str]] = ..., preemptible_discount_bp: _Optional[int] = ..., entries: _Optional[_Iterable[_Union[PriceEntry, _Mapping]]] = ...) -> None: ...

class PublishPriceBookRequest(_message.Message):
    __slots__ = ("book", "expected_version")
    BOOK_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    book: PriceBook
    expected_version: int
    def __init__(self, book: _Optional[_Union[PriceBook, _Mapping]] = ..., expected_version: _Optional[int] = ...) -> None: ...

class GetPriceBookRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class QueryLedgerRequest(_message.Message):
    __slots__ = ("start", "end", "group_by", "institution", "project", "user", "sku")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    group_by: _containers.RepeatedScalarFieldContainer[str]
    institution: str
    project: str
    user: str
    sku: str
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., group_by: _Optional[_Iterable[str]] = ..., institution: _Optional[str] = ..., project: _Optional[str] = ..., user: _Optional[str] = ..., sku: _Optional[str] = ...) -> None: ...

class LedgerRow(_message.Message):
    __slots__ = ("institution", "project", "user", "sku", "day", "slice_hours", "accelerator_hours", "cost")
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    SLICE_HOURS_FIELD_NUMBER: _ClassVar[int]
    ACCELERATOR_HOURS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    institution: str
    project: str
    user: str
    sku: str
    day: str
    slice_hours: float
    accelerator_hours: float
    cost: str
    def __init__(self, institution: _Optional[str] = ..., project: _Optional[str] = ..., user: _Optional[str] = ..., sku: _Optional[str] = ..., day: _Optional[str] = ..., slice_hours: _Optional[float] = ..., accelerator_hours: _Optional[float] = ..., cost: _Optional[str] = ...) -> None: ...

class QueryLedgerResponse(_message.Message):
    __slots__ = ("rows", "currency", "book_version")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    BOOK_VERSION_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[LedgerRow]
    currency: str
    book_version: int
    def __init__(self, rows: _Optional[_Iterable[_Union[LedgerRow, _Mapping]]] = ..., currency: _Optional[str] = ..., book_version: _Optional[int] = ...) -> None: ...

class ClosePeriodRequest(_message.Message):
    __slots__ = ("period",)
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    period: str
    def __init__(self, period: _Optional[str] = ...) -> None: ...

class GetStatementsRequest(_message.Message):
    __slots__ = ("period", "institution")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    period: str
    institution: str
    def __init__(self, period: _Optional[str] = ..., institution: _Optional[str] = ...) -> None: ...

class StatementLine(_message.Message):
    __slots__ = ("category", "charge_period", "project", "sku", "slice_kind", "tier", "slice_hours", "accelerator_hours", "list_cost", "billed_cost")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    CHARGE_PERIOD_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    SLICE_KIND_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    SLICE_HOURS_FIELD_NUMBER: _ClassVar[int]
    ACCELERATOR_HOURS_FIELD_NUMBER: _ClassVar[int]
    LIST_COST_FIELD_NUMBER: _ClassVar[int]
    BILLED_COST_FIELD_NUMBER: _ClassVar[int]
    category: str
    charge_period: str
    project: str
    sku: str
    slice_kind: str
    tier: str
    slice_hours: float
    accelerator_hours: float
    list_cost: str
    billed_cost: str
    def __init__(self, category: _Optional[str] = ..., charge_period: _Optional[str] = ..., project: _Optional[str] = ..., sku: _Optional[str] = ..., slice_kind: _Optional[str] = ..., tier: _Optional[str] = ..., slice_hours: _Optional[float] = ..., accelerator_hours: _Optional[float] = ..., list_cost: _Optional[str] = ..., billed_cost: _Optional[str] = ...) -> None: ...

class Statement(_message.Message):
    __slots__ = ("period", "institution", "currency", "book_version", "total", "usage", "late_usage", "adjustments", "lines")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    BOOK_VERSION_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    LATE_USAGE_FIELD_NUMBER: _ClassVar[int]
    ADJUSTMENTS_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    period: str
    institution: str
    currency: str
    book_version: int
    total: str
    usage: str
    late_usage: str
    adjustments: str
    lines: _containers.RepeatedCompositeFieldContainer[StatementLine]
    def __init__(self, period: _Optional[str] = ..., institution: _Optional[str] = ..., currency: _Optional[str] = ..., book_version: _Optional[int] = ..., total: _Optional[str] = ..., usage: _Optional[str] = ..., late_usage: _Optional[str] = ..., adjustments: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[StatementLine, _Mapping]]] = ...) -> None: ...

class StatementsResponse(_message.Message):
    __slots__ = ("statements",)
    STATEMENTS_FIELD_NUMBER: _ClassVar[int]
    statements: _containers.RepeatedCompositeFieldContainer[Statement]
    def __init__(self, statements: _Optional[_Iterable[_Union[Statement, _Mapping]]] = ...) -> None: ...

class RerateRequest(_message.Message):
    __slots__ = ("period", "book_version")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    BOOK_VERSION_FIELD_NUMBER: _ClassVar[int]
    period: str
    book_version: int
    def __init__(self, period: _Optional[str] = ..., book_version: _Optional[int] = ...) -> None: ...

class RerateResponse(_message.Message):
    __slots__ = ("period", "billed_in", "from_version", "to_version", "adjustment_lines", "adjustment_total")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    BILLED_IN_FIELD_NUMBER: _ClassVar[int]
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    TO_VERSION_FIELD_NUMBER: _ClassVar[int]
    ADJUSTMENT_LINES_FIELD_NUMBER: _ClassVar[int]
    ADJUSTMENT_TOTAL_FIELD_NUMBER: _ClassVar[int]
    period: str
    billed_in: str
    from_version: int
    to_version: int
    adjustment_lines: int
    adjustment_total: str
    def __init__(self, period: _Optional[str] = ..., billed_in: _Optional[str] = ..., from_version: _Optional[int] = ..., to_version: _Optional[int] = ..., adjustment_lines: _Optional[int] = ..., adjustment_total: _Optional[str] = ...) -> None: ...

class ExportLedgerRequest(_message.Message):
    __slots__ = ("period", "institution", "format")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    period: str
    institution: str
    format: str
    def __init__(self, period: _Optional[str] = ..., institution: _Optional[str] = ..., format: _Optional[str] = ...) -> None: ...

class ExportChunk(_message.Message):
    __slots__ = ("data", "rows")
    DATA_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    rows: int
    def __init__(self, data: _Optional[bytes] = ..., rows: _Optional[int] = ...) -> None: ...

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

class RateRequest(_message.Message):
    __slots__ = ("institution", "sku", "slice_kind", "count", "duration", "priority_class", "at")
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    SLICE_KIND_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_CLASS_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    institution: str
    sku: str
    slice_kind: str
    count: int
    duration: _duration_pb2.Duration
    priority_class: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, institution: _Optional[str] = ..., sku: _Optional[str] = ..., slice_kind: _Optional[str] = ..., count: _Optional[int] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., priority_class: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RateResponse(_message.Message):
    __slots__ = ("currency", "cost", "cost_per_hour", "accelerator_hours", "tier", "price_book_version")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    COST_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    ACCELERATOR_HOURS_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    PRICE_BOOK_VERSION_FIELD_NUMBER: _ClassVar[int]
    currency: str
    cost: float
    cost_per_hour: float
    accelerator_hours: float
    tier: str
    price_book_version: int
    def __init__(self, currency: _Optional[str] = ..., cost: _Optional[float] = ..., cost_per_hour: _Optional[float] = ..., accelerator_hours: _Optional[float] = ..., tier: _Optional[str] = ..., price_book_version: _Optional[int] = ...) -> None: ...
