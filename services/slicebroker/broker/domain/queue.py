"""Serving the queue: requests within quota that found no room wait here, and are served in order
of priority class, then fair share (quota's weighted DRF with decayed history), then age.

When the head cannot be placed, smaller requests behind it may go first (backfill) only where they
cannot delay it: they need another accelerator, or their lease ends before the head's estimated
start (when enough of the head's accelerator frees up by lease expiry or preemption). The head's
reason says what it waits for and when that is expected.

Requests that asked to start later wait aside and join the queue when due. Guaranteed requests
that still wait after a pass may preempt (see `preemption.py`): their victims get a notice now and
are ended by the reaper at the notice's deadline, which frees the room they are then served from.
Requests that quota refused although they are within their own quota (it is lent to borrowers)
wait too, and reclaim it the same way: borrowing grants under the lending pool get a notice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from slicebroker.broker.domain.grants import GrantService
from slicebroker.broker.domain.model import Grant, GrantState, PriorityClass
from slicebroker.broker.domain.placer import Placer
from slicebroker.broker.domain.ports import GrantStore, QuotaPort
from slicebroker.broker.domain.preemption import Reclaim, deadline, plan, plan_reclaims, victim_order
from slicebroker.core.errors import SlicebrokerError

log = logging.getLogger("slicebroker.broker.queue")


@dataclass(frozen=True, slots=True)
class PreemptionPolicy:
    """A victim keeps its slices for `notice_ms` after its notice, and at least `min_runtime_ms`
    after it started."""

    notice_ms: int = 300_000
    min_runtime_ms: int = 600_000
    enabled: bool = True


class Dispatcher:
    def __init__(
        self,
        store: GrantStore,
        grants: GrantService,
        placer: Placer,
        quota: QuotaPort,
        clock: Callable[[], int],
        *,
        batch: int = 200,
        preemption: PreemptionPolicy = PreemptionPolicy(),
        max_active: int = 100_000,
    ) -> None:
        self._store = store
        self._grants = grants
        self._placer = placer
        self._quota = quota
        self._clock = clock
        self._batch = batch
        self._preemption = preemption
        self._max_active = max_active
        # When the next request that asked to start later is due (ms), for the loop to wake then.
        self.next_due_ms: int | None = None

    async def promote_due(self, now: int) -> int:
        """Requests whose start_after has come join the queue; returns how many."""
        moved = 0
        for grant_id in await self._store.scheduled_due(now, self._batch):
            moved += await self._store.promote(grant_id)
        self.next_due_ms = await self._store.next_scheduled()
        return moved

    async def dispatch(self) -> int:
        """One pass over the queue; returns how many requests were granted."""
        await self.promote_due(self._clock())
        ids = await self._store.queued(self._batch)
        if not ids:
            self._grants.blocked_heads = {}
            return 0
        waiting = [g for g in await self._store.get_many(ids) if g is not None and g.state is GrantState.QUEUED]
        served = 0
        blocked: dict[str, int | None] = {}
        head: Grant | None = None
        head_eta_ms: int | None = None
        now = self._clock()
        # Guaranteed requests still waiting after this pass, in queue order: they may preempt.
        claimants: list[Grant] = []
        # Requests waiting for their own quota, lent to borrowers: they may reclaim it.
        reclaimers: list[tuple[Grant, Reclaim]] = []
        for grant in await self._order(waiting):
            if head is not None and not self._may_backfill(grant, head, head_eta_ms, now):
                if (reclaim := self._grants.reclaims.get(grant.id)) is not None:
                    reclaimers.append((grant, reclaim))
                elif grant.priority is PriorityClass.GUARANTEED:
                    claimants.append(grant)
                continue
            if not await self._store.dequeue(grant.id, now):
                continue  # cancelled, or served by another pass
            try:
                result = await self._grants.serve_queued(grant)
            except SlicebrokerError as err:
                log.info("queued grant %s failed: %s", grant.id, err.message)
                continue
            if result.state is GrantState.ACTIVE:
                served += 1
                continue
            if (reclaim := self._grants.reclaims.get(result.id)) is not None:
                # Held back by quota, not devices: it blocks nobody's placement as a head would.
                reclaimers.append((result, reclaim))
                continue
            if result.priority is PriorityClass.GUARANTEED:
                claimants.append(result)
            if head is None:
                head = result
                head_eta_ms = await self._estimated_start(result, now)
                blocked[result.sku] = head_eta_ms
                if head_eta_ms is not None:
                    minutes = max(1, round((head_eta_ms - now) / 60_000))
                    await self._store.note_waiting(
                        result.id, f"{result.waiting_reason}; next release expected in ~{minutes} min"
                    )
        self._grants.blocked_heads = blocked
        if claimants and self._preemption.enabled:
            await self._preempt(claimants, now)
        if reclaimers and self._preemption.enabled:
            await self._reclaim(reclaimers, now)
        return served

    async def _reclaim(self, reclaimers: Sequence[tuple[Grant, Reclaim]], now: int) -> int:
        """Gives notice to the fewest preemptible grants under each reclaimer's pool that give back
        the quota it is short of, counting those already under notice; tells each reclaimer what
        it waits for. Returns how many notices were given."""
        deadlines, candidates = await self._victim_pool({r.sku for _, r in reclaimers}, "reclaiming")
        noticed = [g for g in await self._store.get_many(list(deadlines)) if g is not None]
        # The tenants each institution lies under (a pool may be a cohort above it), once a pass.
        above: dict[str, set[str]] = {}
        for institution in {g.institution for g in (*candidates, *noticed)}:
            try:
                above[institution] = {institution, *await self._quota.ancestors(institution)}
            except SlicebrokerError as err:
                log.warning("tenants above %s unknown (%s); reclaiming only within it", institution, err.message)
                above[institution] = {institution}

        def under(grant: Grant, pool: str) -> bool:
            return pool in above.get(grant.institution, {grant.institution})

        given = 0
        for victims in plan_reclaims(reclaimers, candidates, noticed, under):
            for victim in victims.grants:
                at = deadline(victim, now, self._preemption.notice_ms, self._preemption.min_runtime_ms)
                if await self._store.notice(victim.id, now, at, victims.reason):
                    given += 1
                    deadlines[victim.id] = at
                    noticed.append(victim)
                    log.info("grant %s preempted to reclaim quota for %s by %d ms", victim.id, victims.claimant.id, at)
        for grant, reclaim in reclaimers:
            ends = [deadlines[g.id] for g in noticed if g.sku == reclaim.sku and under(g, reclaim.pool)]
            if ends:
                base = grant.waiting_reason.partition("; ")[0]
                grants = "1 borrowing grant has" if len(ends) == 1 else f"{len(ends)} borrowing grants have"
                until = datetime.fromtimestamp(max(ends) / 1000, UTC).strftime("%H:%M UTC")
                await self._store.note_waiting(grant.id, f"{base}; {grants} notice until {until}")
        return given

    async def _preempt(self, claimants: Sequence[Grant], now: int) -> int:
        """Gives notice to the fewest preemptible grants that make room for the waiting guaranteed
        requests, counting those already under notice; returns how many notices were given."""
        skus = {c.sku for g in claimants for c in (g.choices or ())} | {g.sku for g in claimants}
        deadlines, candidates = await self._victim_pool(skus, "preempting")
        if not candidates:
            return 0
        given = 0
        for victims in plan(self._placer.snapshot, claimants, candidates, list(deadlines)):
            for victim in victims.grants:
                at = deadline(victim, now, self._preemption.notice_ms, self._preemption.min_runtime_ms)
                if await self._store.notice(victim.id, now, at, victims.reason):
                    given += 1
                    log.info("grant %s preempted for %s by %d ms", victim.id, victims.claimant.id, at)
        return given

    async def _victim_pool(self, skus: set[str], doing: str) -> tuple[dict[str, int], list[Grant]]:
        """The grants under notice (id -> deadline), and the active preemptible grants of `skus`
        not under notice, in victim order (quota's fair-share order when it answers)."""
        deadlines = dict(await self._store.under_notice(self._max_active))
        active = [gid for gid, _ in await self._store.expiring(self._max_active)]
        candidates = [
            g
            for g in await self._store.get_many(active)
            if g is not None
            and g.preemptible
            and g.state is GrantState.ACTIVE
            and g.id not in deadlines
            and g.sku in skus
        ]
        fair: list[str] = []
        if candidates:
            try:
                fair = await self._quota.fair_share_order(candidates)
            except SlicebrokerError as err:
                log.warning("fair-share order unavailable (%s); %s by class and age", err.message, doing)
        return deadlines, victim_order(candidates, fair)

    async def _order(self, waiting: Sequence[Grant]) -> list[Grant]:
        """Priority class first; within a class quota's fair-share order; age breaks what is left."""
        try:
            fair = {gid: i for i, gid in enumerate(await self._quota.fair_share_order(waiting))}
        except SlicebrokerError as err:
            log.warning("fair-share order unavailable (%s); serving by age", err.message)
            fair = {}
        classes = list(PriorityClass)
        return sorted(waiting, key=lambda g: (classes.index(g.priority), fair.get(g.id, len(fair)), g.queue_score))

    @staticmethod
    def _may_backfill(grant: Grant, head: Grant, head_eta_ms: int | None, now: int) -> bool:
        wanted = {c.sku for c in grant.choices} or {grant.sku}
        head_wants = {c.sku for c in head.choices} or {head.sku}
        if not wanted & head_wants:
            return True  # other accelerators: cannot delay the head
        return head_eta_ms is not None and now + grant.lease_ms <= head_eta_ms

    async def _estimated_start(self, head: Grant, now: int) -> int | None:
        """When enough of the head's accelerator frees up as leases run out; None if unknown."""
        short = head.count - self._placer.snapshot.free_count(head.sku)
        if short <= 0:
            return None  # enough free, but not within its topology: no estimate from leases alone
        # Leases run out, or preemption notices do, whichever comes first.
        ends = dict(await self._store.expiring(1000))
        for gid, deadline_ms in await self._store.under_notice(1000):
            if gid in ends:
                ends[gid] = min(ends[gid], deadline_ms)
        expiring = sorted(ends.items(), key=lambda item: item[1])
        records = await self._store.get_many([gid for gid, _ in expiring])
        freed = 0
        for (_, ends_ms), grant in zip(expiring, records, strict=True):
            if grant is not None and grant.sku == head.sku:
                freed += grant.count
                if freed >= short:
                    return max(ends_ms, now)
        return None
