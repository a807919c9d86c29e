"""Preemption: guaranteed demand that cannot be placed takes back capacity held by preemptible
grants (a preemptible class, or a standard grant that borrows beyond its guarantee — quota says
which when it reserves), with notice and a minimum runtime. Pure: no I/O.

Who asks: queued requests of the guaranteed class (quota reserved them within their nominal
quota before they were queued). The dispatcher plans on every pass, in queue order, against one
hypothetical snapshot: the live one with every grant already under notice freed (they free
capacity soon; noticing them again is never needed), then each claimant in turn either fits
(its room is set aside, so the next claimant cannot count on it) or gets victims:

1. candidates in victim order: lowest priority class first (preemptible before standard), then
   the project most over its fair share (served last by quota's fair-share order), then the most
   recently started;
2. free candidates one by one in that order until the claimant fits;
3. drop every victim whose release turns out not to be needed (last chosen first), so the set is
   minimal: no victim can be spared.

Grants that are not preemptible are never candidates. Because claimants are planned in order
against capacity already promised, concurrent guaranteed requests never preempt more than they
need together.

Reclaiming lent quota (`plan_reclaims`) is the other half: a queued request that quota refused
although it is within its own quota along its path (the pool above it is lent out to borrowers;
quota says `reclaimable` and names the `pool`) takes back `short_by` devices from preemptible
grants of projects under that pool, in the same victim order. Grants already under notice in
that pool count first (they free quota soon), victims one reclaimer takes are not counted again
for the next, and no victims are chosen when all candidates together cannot cover the shortfall.
A victim frees its devices' worth of quota as quota charged it: shares by their fraction, MIG and
NPU partitions by their compute counters over the device's (the catalogue's partition table).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from slicebroker.broker.domain.model import Choice, Grant, GrantState, PriorityClass, SliceKind
from slicebroker.broker.domain.placer import PlaceJob, choose
from slicebroker.broker.domain.snapshot import NodeClaim, Snapshot
from slicebroker.core.catalogue import partition_sizes
from slicebroker.core.errors import SlicebrokerError
from slicebroker.core.reasons import Reason

Fits = Callable[[Snapshot, PlaceJob], list[NodeClaim] | None]


@dataclass(frozen=True, slots=True)
class Victims:
    """The grants a claimant needs freed, for the alternative (`choice`) they make room for."""

    claimant: Grant
    choice: Choice
    grants: tuple[Grant, ...]
    # Set when the victims give back lent quota (devices' worth, as quota words it), not devices.
    reclaimed: str = ""

    @property
    def reason(self) -> str:
        """What the victims' owners are told, in plain words."""
        c = self.claimant
        if self.reclaimed:
            return f"guaranteed quota of project {c.project} reclaimed: {self.reclaimed} x {self.choice.sku}"
        return f"guaranteed demand of project {c.project} for {self.choice.count} x {self.choice.sku}"


@dataclass(frozen=True, slots=True)
class Reclaim:
    """Quota's refusal of a request within its own quota: `short_by` devices' worth of `sku`
    (`short_by_text` as quota wrote it) are lent to borrowers under the `pool` tenant."""

    pool: str
    sku: str
    short_by: float
    short_by_text: str

    @staticmethod
    def of(err: SlicebrokerError) -> Reclaim | None:
        """The reclaim a refusal allows, or None when it is no reclaimable quota refusal."""
        md = err.metadata
        if err.reason is not Reason.QUOTA_EXCEEDED or md.get("reclaimable") != "1" or not md.get("pool"):
            return None
        try:
            short = float(md.get("short_by", ""))
        except ValueError:
            return None
        return Reclaim(md["pool"], md.get("sku", ""), short, md.get("short_by", ""))


def quota_size(grant: Grant) -> Fraction:
    """Devices' worth of quota a grant holds, as quota charges it: shares by their fraction,
    partitions by their compute counters (a 1g.10gb MIG slice is 1/7), whole devices whole."""
    shape = grant.shape
    if shape.kind is SliceKind.SHARE and shape.compute:
        return grant.count * Fraction(shape.compute, 1000)
    if shape.profile:
        partition = partition_sizes().get(grant.sku, {}).get(shape.profile)
        if partition is not None:
            return grant.count * partition.compute
    return Fraction(grant.count)


# Quota writes a shortfall to six decimals ("0.714286" for 5/7): sizes within that of it cover it.
_ROUNDING = Fraction(1, 1_000_000)


def _shortfall(reclaim: Reclaim) -> Fraction:
    try:
        return Fraction(reclaim.short_by_text) - _ROUNDING
    except (ValueError, ZeroDivisionError):
        return Fraction(reclaim.short_by) - _ROUNDING


