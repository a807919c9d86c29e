import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TenantKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TENANT_KIND_UNSPECIFIED: _ClassVar[TenantKind]
    TENANT_KIND_COHORT: _ClassVar[TenantKind]
    TENANT_KIND_INSTITUTION: _ClassVar[TenantKind]
    TENANT_KIND_PROJECT: _ClassVar[TenantKind]
    TENANT_KIND_USER: _ClassVar[TenantKind]

class TenantState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TENANT_STATE_UNSPECIFIED: _ClassVar[TenantState]
    TENANT_STATE_ACTIVE: _ClassVar[TenantState]
    TENANT_STATE_ON_HOLD: _ClassVar[TenantState]
    TENANT_STATE_CLOSED: _ClassVar[TenantState]

class PriorityClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_CLASS_UNSPECIFIED: _ClassVar[PriorityClass]
    PRIORITY_CLASS_GUARANTEED: _ClassVar[PriorityClass]
    PRIORITY_CLASS_STANDARD: _ClassVar[PriorityClass]
    PRIORITY_CLASS_PREEMPTIBLE: _ClassVar[PriorityClass]

class BudgetMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BUDGET_MODE_UNSPECIFIED: _ClassVar[BudgetMode]
    BUDGET_MODE_SOFT: _ClassVar[BudgetMode]
    BUDGET_MODE_HARD: _ClassVar[BudgetMode]

class ReservationPhase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESERVATION_PHASE_UNSPECIFIED: _ClassVar[ReservationPhase]
    RESERVATION_PHASE_RESERVED: _ClassVar[ReservationPhase]
    RESERVATION_PHASE_COMMITTED: _ClassVar[ReservationPhase]
TENANT_KIND_UNSPECIFIED: TenantKind
TENANT_KIND_COHORT: TenantKind
TENANT_KIND_INSTITUTION: TenantKind
TENANT_KIND_PROJECT: TenantKind
TENANT_KIND_USER: TenantKind
TENANT_STATE_UNSPECIFIED: TenantState
TENANT_STATE_ACTIVE: TenantState
TENANT_STATE_ON_HOLD: TenantState
TENANT_STATE_CLOSED: TenantState
PRIORITY_CLASS_UNSPECIFIED: PriorityClass
PRIORITY_CLASS_GUARANTEED: PriorityClass
PRIORITY_CLASS_STANDARD: PriorityClass
PRIORITY_CLASS_PREEMPTIBLE: PriorityClass
BUDGET_MODE_UNSPECIFIED: BudgetMode
BUDGET_MODE_SOFT: BudgetMode
BUDGET_MODE_HARD: BudgetMode
RESERVATION_PHASE_UNSPECIFIED: ReservationPhase
RESERVATION_PHASE_RESERVED: ReservationPhase
RESERVATION_PHASE_COMMITTED: ReservationPhase

class QuotaEntry(_message.Message):
    __slots__ = ("resource_class", "nominal", "borrowing_limit", "lending_limit", "hard_cap")
    RESOURCE_CLASS_FIELD_NUMBER: _ClassVar[int]
    NOMINAL_FIELD_NUMBER: _ClassVar[int]
    BORROWING_LIMIT_FIELD_NUMBER: _ClassVar[int]
    LENDING_LIMIT_FIELD_NUMBER: _ClassVar[int]
    HARD_CAP_FIELD_NUMBER: _ClassVar[int]
    resource_class: str
    nominal: str
    borrowing_limit: str
    lending_limit: str
    hard_cap: str
    def __init__(self, resource_class: _Optional[str] = ..., nominal: _Optional[str] = ..., borrowing_limit: _Optional[str] = ..., lending_limit: _Optional[str] = ..., hard_cap: _Optional[str] = ...) -> None: ...

class Budget(_message.Message):
    __slots__ = ("mode", "start", "end", "expiry", "award_hours", "carry_over_hours", "top_up_hours", "carry_over_max_hours", "renews")
    MODE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_FIELD_NUMBER: _ClassVar[int]
    AWARD_HOURS_FIELD_NUMBER: _ClassVar[int]
    CARRY_OVER_HOURS_FIELD_NUMBER: _ClassVar[int]
    TOP_UP_HOURS_FIELD_NUMBER: _ClassVar[int]
    CARRY_OVER_MAX_HOURS_FIELD_NUMBER: _ClassVar[int]
    RENEWS_FIELD_NUMBER: _ClassVar[int]
    mode: BudgetMode
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    expiry: _timestamp_pb2.Timestamp
    award_hours: float
    carry_over_hours: float
    top_up_hours: float
    carry_over_max_hours: float
    renews: bool
    def __init__(self, mode: _Optional[_Union[BudgetMode, str]] = ..., start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expiry: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., award_hours: _Optional[float] = ..., carry_over_hours: _Optional[float] = ..., top_up_hours: _Optional[float] = ..., carry_over_max_hours: _Optional[float] = ..., renews: _Optional[bool] = ...) -> None: ...

