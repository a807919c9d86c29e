"""`QuotaService`: the quota service's application logic over a `QuotaStore`.

Every method validates all of its input before the store is touched, so a refused call changes
nothing. Batch verbs hand the whole batch to the store, which applies it in one atomic Lua call;
each item then gets its own answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from slicebroker.core.errors import FailedPrecondition, NotFound, SlicebrokerError
from slicebroker.core.ids import check_name
from slicebroker.core.reasons import Reason
from slicebroker.quota.domain.caps import quota_exceeded
from slicebroker.quota.domain.model import (
    GrantIdResult,
    HeldReservation,
    Institution,
    InstitutionSpec,
    Project,
    ProjectSpec,
    ReservationRequest,
    ReserveResult,
)
from slicebroker.quota.domain.store import CommitStatus, QuotaStore, ReserveOutcome, ReserveStatus
from slicebroker.quota.domain.validation import (
    validate_grant_ids,
    validate_institution,
    validate_project,
    validate_reservations,
)

# How many expired reservations one sweep call releases; larger backlogs take several calls.
SWEEP_BATCH = 1000


class QuotaService:
    def __init__(self, store: QuotaStore, *, sweep_batch: int = SWEEP_BATCH) -> None:
        self._store = store
        self._sweep_batch = sweep_batch

    # -- tenants ---------------------------------------------------------------------------------

    async def upsert_institution(self, spec: InstitutionSpec) -> Institution:
        return await self._store.upsert_institution(validate_institution(spec))

    async def list_institutions(self) -> list[Institution]:
        return await self._store.list_institutions()

    async def upsert_project(self, spec: ProjectSpec) -> Project:
        project = await self._store.upsert_project(validate_project(spec))
        if project is None:
            raise _institution_not_found(spec.institution)
        return project

    async def get_project(self, project_id: str) -> Project:
        check_name("id", project_id)
        (project,) = await self._store.get_projects([project_id])
        if project is None:
            raise NotFound(
                f"no project {project_id!r}",
                reason=Reason.PROJECT_NOT_FOUND,
                metadata={"project": project_id},
            )
        return project

    async def list_projects(self, institution: str = "") -> list[Project]:
        """All projects, or those of one institution (which must exist, so a typo is not an empty list)."""
        if not institution:
            return await self._store.list_projects()
        check_name("institution", institution)
        if not await self._store.institution_exists(institution):
            raise _institution_not_found(institution)
        return [p for p in await self._store.list_projects() if p.institution == institution]

    # -- reservations ----------------------------------------------------------------------------

    async def reserve(self, items: Sequence[ReservationRequest], now_ms: int) -> list[ReserveResult]:
        """Holds devices against each item's project cap, each item on its own.

        1. Validate every item; one bad item refuses the whole call before anything is written.
        2. One store call applies the batch (idempotent per grant id).
        3. Reservations whose TTL passed still count against their project until swept, which can
           refuse an item that would fit. Only then is it worth a sweep: if it released anything,
           the refused items are tried once more. Counting unswept reservations is the safe side
           of the race: a project can be refused a moment too early, never let over its cap.
        """
        validate_reservations(items)
        if not items:
            return []
        outcomes = await self._store.reserve(items, now_ms)
        refused = [i for i, o in enumerate(outcomes) if o.status is ReserveStatus.QUOTA_EXCEEDED]
        if refused and await self._store.sweep(now_ms, self._sweep_batch):
            retried = await self._store.reserve([items[i] for i in refused], now_ms)
            for i, outcome in zip(refused, retried, strict=True):
                outcomes[i] = outcome
        return [_reserve_result(item, o) for item, o in zip(items, outcomes, strict=True)]

    async def commit(self, grant_ids: Sequence[str], now_ms: int) -> list[GrantIdResult]:
        validate_grant_ids(grant_ids)
        if not grant_ids:
            return []
        statuses = await self._store.commit(grant_ids, now_ms)
        return [GrantIdResult(g, _commit_error(g, s)) for g, s in zip(grant_ids, statuses, strict=True)]

    async def cancel(self, grant_ids: Sequence[str], now_ms: int) -> list[GrantIdResult]:
        """Ends reservations in either phase; an unknown or already cancelled grant id is fine."""
        validate_grant_ids(grant_ids)
        if grant_ids:
            await self._store.cancel(grant_ids, now_ms)
        return [GrantIdResult(g, None) for g in grant_ids]

    async def list_reservations(self, now_ms: int) -> list[HeldReservation]:
        """Everything held now. Lapsed reservations are swept first, so the reconciler does not
        act on reservations that are about to vanish anyway."""
        await self.sweep(now_ms)
        return await self._store.list_reservations()

    async def sweep(self, now_ms: int) -> int:
        """Releases every reservation whose TTL passed by `now_ms`; how many were released."""
        released = 0
        while True:
            batch = await self._store.sweep(now_ms, self._sweep_batch)
            released += len(batch)
            if len(batch) < self._sweep_batch:
                return released


def _institution_not_found(institution: str) -> NotFound:
    return NotFound(
        f"no institution {institution!r}",
        reason=Reason.INSTITUTION_NOT_FOUND,
        metadata={"institution": institution},
    )


def _reserve_result(item: ReservationRequest, outcome: ReserveOutcome) -> ReserveResult:
    error: SlicebrokerError
    match outcome.status:
        case ReserveStatus.OK:
            return ReserveResult(item.grant_id, None, outcome.institution)
        case ReserveStatus.PROJECT_NOT_FOUND:
            error = NotFound(
                f"no project {item.project!r}",
                reason=Reason.PROJECT_NOT_FOUND,
                metadata={"project": item.project},
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
            error = quota_exceeded(item.project, item.sku, outcome.cap, outcome.in_use, item.count)
    return ReserveResult(item.grant_id, error)


def _commit_error(grant_id: str, status: CommitStatus) -> SlicebrokerError | None:
    match status:
        case CommitStatus.OK:
            return None
        case CommitStatus.NOT_FOUND:
            return NotFound(
                f"grant {grant_id} holds no reservation (never reserved, or cancelled)",
                reason=Reason.RESERVATION_NOT_FOUND,
                metadata={"grant_id": grant_id},
            )
        case CommitStatus.EXPIRED:
            return FailedPrecondition(
                f"the reservation of grant {grant_id} lapsed before it was committed; its devices were returned",
                reason=Reason.RESERVATION_EXPIRED,
                metadata={"grant_id": grant_id},
            )
