"""The inventory writer: the one place in a broker process that places, claims and releases.

All claims and releases of the process go through one batcher with a single batch in flight, so
the snapshot it keeps is exact between its own writes: a placement never races another placement
of the same process, and generations advance exactly as inventory advances them. Conflicts then
only come from other broker replicas (or from inventory changes), and are resolved by refreshing
the SKU from inventory and placing again, a bounded number of times.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from slicebroker.broker.domain.model import WHOLE, Shape
from slicebroker.broker.domain.ports import ChangeKind, InventoryPort, NodeChange
from slicebroker.broker.domain.snapshot import (
    ANYWHERE,
    NO_HOST,
    Constraint,
    HostResources,
    NodeClaim,
    NodeView,
    SliceSpec,
    Snapshot,
    Topology,
)
from slicebroker.core.batching import Batcher
from slicebroker.core.errors import Conflict, ResourceExhausted, SlicebrokerError
from slicebroker.core.reasons import Reason

log = logging.getLogger("slicebroker.broker.placer")


@dataclass(frozen=True, slots=True)
class PlaceJob:
    grant_id: str
    sku: str
    count: int
    topology: Topology = ANYWHERE
    shape: Shape = WHOLE
    host: HostResources = NO_HOST


@dataclass(frozen=True, slots=True)
class ReleaseJob:
    grant_ids: tuple[str, ...]


Job = PlaceJob | ReleaseJob
Placed = tuple[NodeClaim, ...]


class Placer:
    def __init__(
        self,
        inventory: InventoryPort,
        clock: Callable[[], int],
        *,
        claim_attempts: int = 4,
        refresh_after_ms: int = 500,
        max_batch: int = 512,
    ) -> None:
        self._inventory = inventory
        self._clock = clock
        self._claim_attempts = claim_attempts
        self._refresh_after_ms = refresh_after_ms
        self.snapshot = Snapshot()
        # Inventory's watch feeds the snapshot; changes wait here until no claim of ours is in flight.
        self._changes: list[NodeChange] = []
        self._building: list[NodeView] | None = None
        self._flushing = False
        self.revision = 0
        self.synced = False
        # Called when inventory reports a change (capacity may have appeared for queued requests).
        self.on_change: Callable[[], None] | None = None
        self._batcher: Batcher[Job, Placed | None] = Batcher(self._flush, max_batch=max_batch, max_in_flight=1)

    async def place(
        self,
        grant_id: str,
        sku: str,
        count: int,
        topology: Topology = ANYWHERE,
        shape: Shape = WHOLE,
        host: HostResources = NO_HOST,
    ) -> Placed:
        placed = await self._batcher.submit(PlaceJob(grant_id, sku, count, topology, shape, host))
        assert placed is not None
        return placed

    async def release(self, grant_ids: Sequence[str]) -> None:
        if grant_ids:
            await self._batcher.submit(ReleaseJob(tuple(grant_ids)))

    async def close(self) -> None:
        await self._batcher.close()

    async def follow_inventory(self) -> None:
        """Keeps the snapshot exact from inventory's watch, resuming from the last revision seen.
        Runs until cancelled; a broken stream ends it with an error (the supervisor restarts it)."""
        async for change in self._inventory.watch(self.revision):
            self._changes.append(change)
            self.revision = max(self.revision, change.revision)
            if not self._flushing:
                self._apply_changes()

    def _apply_changes(self) -> None:
        """Applies received watch events. Only called while no claim of this process is in flight,
        so an event never races a placement between its choice and inventory's answer."""
        changes, self._changes = self._changes, []
        for change in changes:
            if change.kind is ChangeKind.SNAPSHOT_BEGIN:
                self._building = []
            elif change.kind is ChangeKind.SNAPSHOT_END:
                self.snapshot.replace_all(self._building or [], self._clock())
                self._building = None
                self.synced = True
            elif change.kind is ChangeKind.UPSERT and change.node is not None:
                if self._building is not None:
                    self._building.append(change.node)
                else:
                    self.snapshot.put_node(change.node)
            elif change.kind is ChangeKind.DELETED:
                self.snapshot.drop_node(change.node_id)
        if changes and self.on_change is not None:
            self.on_change()

    async def refresh(self, sku: str) -> None:
        self.snapshot.replace_sku(sku, await self._inventory.nodes(sku), self._clock())

    # -- one batch -----------------------------------------------------------------------------
    async def _flush(self, jobs: list[Job]) -> list[Placed | BaseException | None]:
        self._flushing = True
        try:
            return await self._flush_jobs(jobs)
        finally:
            self._flushing = False
            self._apply_changes()

    async def _flush_jobs(self, jobs: list[Job]) -> list[Placed | BaseException | None]:
        self._apply_changes()
        results: list[Placed | BaseException | None] = [None] * len(jobs)
        # 1. Releases first: what they free is available to this very batch.
        releases = [gid for job in jobs if isinstance(job, ReleaseJob) for gid in job.grant_ids]
        if releases:
            generations = await self._inventory.release(releases)
            self.snapshot.release(releases)
            for node_id, generation in generations.items():
                self.snapshot.set_generation(node_id, generation)
        # 2. Place and claim, retrying the conflicted ones on a refreshed picture.
        todo = [i for i, job in enumerate(jobs) if isinstance(job, PlaceJob)]
        for attempt in range(self._claim_attempts):
            if not todo:
                break
            self._apply_changes()
            todo = await self._place_and_claim(
                jobs, todo, results, first=attempt == 0, last=attempt == self._claim_attempts - 1
            )
        return results

    async def _place_and_claim(
        self, jobs: list[Job], todo: list[int], results: list[Placed | BaseException | None], first: bool, last: bool
    ) -> list[int]:
        placed: list[tuple[int, PlaceJob, list[NodeClaim]]] = []
        for i in todo:
            job = jobs[i]
            assert isinstance(job, PlaceJob)
            claims = await self._place_one(job, first)
            if isinstance(claims, SlicebrokerError):
                results[i] = claims
                continue
            self.snapshot.take(job.grant_id, claims)
            placed.append((i, job, claims))
        if not placed:
            return []
        outcomes = await self._inventory.claim([(job.grant_id, claims) for _, job, claims in placed])
        retry: list[int] = []
        stale: set[str] = set()
        for (i, job, claims), outcome in zip(placed, outcomes, strict=True):
            if outcome.error is None:
                for node_id, generation in outcome.generations.items():
                    self.snapshot.set_generation(node_id, generation)
                results[i] = tuple(claims)
                continue
            self.snapshot.untake(job.grant_id, claims)
            if isinstance(outcome.error, Conflict) and not last:
                retry.append(i)
                stale.add(job.sku)
            else:
                results[i] = outcome.error
        for sku in sorted(stale):
            await self.refresh(sku)
        return retry

    def _choose(self, job: PlaceJob) -> list[NodeClaim] | None:
        return choose(self.snapshot, job)

    async def _place_one(self, job: PlaceJob, first: bool = True) -> list[NodeClaim] | SlicebrokerError:
        now = self._clock()
        loaded = self.snapshot.loaded_skus.get(job.sku)
        if loaded is None:
            # First request for a SKU the watch has not shown yet (or no watch): read it once.
            await self.refresh(job.sku)
        # A request counts once into the workload mix, right before its first decision, so that
        # decisions follow the order requests arrive in, exactly as the trace benchmark's do.
        claims = place(self.snapshot, job) if first else self._choose(job)
        stale = not self.synced and loaded is not None and now - loaded >= self._refresh_after_ms
        if claims is None and stale:
            # Another replica may have freed devices since our picture was taken.
            await self.refresh(job.sku)
            claims = self._choose(job)
        if claims is None:
            free = self.snapshot.free_count(job.sku)
            what = job.sku if job.shape.whole else f"{job.sku} {job.shape.quota_shape or job.shape.profile} slices"
            where = "" if job.topology.constraint == "none" else f" {job.topology.constraint.replace('_', ' ')}"
            if job.topology.unit > 1:
                where += f" in members of {job.topology.unit} on one node each"
            host = (
                f" with {job.host.cpu_milli / 1000:g} CPU and {job.host.memory_mib} MiB host memory each"
                if job.host
                else ""
            )
            short = ", but not within the topology asked for" if free >= job.count and not job.host else ""
            if short and job.topology.unit > 1 and job.topology.constraint is Constraint.NONE:
                short = ", but not in whole members on single nodes"
            if free >= job.count and job.host:
                short = ", but not on nodes with that much host CPU and memory left"
            return ResourceExhausted(
                f"{job.count} x {what}{where}{host} requested; {free} whole devices free now" + short,
                reason=Reason.INSUFFICIENT_CAPACITY,
                metadata={
                    "sku": job.sku,
                    "requested": job.count,
                    "free": free,
                    "topology": str(job.topology.constraint),
                    **({"devices_per_member": job.topology.unit} if job.topology.unit > 1 else {}),
                },
            )
        return claims


