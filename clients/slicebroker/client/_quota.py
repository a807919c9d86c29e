"""The SDK's quota administration and standings: the tenant tree (cohorts, institutions,
projects), quota entries per resource class, hour budgets, and what each tenant is entitled to,
uses, borrows and has left. Models and Ops here; `Client` and `AsyncClient` expose them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType

from google.protobuf.timestamp_pb2 import Timestamp

from slicebroker.client._ops import Op, Service, _rpc
from slicebroker.v1 import quota_pb2


class TenantKind(StrEnum):
    COHORT = "cohort"
    INSTITUTION = "institution"
    PROJECT = "project"
    USER = "user"


class TenantState(StrEnum):
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    CLOSED = "closed"


_KINDS = {
    TenantKind.COHORT: quota_pb2.TENANT_KIND_COHORT,
    TenantKind.INSTITUTION: quota_pb2.TENANT_KIND_INSTITUTION,
    TenantKind.PROJECT: quota_pb2.TENANT_KIND_PROJECT,
    TenantKind.USER: quota_pb2.TENANT_KIND_USER,
}
_STATES = {
    TenantState.ACTIVE: quota_pb2.TENANT_STATE_ACTIVE,
    TenantState.ON_HOLD: quota_pb2.TENANT_STATE_ON_HOLD,
    TenantState.CLOSED: quota_pb2.TENANT_STATE_CLOSED,
}


@dataclass(frozen=True, slots=True)
class QuotaEntry:
    """Amounts are decimal strings of devices ("8", "0.25") or "" for the default (nominal 0, the
    limits unlimited)."""

    resource_class: str
    nominal: str = ""
    borrowing_limit: str = ""
    lending_limit: str = ""
    hard_cap: str = ""


@dataclass(frozen=True, slots=True)
class Budget:
    hard: bool
    start: datetime
    end: datetime
    expiry: datetime
    award_hours: float
    carry_over_hours: float = 0.0
    top_up_hours: float = 0.0
    carry_over_max_hours: float = 0.0
    # At expiry the next period (same length and award) starts by itself, carrying what is left.
    renews: bool = False


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    kind: TenantKind
    parent: str
    state: TenantState
    display_name: str
    weight: float
    generation: int
    quotas: tuple[QuotaEntry, ...]
    budget: Budget | None
    burned_hours: float
    # What a write should have made the caller aware of (e.g. guarantees above capacity).
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ClassCommitment:
    """One resource class: the nominal quota guaranteed over all tenants against the healthy
    capacity inventory reports (devices, or normalised units for "accel")."""

    resource_class: str
    guaranteed: str
    capacity: str
    over_committed: bool
    over_by: str


@dataclass(frozen=True, slots=True)
class Standing:
    """One tenant's entitlement (subtree quota per class), use and borrowing (per resource, in
    devices), fair-share number (lower is served first) and budget."""

    tenant: Tenant
    entitlement: Mapping[str, str]
    in_use: Mapping[str, str]
    borrowed: Mapping[str, str]
    fair_share: float
    budget_left_hours: float | None
    projected_exhaustion: datetime | None


UPSERT_TENANT = _rpc(Service.QUOTA, "UpsertTenant", quota_pb2.Tenant)
LIST_TENANTS = _rpc(Service.QUOTA, "ListTenants", quota_pb2.ListTenantsResponse)
SET_QUOTA = _rpc(Service.QUOTA, "SetQuota", quota_pb2.Tenant)
SET_BUDGET = _rpc(Service.QUOTA, "SetBudget", quota_pb2.Tenant)
TOP_UP_BUDGET = _rpc(Service.QUOTA, "TopUpBudget", quota_pb2.Tenant)
CHECK_CAPACITY = _rpc(Service.QUOTA, "CheckCapacity", quota_pb2.CheckCapacityResponse)
GET_STANDINGS = _rpc(Service.QUOTA, "GetStandings", quota_pb2.GetStandingsResponse)


def _when(ts: Timestamp) -> datetime:
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, UTC)


def _ts(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def tenant(msg: quota_pb2.Tenant) -> Tenant:
    budget = None
    if msg.HasField("budget"):
        b = msg.budget
        budget = Budget(
            hard=b.mode == quota_pb2.BUDGET_MODE_HARD,
            start=_when(b.start),
            end=_when(b.end),
            expiry=_when(b.expiry),
            award_hours=b.award_hours,
            carry_over_hours=b.carry_over_hours,
            top_up_hours=b.top_up_hours,
            carry_over_max_hours=b.carry_over_max_hours,
            renews=b.renews,
        )
    kinds = {v: k for k, v in _KINDS.items()}
    states = {v: k for k, v in _STATES.items()}
    return Tenant(
        id=msg.id,
        kind=kinds[msg.kind],
        parent=msg.parent,
        state=states.get(msg.state, TenantState.ACTIVE),
        display_name=msg.display_name,
        weight=msg.weight,
        generation=msg.generation,
        quotas=tuple(
            QuotaEntry(q.resource_class, q.nominal, q.borrowing_limit, q.lending_limit, q.hard_cap) for q in msg.quotas
        ),
        budget=budget,
        burned_hours=msg.burned_hours,
        warnings=tuple(msg.warnings),
    )


def _sorted(m: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(sorted(m.items())))


def standings(tenants: Sequence[str]) -> Op[list[Standing]]:
    def read(msg: quota_pb2.GetStandingsResponse) -> list[Standing]:
        return [
            Standing(
                tenant=tenant(s.tenant),
                entitlement=_sorted(s.entitlement),
                in_use=_sorted(s.in_use),
                borrowed=_sorted(s.borrowed),
                fair_share=s.fair_share,
                budget_left_hours=s.budget_left_hours if s.HasField("budget_left_hours") else None,
                projected_exhaustion=_when(s.projected_exhaustion) if s.HasField("projected_exhaustion") else None,
            )
            for s in msg.standings
        ]

    return Op(GET_STANDINGS, quota_pb2.GetStandingsRequest(tenants=list(tenants)), read)


def list_tenants(kind: TenantKind | None, parent: str | None) -> Op[list[Tenant]]:
    request = quota_pb2.ListTenantsRequest(
        kind=_KINDS[kind] if kind else quota_pb2.TENANT_KIND_UNSPECIFIED, parent=parent or ""
    )
    return Op(LIST_TENANTS, request, lambda msg: [tenant(t) for t in msg.tenants])


def upsert_tenant(
    tenant_id: str,
    kind: TenantKind,
    parent: str,
    state: TenantState,
    display_name: str,
    weight: float,
    expected_generation: int | None,
) -> Op[Tenant]:
    request = quota_pb2.UpsertTenantRequest(
        id=tenant_id,
        kind=_KINDS[kind],
        parent=parent,
        state=_STATES[state],
        display_name=display_name,
        weight=weight,
        expected_generation=expected_generation,
    )
    return Op(UPSERT_TENANT, request, tenant)


def set_quota(
    tenant_id: str, entries: Sequence[QuotaEntry], remove: Sequence[str], expected_generation: int | None
) -> Op[Tenant]:
    request = quota_pb2.SetQuotaRequest(
        tenant=tenant_id,
        entries=[
            quota_pb2.QuotaEntry(
                resource_class=e.resource_class,
                nominal=e.nominal,
                borrowing_limit=e.borrowing_limit,
                lending_limit=e.lending_limit,
                hard_cap=e.hard_cap,
            )
            for e in entries
        ],
        remove=list(remove),
        expected_generation=expected_generation,
    )
    return Op(SET_QUOTA, request, tenant)


def set_budget(tenant_id: str, budget: Budget | None, roll_over: bool, expected_generation: int | None) -> Op[Tenant]:
    request = quota_pb2.SetBudgetRequest(tenant=tenant_id, roll_over=roll_over, expected_generation=expected_generation)
    if budget is not None:
        request.budget.CopyFrom(
            quota_pb2.Budget(
                mode=quota_pb2.BUDGET_MODE_HARD if budget.hard else quota_pb2.BUDGET_MODE_SOFT,
                start=_ts(budget.start),
                end=_ts(budget.end),
                expiry=_ts(budget.expiry),
                award_hours=budget.award_hours,
                carry_over_hours=budget.carry_over_hours,
                top_up_hours=budget.top_up_hours,
                carry_over_max_hours=budget.carry_over_max_hours,
                renews=budget.renews,
            )
        )
    return Op(SET_BUDGET, request, tenant)


def top_up_budget(tenant_id: str, hours: float, expected_generation: int | None) -> Op[Tenant]:
    request = quota_pb2.TopUpBudgetRequest(tenant=tenant_id, hours=hours, expected_generation=expected_generation)
    return Op(TOP_UP_BUDGET, request, tenant)


def check_capacity() -> Op[list[ClassCommitment]]:
    def read(msg: quota_pb2.CheckCapacityResponse) -> list[ClassCommitment]:
        return [
            ClassCommitment(c.resource_class, c.guaranteed, c.capacity, c.over_committed, c.over_by)
            for c in msg.classes
        ]

    return Op(CHECK_CAPACITY, quota_pb2.CheckCapacityRequest(), read)
