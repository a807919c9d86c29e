"""The grant path: request → pending record → (reserve quota ‖ place and claim) → commit →
active, and the ways a grant ends. Every step is idempotent by grant id, so anything a crash
interrupts is finished or undone by the repair loops (`repair.py`).

Concurrent requests share calls: reservations, commits and cancellations to quota, claims and
releases to inventory, and activations in the store each go out in batches.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slicebroker.broker.domain.model import (
    Choice,
    EndReason,
    EventType,
    Grant,
    GrantEvent,
    GrantRequest,
    GrantState,
    SkuShapes,
    Slice,
)
from slicebroker.broker.domain.placer import Placed, Placer
from slicebroker.broker.domain.ports import GrantStore, QuotaPort, Reserved, ReserveItem
from slicebroker.broker.domain.preemption import Reclaim
from slicebroker.broker.domain.snapshot import ANYWHERE, Topology
from slicebroker.broker.domain.validation import check_lease, validate_request
from slicebroker.core.batching import Batcher
from slicebroker.core.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    SlicebrokerError,
    Unavailable,
)
from slicebroker.core.ids import check_grant_id, check_name, new_grant_id
from slicebroker.core.reasons import Reason

log = logging.getLogger("slicebroker.broker")

# Who may act on what: called with an (institution, project) before anything is done for a caller;
# raises (PermissionDenied) to refuse. None: the caller may act on everything (admins, services).
Access = Callable[[str, str], None] | None


@dataclass(frozen=True, slots=True)
class GrantLimits:
    max_count: int = 4096
    max_lease_ms: int = 30 * 24 * 3600 * 1000
    reservation_ttl_s: int = 60
    max_page_size: int = 1000
    default_page_size: int = 100
    # How long a replay waits for the first request with its key to settle.
    replay_wait_ms: int = 15_000
    # How far ahead a request may ask to start, and how far in the past a start_after may lie
    # (clock skew between client and broker) before it is refused.
    max_start_after_ms: int = 30 * 24 * 3600 * 1000
    clock_skew_ms: int = 60_000


class GrantService:
    def __init__(
        self,
        store: GrantStore,
        quota: QuotaPort,
        placer: Placer,
        catalogue: Callable[[], Mapping[str, SkuShapes]],
        clock: Callable[[], int],
        limits: GrantLimits = GrantLimits(),
        failpoint: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._quota = quota
        self._placer = placer
        self._catalogue = catalogue
        self._clock = clock
        self._limits = limits
        # A test hook called with the name of each step of the grant path as it is passed
        # (see BrokerSettings.failpoint): fault tests make the process die there.
        self._failpoint = failpoint or _no_failpoint
        self._inflight: dict[str, asyncio.Future[Grant]] = {}
        # Set when capacity may have appeared (a release here, an inventory change): wakes dispatch.
        self.capacity_changed = asyncio.Event()
        # SKU -> estimated start (ms, or None if unknown) of the queue's blocked head, as the
        # dispatcher last saw it. Fresh requests must not take what the head is waiting for.
        self.blocked_heads: dict[str, int | None] = {}
        # Queued requests that wait for quota lent to borrowers (quota said `reclaimable` when this
        # replica last tried them): the dispatcher reclaims it for them (see `preemption.py`).
        self.reclaims: dict[str, Reclaim] = {}
        self._institutions: dict[str, str] = {}
        self._reserve: Batcher[ReserveItem, Reserved | SlicebrokerError] = Batcher(quota.reserve, max_in_flight=1)
        self._commit: Batcher[str, SlicebrokerError | None] = Batcher(quota.commit, max_in_flight=1)
        # Cancelling is idempotent; an error here (other than unavailability) is not the caller's.
        self._cancel: Batcher[str, SlicebrokerError | None] = Batcher(quota.cancel, max_in_flight=1)
        self._activate = Batcher(self._store.activate, max_in_flight=1)
        self._begin = Batcher(self._store.begin, max_in_flight=1)
        self._end = Batcher(self._store.end, max_in_flight=1)
        self._cleaned: Batcher[str, None] = Batcher(self._flush_cleaned, max_in_flight=1)
        self._get = Batcher(self._store.get_many, max_in_flight=1)

    @property
    def limits(self) -> GrantLimits:
        return self._limits

    async def close(self) -> None:
        for batcher in (
            self._reserve,
            self._commit,
            self._cancel,
            self._activate,
            self._begin,
            self._end,
            self._cleaned,
        ):
            await batcher.close()

    # -- requests ------------------------------------------------------------------------------
    async def request_grant(
        self,
        *,
        project: str,
        sku: str,
        count: int,
        lease_ms: int,
        idempotency_key: str,
        alternatives: Sequence[tuple[str, int]] = (),
        topology: Topology = ANYWHERE,
        priority: str = "",
        queue: bool = False,
        shape: tuple[str, str, int, int] = ("", "", 0, 0),
        host: tuple[int, int] = (0, 0),
        access: Access = None,
        start_after_ms: int = 0,
        user: str = "",
    ) -> Grant:
        request = validate_request(
            project=project,
            sku=sku,
            count=count,
            lease_ms=lease_ms,
            idempotency_key=idempotency_key,
            known_skus=self._catalogue().keys(),
            max_count=self._limits.max_count,
            max_lease_ms=self._limits.max_lease_ms,
            alternatives=alternatives,
            topology=topology,
            priority=priority,
            queue=queue,
            shape=shape,
            host=host,
            catalogue=self._catalogue(),
            start_after_ms=start_after_ms,
            now_ms=self._clock(),
            max_start_after_ms=self._limits.max_start_after_ms,
            clock_skew_ms=self._limits.clock_skew_ms,
        )
        if access is not None:
            access(await self.institution_of(request.project), request.project)
        deadline = self._clock() + self._limits.replay_wait_ms
        while True:
            now = self._clock()
            grant = Grant(
                id=new_grant_id(now),
                project=request.project,
                sku=request.sku,
                count=request.count,
                lease_ms=request.lease_ms,
                idempotency_key=request.idempotency_key,
                state=GrantState.PENDING,
                created_ms=now,
                topology=request.topology,
                priority=request.priority,
                choices=request.choices,
                queue=request.queue,
                shape=request.shape,
                host=request.host,
                start_after_ms=request.start_after_ms,
                user=user,
            )
            existing_id = await self._begin.submit(grant)
            if existing_id is None:
                self._failpoint("after-begin")
                return await self._complete(grant)
            settled = await self._settled(existing_id, request, deadline)
            if settled is not None:
                return settled
            # The first request with this key was refused and left nothing behind: try anew.

    async def _settled(self, grant_id: str, request: GrantRequest, deadline_ms: int) -> Grant | None:
        """The outcome of the grant first made under a replayed key; None if it was abandoned."""
        while True:
            inflight = self._inflight.get(grant_id)
            if inflight is not None:
                try:
                    return await asyncio.shield(inflight)
                except SlicebrokerError:
                    return None
            grant = await self._store.get(grant_id)
            if grant is None:
                return None
            if not grant.same_request(request):
                raise FailedPrecondition(
                    f"idempotency key {request.idempotency_key!r} was used for a different request "
                    f"({grant.count} x {grant.sku} for {grant.project})",
                    reason=Reason.IDEMPOTENCY_KEY_REUSED,
                    metadata={"grant_id": grant.id},
                )
            if grant.state is GrantState.FAILED:
                # Failed (a crash interrupted it): its key was freed, so the replay is a fresh attempt.
                return None
            if grant.state is not GrantState.PENDING:
                return grant
            if self._clock() >= deadline_ms:
                raise Unavailable(
                    f"grant {grant_id} for this idempotency key is still being granted; retry",
                    metadata={"grant_id": grant_id},
                )
            await asyncio.sleep(0.02)

    async def serve_queued(self, grant: Grant) -> Grant:
        """Tries a request taken off the queue once more: it comes back active, queued again (with
        why it still waits), or raises why it failed for good."""
        return await self._complete(grant.with_(state=GrantState.PENDING), dispatching=True)

    async def _complete(self, grant: Grant, *, dispatching: bool = False) -> Grant:
        future: asyncio.Future[Grant] = asyncio.get_running_loop().create_future()
        self._inflight[grant.id] = future
        try:
            result = await self._grant(grant, dispatching=dispatching)
            future.set_result(result)
            return result
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: there may be no replay waiting on it
            raise
        except BaseException:
            future.cancel()
            raise
        finally:
            del self._inflight[grant.id]

    async def _grant(self, grant: Grant, *, dispatching: bool = False) -> Grant:
        # 0. Asked to start later: it waits aside, and quota is asked when it is due.
        self.reclaims.pop(grant.id, None)  # what quota says this time stands
        now = self._clock()
        if grant.start_after_ms > now:
            reason = f"waiting to start after {_instant(grant.start_after_ms)}"
            if await self._store.enqueue(grant, reason, announce=not dispatching, now_ms=now):
                return grant.with_(state=GrantState.QUEUED, waiting_reason=reason)
            raise Unavailable(f"grant {grant.id} changed while being queued; retry")
        # 1. Each acceptable accelerator in turn: quota and inventory are asked at the same time,
        #    each step idempotent by grant id; a refusal undoes whichever half succeeded.
        refusals: list[SlicebrokerError] = []
        for choice in grant.choices or (Choice(grant.sku, grant.count),):
            attempt = grant.with_(sku=choice.sku, count=choice.count)
            item = ReserveItem(
                attempt.id,
                attempt.project,
                choice.sku,
                choice.count,
                self._limits.reservation_ttl_s,
                grant.priority,
                grant.shape.quota_shape,
                grant.user,
            )
            if not dispatching and self._behind_the_queue(choice.sku, grant.lease_ms):
                # Capacity is promised to the queue's head; quota still decides whether this
                # request may wait at all (an over-quota request is refused, never queued).
                try:
                    await self._reserve.submit(item)
                except SlicebrokerError as err:
                    refusals.append(err)
                    continue
                await self._cancel.submit(attempt.id)
                refusals.append(
                    ResourceExhausted(
                        f"{choice.count} x {choice.sku}: queued requests come first",
                        reason=Reason.INSUFFICIENT_CAPACITY,
                        metadata={"sku": choice.sku, "requested": choice.count},
                    )
                )
                continue
            reserved, placed = await asyncio.gather(
                self._reserve_one(item),
                self._placer.place(attempt.id, choice.sku, choice.count, grant.topology, grant.shape, grant.host),
                return_exceptions=True,
            )
            if isinstance(reserved, Reserved) and isinstance(placed, tuple):
                return await self._activate_grant(attempt, reserved, placed)
            await self._undo(attempt, reserved_ok=isinstance(reserved, Reserved), placed_ok=isinstance(placed, tuple))
            for outcome in (reserved, placed):
                if isinstance(outcome, SlicebrokerError):
                    refusals.append(outcome)
                    break  # quota's refusal says more than inventory's when both refuse
                if isinstance(outcome, BaseException):
                    raise outcome
        refusal = _explain(refusals, grant)
        # 2a. Within quota but no room now, or within its own quota but that is lent to borrowers
        #     (who may be preempted for it), and the caller will wait: into the queue.
        reclaims = [r for r in map(Reclaim.of, refusals) if r is not None]
        if grant.queue and all(r.reason is Reason.INSUFFICIENT_CAPACITY or Reclaim.of(r) for r in refusals):
            reason = f"waiting: {refusal.message}"
            if reclaims:
                reclaim = self.reclaims[grant.id] = reclaims[0]
                reason = (
                    f"waiting for {reclaim.short_by_text} {reclaim.sku} of its guaranteed quota lent to other "
                    f"projects of {reclaim.pool}"
                )
            # A guaranteed request may preempt: the dispatcher's next pass (within its interval)
            # plans that, against everything queued at once.
            if await self._store.enqueue(grant, reason, announce=not dispatching, now_ms=self._clock()):
                rank = await self._store.queue_rank(grant.id)
                return grant.with_(state=GrantState.QUEUED, waiting_reason=reason, queue_position=(rank or 0) + 1)
        # 2b. Refused: a request taken from the queue fails (its owner knows its id); a fresh
        #     one is forgotten, as if never asked. Either way the caller learns why.
        if dispatching:
            await self._store.fail(grant.id, self._clock(), f"failed: {refusal.message}")
        else:
            await self._store.abandon(grant)
        raise refusal

    async def _reserve_one(self, item: ReserveItem) -> Reserved | SlicebrokerError:
        reserved = await self._reserve.submit(item)
        if isinstance(reserved, Reserved):
            self._failpoint("after-reserve")
        return reserved

    def _behind_the_queue(self, sku: str, lease_ms: int) -> bool:
        """A fresh request for what a queued head waits for goes behind it, unless its lease ends
        before the head's estimated start (then it cannot delay the head: backfill)."""
        if sku not in self.blocked_heads:
            return False
        eta = self.blocked_heads[sku]
        return eta is None or self._clock() + lease_ms > eta

    async def _activate_grant(self, grant: Grant, reserved: Reserved, placed: Placed) -> Grant:
        # 2b. Both halves hold: make the reservation permanent, then the grant visible.
        self._failpoint("after-claim")
        committed = await self._commit.submit(grant.id)
        if committed is not None:
            await self._undo(grant, reserved_ok=True, placed_ok=True)
            await self._store.abandon(grant)
            raise Unavailable(f"quota commit failed: {committed.message}", reason=committed.reason)
        self._failpoint("after-commit")
        now = self._clock()
        active = grant.with_(
            state=GrantState.ACTIVE,
            institution=reserved.institution,
            preemptible=reserved.preemptible,
            warnings=reserved.warnings,
            slices=_slices(placed),
            expires_ms=now + grant.lease_ms,
            started_ms=now,
        )
        if not await self._activate.submit((active, GrantEvent.of(active, EventType.GRANTED, now))):
            # The reconciler gave up on this grant while we were slow; it also cleans up.
            await self._undo(grant, reserved_ok=True, placed_ok=True)
            raise Unavailable("grant took too long and was failed by the reconciler; retry")
        self._failpoint("after-activate")
        return active

    async def _undo(self, grant: Grant, *, reserved_ok: bool, placed_ok: bool) -> None:
        if placed_ok:
            await self._placer.release([grant.id])
        if reserved_ok:
            await self._cancel.submit(grant.id)

    # -- reads ---------------------------------------------------------------------------------
    async def institution_of(self, project: str) -> str:
        """The institution a project belongs to (projects do not change hands; cached)."""
        known = self._institutions.get(project)
        if known is None:
            known = self._institutions[project] = await self._quota.institution_of(project)
        return known

    async def get_grant(self, grant_id: str, access: Access = None) -> Grant:
        grant = await self._load(grant_id)
        if access is not None:
            access(grant.institution or await self.institution_of(grant.project), grant.project)
        return grant

    async def _load(self, grant_id: str) -> Grant:
        check_grant_id("id", grant_id)
        grant = await self._get.submit(grant_id)
        if grant is None:
            raise NotFound(f"no grant {grant_id}", reason=Reason.GRANT_NOT_FOUND, metadata={"id": grant_id})
        if grant.state is GrantState.QUEUED:
            # Not in the queue yet (asked to start later): no position.
            rank = await self._store.queue_rank(grant_id)
            grant = grant.with_(queue_position=0 if rank is None else rank + 1)
        return grant

    async def list_grants(
        self,
        *,
        project: str,
        state: GrantState | None,
        page_size: int,
        page_token: str,
        access: Access = None,
    ) -> tuple[list[Grant], str]:
        if project:
            check_name("project", project)
        if page_size < 0 or page_size > self._limits.max_page_size:
            raise InvalidArgument("page_size", f"must be between 0 and {self._limits.max_page_size}")
        if page_token:
            check_grant_id("page_token", page_token)
        if access is not None and project:
            access(await self.institution_of(project), project)
        grants, token = await self._store.page(project, state, page_size or self._limits.default_page_size, page_token)
        if access is not None and not project:
            # Only what the caller may see; a page may come back short, the token still goes on.
            grants = [
                g for g in grants if _allowed(access, g.institution or await self.institution_of(g.project), g.project)
            ]
        return grants, token

    # -- lifecycle -----------------------------------------------------------------------------
    async def renew_grant(self, grant_id: str, lease_ms: int, access: Access = None) -> Grant:
        check_grant_id("id", grant_id)
        check_lease("lease", lease_ms, self._limits.max_lease_ms)
        if access is not None:
            await self.get_grant(grant_id, access)
        now = self._clock()
        state = await self._store.renew(grant_id, now, now + lease_ms)
        if not state:
            raise NotFound(f"no grant {grant_id}", reason=Reason.GRANT_NOT_FOUND, metadata={"id": grant_id})
        if state != GrantState.ACTIVE:
            raise FailedPrecondition(
                f"grant {grant_id} is {state}; only active grants can be renewed",
                reason=Reason.GRANT_NOT_ACTIVE,
                metadata={"id": grant_id, "state": state},
            )
        return await self.get_grant(grant_id)

    async def release_grant(self, grant_id: str, access: Access = None) -> Grant:
        grant = await self.get_grant(grant_id, access)
        if grant.state is GrantState.PENDING:
            raise FailedPrecondition(
                f"grant {grant_id} is still being granted; release it once it is active",
                reason=Reason.GRANT_NOT_ACTIVE,
                metadata={"id": grant_id, "state": grant.state},
            )
        now = self._clock()
        if grant.state is GrantState.QUEUED:
            await self._store.cancel_queued(grant_id, now)
            self.reclaims.pop(grant_id, None)
        elif grant.state is GrantState.ACTIVE and await self.end_grants([grant], EndReason.RELEASED, now_ms=now):
            return grant.with_(state=GrantState.ENDED, ended_ms=now, end_reason=EndReason.RELEASED.value)
        return await self.get_grant(grant_id)

    async def end_grants(
        self, grants: Sequence[Grant], reason: EndReason, *, expired_by_ms: int = 0, now_ms: int = 0
    ) -> list[str]:
        """Ends active grants and returns their devices and quota. Returns the ids this call ended."""
        now = now_ms or self._clock()
        outcomes = await asyncio.gather(
            *(self._end.submit((g, GrantEvent.of(g, EventType.ENDED, now, reason), expired_by_ms)) for g in grants)
        )
        ended = [g.id for g, ok in zip(grants, outcomes, strict=True) if ok]
        if ended:
            self._failpoint("during-release")
        await self.return_resources(ended)
        return ended

    async def return_resources(self, grant_ids: Sequence[str]) -> None:
        """Frees what ended grants hold in inventory and quota; safe to repeat."""
        if not grant_ids:
            return
        await asyncio.gather(self._placer.release(grant_ids), *(self._cancel.submit(g) for g in grant_ids))
        await asyncio.gather(*(self._cleaned.submit(g) for g in grant_ids))
        self.capacity_changed.set()  # queued requests may fit now

    def check_request(self, **fields: Any) -> GrantRequest:
        """A request validated as `request_grant` validates it, nothing written (for quotes)."""
        return validate_request(
            known_skus=self._catalogue().keys(),
            max_count=self._limits.max_count,
            max_lease_ms=self._limits.max_lease_ms,
            catalogue=self._catalogue(),
            max_start_after_ms=self._limits.max_start_after_ms,
            clock_skew_ms=self._limits.clock_skew_ms,
            **fields,
        )

    # -- batch flushes -------------------------------------------------------------------------
    async def _flush_cleaned(self, grant_ids: list[str]) -> Sequence[None]:
        await self._store.cleaned(grant_ids)
        return [None] * len(grant_ids)


def _no_failpoint(step: str) -> None:
    pass


def _instant(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _allowed(access: Callable[[str, str], None], institution: str, project: str) -> bool:
    try:
        access(institution, project)
    except SlicebrokerError:
        return False
    return True


def _explain(refusals: list[SlicebrokerError], grant: Grant) -> SlicebrokerError:
    """One refusal: the only one, or the first with every alternative's reason in its message."""
    first = refusals[0]
    if len(refusals) == 1:
        return first
    reasons = "; ".join(f"{c.count} x {c.sku}: {r.message}" for c, r in zip(grant.choices, refusals, strict=False))
    return type(first)(f"no alternative could be granted ({reasons})", reason=first.reason, metadata=first.metadata)


def _slices(placed: Placed) -> tuple[Slice, ...]:
    whole = tuple(Slice(claim.node_id, device) for claim in placed for device in claim.device_ids)
    cut = tuple(
        Slice(claim.node_id, s.device_id, s.kind, s.profile or f"{s.compute / 1000:g}")
        for claim in placed
        for s in claim.slices
    )
    return whole + cut
