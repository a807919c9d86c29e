"""Converters between `slicebroker.v1.quota_pb2` messages and the quota domain's values."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from slicebroker.core.errors import InvalidArgument
from slicebroker.quota.domain.amount import UNLIMITED, ZERO, Amount, format_units
from slicebroker.quota.domain.budget import MH_PER_HOUR, Budget, BudgetMode
from slicebroker.quota.domain.capacity import Commitment
from slicebroker.quota.domain.fairshare import Pending
from slicebroker.quota.domain.model import (
    GrantIdResult,
    HeldReservation,
    Institution,
    InstitutionSpec,
    NodeKind,
    NodeSpec,
    NodeState,
    Phase,
    Project,
    ProjectSpec,
    ReservationRequest,
    ReserveResult,
    TenantNode,
)
from slicebroker.quota.domain.resources import shared_charges
from slicebroker.quota.domain.service import Standing
from slicebroker.quota.domain.store import BurnEvent
from slicebroker.quota.domain.tree import Priority, QuotaEntry
from slicebroker.quota.domain.validation import MAX_COUNT, check_amount, check_batch, check_int, check_sku
from slicebroker.runtime import status
from slicebroker.v1 import quota_pb2

T = TypeVar("T")

_PHASE = {
    Phase.RESERVED: quota_pb2.RESERVATION_PHASE_RESERVED,
    Phase.COMMITTED: quota_pb2.RESERVATION_PHASE_COMMITTED,
}


def institution_spec(request: Any) -> InstitutionSpec:
    return InstitutionSpec(id=request.id, display_name=request.display_name)


def institution(value: Institution) -> Any:
    return quota_pb2.Institution(id=value.id, display_name=value.display_name, generation=value.generation)


def institutions(values: Iterable[Institution]) -> Any:
    return quota_pb2.ListInstitutionsResponse(institutions=[institution(v) for v in values])


def project_spec(request: Any) -> ProjectSpec:
    return ProjectSpec(
        id=request.id,
        institution=request.institution,
        display_name=request.display_name,
        device_caps=dict(request.device_caps),
    )


def project(value: Project, warnings: Sequence[str] = ()) -> Any:
    return quota_pb2.Project(
        id=value.id,
        institution=value.institution,
        display_name=value.display_name,
        device_caps=dict(value.device_caps),
        devices_in_use=dict(value.devices_in_use),
        generation=value.generation,
        warnings=list(warnings),
    )


def projects(values: Iterable[Project]) -> Any:
    return quota_pb2.ListProjectsResponse(projects=[project(v) for v in values])


def reservation_requests(request: Any) -> list[ReservationRequest]:
    return [
        ReservationRequest(
            grant_id=r.grant_id,
            project=r.project,
            sku=r.sku,
            count=r.count,
            ttl_seconds=r.ttl_seconds,
            shape=r.shape,
            priority=priority(r.priority, f"reservations[{i}].priority"),
            user=r.user,
        )
        for i, r in enumerate(request.reservations)
    ]


def reserve_response(results: Iterable[ReserveResult]) -> Any:
    return quota_pb2.ReserveResponse(
        results=[
            quota_pb2.ReserveResult(
                grant_id=r.grant_id,
                status=status.OK if r.error is None else status.to_status(r.error),
                institution=r.institution,
                preemptible=r.preemptible,
                warnings=r.warnings,
            )
            for r in results
        ]
    )


def grant_id_results(results: Iterable[GrantIdResult]) -> list[Any]:
    return [
        quota_pb2.GrantIdResult(grant_id=r.grant_id, status=status.OK if r.error is None else status.to_status(r.error))
        for r in results
    ]


def timestamp(ms: int) -> Timestamp:
    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def held_reservations(values: Iterable[HeldReservation]) -> Any:
    return quota_pb2.ListReservationsResponse(
        reservations=[
            quota_pb2.HeldReservation(
                grant_id=r.grant_id,
                project=r.project,
                sku=r.sku,
                count=r.count,
                phase=_PHASE[r.phase],
                created_at=timestamp(r.created_ms),
                shape=r.shape,
                preemptible=r.preemptible,
                user=r.user,
            )
            for r in values
        ]
    )


# -- the tenant tree, quota, budgets, fair share ----------------------------------------------------

_KIND = {
    NodeKind.COHORT: quota_pb2.TENANT_KIND_COHORT,
    NodeKind.INSTITUTION: quota_pb2.TENANT_KIND_INSTITUTION,
    NodeKind.PROJECT: quota_pb2.TENANT_KIND_PROJECT,
    NodeKind.USER: quota_pb2.TENANT_KIND_USER,
}
_KIND_BACK = {v: k for k, v in _KIND.items()}
_STATE = {
    NodeState.ACTIVE: quota_pb2.TENANT_STATE_ACTIVE,
    NodeState.ON_HOLD: quota_pb2.TENANT_STATE_ON_HOLD,
    NodeState.CLOSED: quota_pb2.TENANT_STATE_CLOSED,
}
_STATE_BACK = {v: k for k, v in _STATE.items()} | {quota_pb2.TENANT_STATE_UNSPECIFIED: NodeState.ACTIVE}
_PRIORITY_BACK = {
    quota_pb2.PRIORITY_CLASS_UNSPECIFIED: Priority.STANDARD,
    quota_pb2.PRIORITY_CLASS_GUARANTEED: Priority.GUARANTEED,
    quota_pb2.PRIORITY_CLASS_STANDARD: Priority.STANDARD,
    quota_pb2.PRIORITY_CLASS_PREEMPTIBLE: Priority.PREEMPTIBLE,
}
_MODE = {BudgetMode.SOFT: quota_pb2.BUDGET_MODE_SOFT, BudgetMode.HARD: quota_pb2.BUDGET_MODE_HARD}


def expected(request: Any) -> int | None:
    return request.expected_generation if request.HasField("expected_generation") else None


def _enum(field: str, value: int, table: Mapping[Any, T]) -> T:
    if value not in table:
        raise InvalidArgument(field, f"must be one of {sorted(table)}, not {value}")
    return table[value]


def node_kind(value: int) -> NodeKind | None:
    """A listing filter: unspecified lists every kind."""
    return None if value == quota_pb2.TENANT_KIND_UNSPECIFIED else _enum("kind", value, _KIND_BACK)


def priority(value: int, field: str) -> Priority:
    return _enum(field, value, _PRIORITY_BACK)


def node_spec(request: Any) -> NodeSpec:
    return NodeSpec(
        id=request.id,
        kind=_enum("kind", request.kind, _KIND_BACK),
        parent=request.parent,
        state=_enum("state", request.state, _STATE_BACK),
        display_name=request.display_name,
        weight=request.weight or 1.0,
        expected_generation=expected(request),
    )


def quota_entries(request: Any) -> dict[str, QuotaEntry | None]:
    entries: dict[str, QuotaEntry | None] = {}
    for i, e in enumerate(request.entries):
        f = f"entries[{i}]"
        if e.resource_class in entries:
            raise InvalidArgument(f"{f}.resource_class", f"{e.resource_class} is listed twice")
        entries[e.resource_class] = QuotaEntry(
            nominal=check_amount(f"{f}.nominal", e.nominal, ZERO),
            borrowing_limit=check_amount(f"{f}.borrowing_limit", e.borrowing_limit, UNLIMITED),
            lending_limit=check_amount(f"{f}.lending_limit", e.lending_limit, UNLIMITED),
            hard_cap=check_amount(f"{f}.hard_cap", e.hard_cap, UNLIMITED),
        )
    for i, cls in enumerate(request.remove):
        if cls in entries:
            raise InvalidArgument(f"remove[{i}]", f"{cls} is both set and removed")
        entries[cls] = None
    return entries


def _amount(a: Amount) -> str:
    return "" if a.unlimited else str(a)


# Far beyond any award (a million accelerator-years), and small enough that the milli-hours stay
# exact in Redis' integers and Lua's doubles.
_MAX_HOURS = 1e10


def _mh(hours: float, field: str) -> int:
    if not math.isfinite(hours) or not 0 <= hours <= _MAX_HOURS:
        raise InvalidArgument(field, f"must be a number of hours between 0 and {_MAX_HOURS:g}, not {hours}")
    return round(hours * MH_PER_HOUR)


def _ms(ts: Timestamp) -> int:
    return ts.seconds * 1000 + ts.nanos // 1_000_000


def budget(request: Any) -> Budget | None:
    if not request.HasField("budget"):
        return None
    b = request.budget
    mode = _enum("budget.mode", b.mode, {v: k for k, v in _MODE.items()})
    return Budget(
        mode=mode,
        start_ms=_ms(b.start),
        end_ms=_ms(b.end),
        expiry_ms=_ms(b.expiry) if b.HasField("expiry") else _ms(b.end),
        award_mh=_mh(b.award_hours, "budget.award_hours"),
        carry_mh=_mh(b.carry_over_hours, "budget.carry_over_hours"),
        topups_mh=_mh(b.top_up_hours, "budget.top_up_hours"),
        carry_max_mh=_mh(b.carry_over_max_hours, "budget.carry_over_max_hours"),
        renews=b.renews,
    )


def top_up_mh(request: Any) -> int:
    return _mh(request.hours, "hours")


def burn_events(request: Any) -> list[BurnEvent]:
    return [
        BurnEvent(e.event_id, e.project, _mh(e.accelerator_hours, f"events[{i}].accelerator_hours"))
        for i, e in enumerate(request.events)
    ]


def tenant(n: TenantNode, warnings: Sequence[str] = ()) -> Any:
    out = quota_pb2.Tenant(
        id=n.id,
        kind=_KIND[n.kind],
        parent=n.parent,
        state=_STATE[n.state],
        display_name=n.display_name,
        weight=n.weight,
        generation=n.generation,
        quotas=[quota_entry_pb(cls, e) for cls, e in n.entries.items()],
        burned_hours=n.burned_mh / MH_PER_HOUR,
        warnings=list(warnings),
    )
    if n.budget is not None:
        out.budget.CopyFrom(budget_pb(n.budget))
    return out


def quota_entry_pb(cls: str, e: QuotaEntry) -> Any:
    return quota_pb2.QuotaEntry(
        resource_class=cls,
        nominal=str(e.nominal),
        borrowing_limit=_amount(e.borrowing_limit),
        lending_limit=_amount(e.lending_limit),
        hard_cap=_amount(e.hard_cap),
    )


def budget_pb(b: Budget) -> Any:
    return quota_pb2.Budget(
        mode=_MODE[b.mode],
        start=timestamp(b.start_ms),
        end=timestamp(b.end_ms),
        expiry=timestamp(b.expiry_ms),
        award_hours=b.award_mh / MH_PER_HOUR,
        carry_over_hours=b.carry_mh / MH_PER_HOUR,
        top_up_hours=b.topups_mh / MH_PER_HOUR,
        carry_over_max_hours=b.carry_max_mh / MH_PER_HOUR,
        renews=b.renews,
    )


def tenants(values: Iterable[TenantNode]) -> Any:
    return quota_pb2.ListTenantsResponse(tenants=[tenant(v) for v in values])


def standings(values: Iterable[Standing]) -> Any:
    out = []
    for s in values:
        item = quota_pb2.Standing(
            tenant=tenant(s.node),
            entitlement={c: format_units(u) for c, u in s.node.subtree_quota.items()},
            in_use={r: format_units(u) for r, u in s.node.usage.items()},
            borrowed={r: format_units(u) for r, u in s.node.borrowed.items()},
            fair_share=s.fair_share,
        )
        if s.budget_left_mh is not None:
            item.budget_left_hours = s.budget_left_mh / MH_PER_HOUR
        if s.exhaustion_ms is not None:
            item.projected_exhaustion.CopyFrom(timestamp(s.exhaustion_ms))
        out.append(item)
    return quota_pb2.GetStandingsResponse(standings=out)


def pending(request: Any) -> list[Pending]:
    """Pending requests with their charges; a bad item is refused naming its field."""
    check_batch("requests", request.requests)
    # A queue holds many requests of few shapes: each (sku, shape, count) is checked and charged once.
    charged: dict[tuple[str, str, int], Mapping[str, int]] = {}
    out = []
    for i, r in enumerate(request.requests):
        key = (r.sku, r.shape, r.count)
        charges = charged.get(key)
        if charges is None:
            check_sku(f"requests[{i}].sku", r.sku)
            count = check_int(f"requests[{i}].count", r.count or 1, 1, MAX_COUNT)
            charges = charged[key] = shared_charges(r.sku, r.shape, count, field=f"requests[{i}].shape")
        out.append(Pending(r.id, r.project, charges))
    return out


def commitments(rows: Iterable[Commitment]) -> Any:
    return quota_pb2.CheckCapacityResponse(
        classes=[
            quota_pb2.ClassCommitment(
                resource_class=c.resource_class,
                guaranteed=format_units(c.guaranteed),
                capacity=format_units(c.capacity),
                over_committed=c.over_committed,
                over_by=format_units(c.over_by),
            )
            for c in rows
        ]
    )