def observe(snapshot: Snapshot, job: PlaceJob) -> None:
    """Counts `job` into its SKU's workload mix (what the packing engine learns from)."""
    snapshot.observe(job.sku, job.count, None if job.shape.whole else slice_spec(job.shape), job.host)


def slice_spec(shape: Shape) -> SliceSpec:
    return SliceSpec("", shape.kind.value, shape.profile, shape.compute, shape.memory)


def place(snapshot: Snapshot, job: PlaceJob) -> list[NodeClaim] | None:
    """The live decision for one request: counted into the workload mix, then chosen. The broker's
    placer and the trace benchmark both place through here."""
    observe(snapshot, job)
    return choose(snapshot, job)


def choose(snapshot: Snapshot, job: PlaceJob) -> list[NodeClaim] | None:
    """Where `job` would go on `snapshot`, read-only: the live placer's choice, and what
    preemption asks of a hypothetical snapshot."""
    if job.shape.whole:
        return snapshot.place(job.sku, job.count, job.topology, job.host)
    # Slices honour "same node"; looser network constraints do not apply to slices of devices.
    return snapshot.place_slices(
        job.sku,
        slice_spec(job.shape),
        job.count,
        same_node=job.topology.constraint is Constraint.SAME_NODE,
        host=job.host,
        unit=job.topology.unit,
    )
