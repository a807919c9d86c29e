"""The loops that make the three services converge whatever crashed where.

- `expire`: ends grants whose lease ran out or whose preemption notice did ("preempted"), and
  finishes returning the resources of ended grants whose clean-up was interrupted.
- `reconcile`: fails grants stuck pending (the broker died between claim and commit), and frees
  devices and quota held for grants that are not live — the compensation a crash skipped.
- `relay`: delivers the outbox to accounting in order and trims only what accounting acknowledged.

Each is one step of work; the composition root runs them on intervals under a leader lock, so
one replica does them at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from slicebroker.broker.domain.grants import GrantService
from slicebroker.broker.domain.model import EndReason
from slicebroker.broker.domain.ports import AccountingPort, GrantStore, InventoryPort, QuotaPort

log = logging.getLogger("slicebroker.broker.repair")


class Repair:
    def __init__(
        self,
        store: GrantStore,
        grants: GrantService,
        inventory: InventoryPort,
        quota: QuotaPort,
        accounting: AccountingPort,
        clock: Callable[[], int],
        *,
        grace_ms: int = 30_000,
        batch: int = 500,
    ) -> None:
        self._store = store
        self._grants = grants
        self._inventory = inventory
        self._quota = quota
        self._accounting = accounting
        self._clock = clock
        self._grace_ms = grace_ms
        self._batch = batch

    async def expire(self) -> int:
        """Ends expired and preempted grants; returns how many it ended."""
        now = self._clock()
        expired = [g for g in await self._store.get_many(await self._store.expired(now, self._batch)) if g]
        ended = await self._grants.end_grants(expired, EndReason.EXPIRED, expired_by_ms=now)
        # Notices that ran out: ended like a release (claims and quota back, ENDED "preempted").
        due = [g for g in await self._store.get_many(await self._store.preemption_due(now, self._batch)) if g]
        ended += await self._grants.end_grants(due, EndReason.PREEMPTED, now_ms=now)
        # Grants ended a while ago whose devices or quota may not have gone back (crash, outage).
        stuck = await self._store.ending(now - self._grace_ms, self._batch)
        await self._grants.return_resources(stuck)
        return len(ended)

    async def reconcile(self) -> int:
        """Repairs what crashes left behind; returns how many grants it touched."""
        now = self._clock()
        # 1. Pending for longer than any grant path takes: its broker died mid-way.
        stuck = await self._store.pending_before(now - self._grace_ms, self._batch)
        failed = [gid for gid in stuck if await self._store.fail(gid, now)]
        # 2. Devices or quota held for grants that are not live. Every grant is recorded before
        #    anything is claimed or reserved for it, so a holder with no live record is a leak.
        held = set(await self._inventory.holders()) | set(await self._quota.reservations())
        ids = sorted(held)
        records = await self._store.get_many(ids)
        orphans = [gid for gid, grant in zip(ids, records, strict=True) if grant is None or not grant.live]
        orphans = sorted(set(orphans) | set(failed))
        if orphans:
            log.warning("reconciler returning resources of %d grants that are not live", len(orphans))
            await self._grants.return_resources(orphans)
        return len(orphans)

    async def relay(self) -> int:
        """Delivers one batch of outbox events; returns how many."""
        entries = await self._store.outbox_read(self._batch)
        if not entries:
            return 0
        await self._accounting.ingest([event for _, event in entries])
        await self._store.outbox_ack([entry_id for entry_id, _ in entries])
        return len(entries)