def plan_reclaims(
    reclaimers: Sequence[tuple[Grant, Reclaim]],
    candidates: Sequence[Grant],
    noticed: Sequence[Grant],
    under: Callable[[Grant, str], bool],
) -> list[Victims]:
    """New victims per reclaimer (in queue order) that give back the quota it is short of.
    `candidates` in victim order, none under notice; `noticed`: grants already under notice;
    `under(grant, pool)`: whether the grant's project lies under that tenant."""
    used: set[str] = set()
    free = [g for g in candidates if g.preemptible and g.state is GrantState.ACTIVE]
    out: list[Victims] = []
    for claimant, reclaim in reclaimers:

        def counts(g: Grant, r: Reclaim = reclaim) -> bool:
            return g.sku == r.sku and g.id not in used and under(g, r.pool)

        need = _shortfall(reclaim)
        # 1. What is already under notice in this pool frees quota soon: count it first.
        for g in noticed:
            if need <= 0:
                break
            if counts(g):
                used.add(g.id)
                need -= quota_size(g)
        if need <= 0:
            continue
        # 2. Greedy in victim order until the shortfall is covered (none if it cannot be).
        chosen: list[Grant] = []
        covered = Fraction(0)
        for g in free:
            if counts(g):
                chosen.append(g)
                covered += quota_size(g)
                if covered >= need:
                    break
        if covered < need:
            continue
        # 3. Spare whoever is not needed, the last chosen (the least preferred victim) first.
        for g in list(reversed(chosen)):
            if covered - quota_size(g) >= need:
                chosen.remove(g)
                covered -= quota_size(g)
        used.update(g.id for g in chosen)
        free = [g for g in free if g.id not in used]
        out.append(Victims(claimant, Choice(reclaim.sku, claimant.count), tuple(chosen), reclaim.short_by_text))
    return out


def victim_order(candidates: Sequence[Grant], fair_share_order: Sequence[str]) -> list[Grant]:
    """Preemptible active grants in the order they are given up (see the module docstring).
    `fair_share_order`: grant ids as quota's fair share would serve them (first: least served)."""
    project_rank: dict[str, int] = {}
    by_id = {g.id: g for g in candidates}
    for gid in fair_share_order:
        grant = by_id.get(gid)
        if grant is not None:
            project_rank.setdefault(grant.project, len(project_rank))
    classes = list(PriorityClass)
    return sorted(
        (g for g in candidates if g.preemptible and g.state is GrantState.ACTIVE),
        key=lambda g: (
            -classes.index(g.priority),
            -project_rank.get(g.project, len(project_rank)),
            -(g.started_ms or g.created_ms),
            g.id,
        ),
    )


def deadline(victim: Grant, now_ms: int, notice_ms: int, min_runtime_ms: int) -> int:
    """A notice's deadline: the notice period from now, and never before the minimum runtime."""
    return max(now_ms + notice_ms, (victim.started_ms or victim.created_ms) + min_runtime_ms)


def plan(
    snapshot: Snapshot,
    claimants: Sequence[Grant],
    candidates: Sequence[Grant],
    noticed: Sequence[str],
    fits: Fits = choose,
) -> list[Victims]:
    """New victims per claimant (claimants that fit with what is already noticed get none).
    `claimants` in queue order; `candidates` in victim order (see `victim_order`), none of them
    already under notice. The live snapshot is not touched."""
    hypo = copy.deepcopy(snapshot)
    hypo.release(noticed)
    free = [g for g in candidates if g.preemptible and g.id not in set(noticed)]
    out: list[Victims] = []
    for claimant in claimants:
        for choice in claimant.choices or (Choice(claimant.sku, claimant.count),):
            job = PlaceJob(claimant.id, choice.sku, choice.count, claimant.topology, claimant.shape, claimant.host)
            placed = fits(hypo, job)
            if placed is not None:
                hypo.take(claimant.id, placed)
                break
            victims = _victims_for(hypo, job, [g for g in free if g.sku == choice.sku], fits)
            if victims is None:
                continue  # no set of preemptible grants frees this alternative; try the next
            hypo.release([v.id for v in victims])
            placed = fits(hypo, job)
            assert placed is not None
            hypo.take(claimant.id, placed)
            taken = {v.id for v in victims}
            free = [g for g in free if g.id not in taken]
            out.append(Victims(claimant, choice, tuple(victims)))
            break
    return out


def _victims_for(hypo: Snapshot, job: PlaceJob, candidates: Sequence[Grant], fits: Fits) -> list[Grant] | None:
    # 2. Greedy in victim order until the job fits.
    trial = copy.deepcopy(hypo)
    chosen: list[Grant] = []
    for grant in candidates:
        trial.release([grant.id])
        chosen.append(grant)
        if fits(trial, job) is not None:
            break
    else:
        return None
    # 3. Spare whoever is not needed, the last chosen (the least preferred victim) first.
    for grant in list(reversed(chosen)):
        rest = [g for g in chosen if g is not grant]
        trial = copy.deepcopy(hypo)
        trial.release([g.id for g in rest])
        if fits(trial, job) is not None:
            chosen = rest
    return chosen
