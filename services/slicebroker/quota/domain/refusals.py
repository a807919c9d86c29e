"""Turning a store's reserve outcome into the caller's answer: a refusal names the limit that
refused (which node, which resource, by how much) in words and in `ErrorInfo` metadata."""

from __future__ import annotations

from slicebroker.core.errors import FailedPrecondition, NotFound, ResourceExhausted, SlicebrokerError
from slicebroker.core.reasons import Reason
from slicebroker.quota.domain.amount import format_units
from slicebroker.quota.domain.budget import MH_PER_HOUR
from slicebroker.quota.domain.model import ReservationRequest, ReserveResult
from slicebroker.quota.domain.store import ReserveOutcome, ReserveStatus

_LIMIT_WORDS = {
    "hard_cap": "hard cap",
    "borrowing_limit": "borrowing limit",
    "nominal": "quota (nothing left to borrow in its cohort)",
    "no_quota": "quota (no quota for this SKU anywhere on its path)",
}


def _hours(mh: int) -> str:
    return f"{mh / MH_PER_HOUR:g} h"


def refusal(item: ReservationRequest, outcome: ReserveOutcome) -> ReserveResult:
    error: SlicebrokerError
    match outcome.status:
        case ReserveStatus.OK:
            warnings = tuple(
                f"soft budget of {node} is used up ({_hours(int(left))} left)"
                for node, _, left in (w.partition(":") for w in outcome.warnings)
            )
            return ReserveResult(item.grant_id, None, outcome.institution, outcome.preemptible, warnings)
        case ReserveStatus.PROJECT_NOT_FOUND:
            error = NotFound(
                f"no project {item.project!r}", reason=Reason.PROJECT_NOT_FOUND, metadata={"project": item.project}
            )
        case ReserveStatus.NOT_ACTIVE:
            error = FailedPrecondition(
                f"{outcome.node} is {outcome.state.replace('_', ' ')}: it takes no new grants",
                reason=Reason.TENANT_NOT_ACTIVE,
                metadata={"tenant": outcome.node, "state": outcome.state},
            )
        case ReserveStatus.BUDGET_EXHAUSTED:
            error = ResourceExhausted(
                f"the budget of {outcome.node} is used up ({_hours(outcome.left_mh)} left); a top-up re-opens it",
                reason=Reason.BUDGET_EXHAUSTED,
                metadata={"budget": outcome.node, "left_mh": outcome.left_mh},
            )
        case ReserveStatus.MISMATCH:
            error = FailedPrecondition(
                f"grant {item.grant_id} already reserves {outcome.held_count} {outcome.held_sku} for "
                f"project {outcome.held_project}; this request asks {item.count} {item.sku} for project "
                f"{item.project}",
                reason=Reason.RESERVATION_MISMATCH,
                metadata={
                    "grant_id": item.grant_id,
                    "held_project": outcome.held_project,
                    "held_sku": outcome.held_sku,
                    "held_count": outcome.held_count,
                },
            )
        case ReserveStatus.QUOTA_EXCEEDED:
            short = outcome.requested - outcome.available
            # Within its own quota: what is missing is lent to borrowers, who may be preempted.
            reclaim = {"reclaimable": "1", "pool": outcome.node} if outcome.reclaimable else {}
            error = ResourceExhausted(
                f"{item.count} {item.sku}{' ' + item.shape if item.shape else ''} for project {item.project}: "
                f"the {_LIMIT_WORDS.get(outcome.limit, outcome.limit)} of {outcome.node} on {outcome.resource} "
                f"leaves {format_units(outcome.available)}, {format_units(short)} short"
                + (f"; within its own quota, lent to borrowers in {outcome.node}" if reclaim else ""),
                reason=Reason.QUOTA_EXCEEDED,
                # "limit" is the most the node may hold now (in use + available), in devices, as
                # before limits had kinds; "limit_kind" says which limit it is.
                metadata=reclaim
                | {
                    "project": item.project,
                    "sku": item.sku,
                    "limit": format_units(outcome.in_use + outcome.available),
                    "limit_kind": outcome.limit,
                    "in_use": format_units(outcome.in_use),
                    "node": outcome.node,
                    "resource": outcome.resource,
                    "requested": format_units(outcome.requested),
                    "available": format_units(outcome.available),
                    "short_by": format_units(short),
                },
            )
    return ReserveResult(item.grant_id, error)