class Tenant(_message.Message):
    __slots__ = ("id", "kind", "parent", "state", "display_name", "weight", "generation", "quotas", "budget", "burned_hours", "warnings")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    QUOTAS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    BURNED_HOURS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: TenantKind
    parent: str
    state: TenantState
    display_name: str
    weight: float
    generation: int
    quotas: _containers.RepeatedCompositeFieldContainer[QuotaEntry]
    budget: Budget
    burned_hours: float
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[_Union[TenantKind, str]] = ..., parent: _Optional[str] = ..., state: _Optional[_Union[TenantState, str]] = ..., display_name: _Optional[str] = ..., weight: _Optional[float] = ..., generation: _Optional[int] = ..., quotas: _Optional[_Iterable[_Union[QuotaEntry, _Mapping]]] = ..., budget: _Optional[_Union[Budget, _Mapping]] = ..., burned_hours: _Optional[float] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class UpsertTenantRequest(_message.Message):
    __slots__ = ("id", "kind", "parent", "state", "display_name", "weight", "expected_generation")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: TenantKind
    parent: str
    state: TenantState
    display_name: str
    weight: float
    expected_generation: int
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[_Union[TenantKind, str]] = ..., parent: _Optional[str] = ..., state: _Optional[_Union[TenantState, str]] = ..., display_name: _Optional[str] = ..., weight: _Optional[float] = ..., expected_generation: _Optional[int] = ...) -> None: ...

class GetTenantRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListTenantsRequest(_message.Message):
    __slots__ = ("kind", "parent")
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    kind: TenantKind
    parent: str
    def __init__(self, kind: _Optional[_Union[TenantKind, str]] = ..., parent: _Optional[str] = ...) -> None: ...

class ListTenantsResponse(_message.Message):
    __slots__ = ("tenants",)
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    tenants: _containers.RepeatedCompositeFieldContainer[Tenant]
    def __init__(self, tenants: _Optional[_Iterable[_Union[Tenant, _Mapping]]] = ...) -> None: ...

class SetQuotaRequest(_message.Message):
    __slots__ = ("tenant", "entries", "remove", "expected_generation")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    entries: _containers.RepeatedCompositeFieldContainer[QuotaEntry]
    remove: _containers.RepeatedScalarFieldContainer[str]
    expected_generation: int
    def __init__(self, tenant: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[QuotaEntry, _Mapping]]] = ..., remove: _Optional[_Iterable[str]] = ..., expected_generation: _Optional[int] = ...) -> None: ...

class SetBudgetRequest(_message.Message):
    __slots__ = ("tenant", "budget", "roll_over", "expected_generation")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    ROLL_OVER_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    budget: Budget
    roll_over: bool
    expected_generation: int
    def __init__(self, tenant: _Optional[str] = ..., budget: _Optional[_Union[Budget, _Mapping]] = ..., roll_over: _Optional[bool] = ..., expected_generation: _Optional[int] = ...) -> None: ...

class TopUpBudgetRequest(_message.Message):
    __slots__ = ("tenant", "hours", "expected_generation")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    HOURS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    hours: float
    expected_generation: int
    def __init__(self, tenant: _Optional[str] = ..., hours: _Optional[float] = ..., expected_generation: _Optional[int] = ...) -> None: ...

class BurnEvent(_message.Message):
    __slots__ = ("event_id", "project", "accelerator_hours")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    ACCELERATOR_HOURS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    project: str
    accelerator_hours: float
    def __init__(self, event_id: _Optional[str] = ..., project: _Optional[str] = ..., accelerator_hours: _Optional[float] = ...) -> None: ...

class RecordBurnRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[BurnEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[BurnEvent, _Mapping]]] = ...) -> None: ...

class RecordBurnResponse(_message.Message):
    __slots__ = ("applied",)
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    applied: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, applied: _Optional[_Iterable[bool]] = ...) -> None: ...

