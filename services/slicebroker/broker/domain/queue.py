"""Serving the queue: requests within quota that found no room wait here, and are served in order
of priority class, then fair share (quota's weighted DRF with decayed history), then age.

When the head cannot be placed, smaller requests behind it may go first (backfill) only where they
cannot delay it: they need another accelerator, or their lease ends before the head's estimated
start (when enough of the head's accelerator frees up by lease expiry). The head's reason says
what it waits for and when that is expected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from slicebroker.broker.domain.grants import GrantService
from slicebroker.broker.domain.model import Grant, GrantState, PriorityClass
from slicebroker.broker.domain.placer import Placer
from slicebroker.broker.domain.ports import GrantStore, QuotaPort
from slicebroker.core.errors import SlicebrokerError

log = logging.getLogger("slicebroker.broker.queue")


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
    ) -> None:
        self._store = store
        self._grants = grants
        self._placer = placer
        self._quota = quota
        self._clock = clock
        self._batch = batch

    async def dispatch(self) -> int:
        """One pass over the queue; returns how many requests were granted."""
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
        for grant in await self._order(waiting):
            if head is not None and not self._may_backfill(grant, head, head_eta_ms, now):
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
            elif head is None:
                head = result
                head_eta_ms = await self._estimated_start(result, now)
                blocked[result.sku] = head_eta_ms
                if head_eta_ms is not None:
                    minutes = max(1, round((head_eta_ms - now) / 60_000))
                    await self._store.note_waiting(
                        result.id, f"{result.waiting_reason}; next release expected in ~{minutes} min"
                    )
        self._grants.blocked_heads = blocked
        return served

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
        expiring = await self._store.expiring(1000)
        records = await self._store.get_many([gid for gid, _ in expiring])
        freed = 0
        for (_, ends_ms), grant in zip(expiring, records, strict=True):
            if grant is not None and grant.sku == head.sku:
                freed += grant.count
                if freed >= short:
                    return max(ends_ms, now)
        return None