class Standing(_message.Message):
    __slots__ = ("tenant", "entitlement", "in_use", "borrowed", "fair_share", "budget_left_hours", "projected_exhaustion")
    class EntitlementEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class InUseEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class BorrowedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ENTITLEMENT_FIELD_NUMBER: _ClassVar[int]
    IN_USE_FIELD_NUMBER: _ClassVar[int]
    BORROWED_FIELD_NUMBER: _ClassVar[int]
    FAIR_SHARE_FIELD_NUMBER: _ClassVar[int]
    BUDGET_LEFT_HOURS_FIELD_NUMBER: _ClassVar[int]
    PROJECTED_EXHAUSTION_FIELD_NUMBER: _ClassVar[int]
    tenant: Tenant
    entitlement: _containers.ScalarMap[str, str]
    in_use: _containers.ScalarMap[str, str]
    borrowed: _containers.ScalarMap[str, str]
    fair_share: float
    budget_left_hours: float
    projected_exhaustion: _timestamp_pb2.Timestamp
    def __init__(self, tenant: _Optional[_Union[Tenant, _Mapping]] = ..., entitlement: _Optional[_Mapping[str, str]] = ..., in_use: _Optional[_Mapping[str, str]] = ..., borrowed: _Optional[_Mapping[str, str]] = ..., fair_share: _Optional[float] = ..., budget_left_hours: _Optional[float] = ..., projected_exhaustion: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetStandingsRequest(_message.Message):
    __slots__ = ("tenants",)
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    tenants: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tenants: _Optional[_Iterable[str]] = ...) -> None: ...

class GetStandingsResponse(_message.Message):
    __slots__ = ("standings",)
    STANDINGS_FIELD_NUMBER: _ClassVar[int]
    standings: _containers.RepeatedCompositeFieldContainer[Standing]
    def __init__(self, standings: _Optional[_Iterable[_Union[Standing, _Mapping]]] = ...) -> None: ...

class PendingRequest(_message.Message):
    __slots__ = ("id", "project", "sku", "shape", "count")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    id: str
    project: str
    sku: str
    shape: str
    count: int
    def __init__(self, id: _Optional[str] = ..., project: _Optional[str] = ..., sku: _Optional[str] = ..., shape: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class FairShareOrderRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[PendingRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[PendingRequest, _Mapping]]] = ...) -> None: ...

class FairShareOrderResponse(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Institution(_message.Message):
    __slots__ = ("id", "display_name", "generation")
    ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    id: str
    display_name: str
    generation: int
    def __init__(self, id: _Optional[str] = ..., display_name: _Optional[str] = ..., generation: _Optional[int] = ...) -> None: ...

class UpsertInstitutionRequest(_message.Message):
    __slots__ = ("id", "display_name")
    ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    display_name: str
    def __init__(self, id: _Optional[str] = ..., display_name: _Optional[str] = ...) -> None: ...

class ListInstitutionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListInstitutionsResponse(_message.Message):
    __slots__ = ("institutions",)
    INSTITUTIONS_FIELD_NUMBER: _ClassVar[int]
    institutions: _containers.RepeatedCompositeFieldContainer[Institution]
    def __init__(self, institutions: _Optional[_Iterable[_Union[Institution, _Mapping]]] = ...) -> None: ...

class Project(_message.Message):
    __slots__ = ("id", "institution", "display_name", "device_caps", "devices_in_use", "generation", "warnings")
    class DeviceCapsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class DevicesInUseEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DEVICE_CAPS_FIELD_NUMBER: _ClassVar[int]
    DEVICES_IN_USE_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    id: str
    institution: str
    display_name: str
    device_caps: _containers.ScalarMap[str, int]
    devices_in_use: _containers.ScalarMap[str, int]
    generation: int
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., institution: _Optional[str] = ..., display_name: _Optional[str] = ..., device_caps: _Optional[_Mapping[str, int]] = ..., devices_in_use: _Optional[_Mapping[str, int]] = ..., generation: _Optional[int] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class UpsertProjectRequest(_message.Message):
    __slots__ = ("id", "institution", "display_name", "device_caps")
    class DeviceCapsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DEVICE_CAPS_FIELD_NUMBER: _ClassVar[int]
    id: str
    institution: str
    display_name: str
    device_caps: _containers.ScalarMap[str, int]
    def __init__(self, id: _Optional[str] = ..., institution: _Optional[str] = ..., display_name: _Optional[str] = ..., device_caps: _Optional[_Mapping[str, int]] = ...) -> None: ...

class GetProjectRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListProjectsRequest(_message.Message):
    __slots__ = ("institution",)
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    institution: str
    def __init__(self, institution: _Optional[str] = ...) -> None: ...

class ListProjectsResponse(_message.Message):
    __slots__ = ("projects",)
    PROJECTS_FIELD_NUMBER: _ClassVar[int]
    projects: _containers.RepeatedCompositeFieldContainer[Project]
    def __init__(self, projects: _Optional[_Iterable[_Union[Project, _Mapping]]] = ...) -> None: ...

class Reservation(_message.Message):
    __slots__ = ("grant_id", "project", "sku", "count", "ttl_seconds", "shape", "priority", "user")
    GRANT_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    grant_id: str
    project: str
    sku: str
    count: int
    ttl_seconds: int
    shape: str
    priority: PriorityClass
    user: str
    def __init__(self, grant_id: _Optional[str] = ..., project: _Optional[str] = ..., sku: _Optional[str] = ..., count: _Optional[int] = ..., ttl_seconds: _Optional[int] = ..., shape: _Optional[str] = ..., priority: _Optional[_Union[PriorityClass, str]] = ..., user: _Optional[str] = ...) -> None: ...

class ReserveRequest(_message.Message):
    __slots__ = ("reservations",)
    RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    reservations: _containers.RepeatedCompositeFieldContainer[Reservation]
    def __init__(self, reservations: _Optional[_Iterable[_Union[Reservation, _Mapping]]] = ...) -> None: ...

class ReserveResult(_message.Message):
    __slots__ = ("grant_id", "status", "institution", "preemptible", "warnings")
    GRANT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INSTITUTION_FIELD_NUMBER: _ClassVar[int]
    PREEMPTIBLE_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    grant_id: str
    status: _status_pb2.Status
    institution: str
    preemptible: bool
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, grant_id: _Optional[str] = ..., status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., institution: _Optional[str] = ..., preemptible: _Optional[bool] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class ReserveResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ReserveResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ReserveResult, _Mapping]]] = ...) -> None: ...

class CommitRequest(_message.Message):
    __slots__ = ("grant_ids",)
    GRANT_IDS_FIELD_NUMBER: _ClassVar[int]
    grant_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, grant_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GrantIdResult(_message.Message):
    __slots__ = ("grant_id", "status")
    GRANT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    grant_id: str
    status: _status_pb2.Status
    def __init__(self, grant_id: _Optional[str] = ..., status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class CommitResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[GrantIdResult]
    def __init__(self, results: _Optional[_Iterable[_Union[GrantIdResult, _Mapping]]] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("grant_ids",)
    GRANT_IDS_FIELD_NUMBER: _ClassVar[int]
    grant_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, grant_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CancelResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[GrantIdResult]
    def __init__(self, results: _Optional[_Iterable[_Union[GrantIdResult, _Mapping]]] = ...) -> None: ...

class HeldReservation(_message.Message):
    __slots__ = ("grant_id", "project", "sku", "count", "phase", "created_at", "shape", "preemptible", "user")
    GRANT_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    PREEMPTIBLE_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    grant_id: str
    project: str
    sku: str
    count: int
    phase: ReservationPhase
    created_at: _timestamp_pb2.Timestamp
    shape: str
    preemptible: bool
    user: str
    def __init__(self, grant_id: _Optional[str] = ..., project: _Optional[str] = ..., sku: _Optional[str] = ..., count: _Optional[int] = ..., phase: _Optional[_Union[ReservationPhase, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., shape: _Optional[str] = ..., preemptible: _Optional[bool] = ..., user: _Optional[str] = ...) -> None: ...

class ListReservationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListReservationsResponse(_message.Message):
    __slots__ = ("reservations",)
    RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    reservations: _containers.RepeatedCompositeFieldContainer[HeldReservation]
    def __init__(self, reservations: _Optional[_Iterable[_Union[HeldReservation, _Mapping]]] = ...) -> None: ...

class CheckCapacityRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ClassCommitment(_message.Message):
    __slots__ = ("resource_class", "guaranteed", "capacity", "over_committed", "over_by")
    RESOURCE_CLASS_FIELD_NUMBER: _ClassVar[int]
    GUARANTEED_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    OVER_COMMITTED_FIELD_NUMBER: _ClassVar[int]
    OVER_BY_FIELD_NUMBER: _ClassVar[int]
    resource_class: str
    guaranteed: str
    capacity: str
    over_committed: bool
    over_by: str
    def __init__(self, resource_class: _Optional[str] = ..., guaranteed: _Optional[str] = ..., capacity: _Optional[str] = ..., over_committed: _Optional[bool] = ..., over_by: _Optional[str] = ...) -> None: ...

class CheckCapacityResponse(_message.Message):
    __slots__ = ("classes",)
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    classes: _containers.RepeatedCompositeFieldContainer[ClassCommitment]
    def __init__(self, classes: _Optional[_Iterable[_Union[ClassCommitment, _Mapping]]] = ...) -> None: ...
