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
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from slicebroker.broker.domain.model import Choice, Grant, GrantState, PriorityClass
from slicebroker.broker.domain.placer import PlaceJob, choose
from slicebroker.broker.domain.snapshot import NodeClaim, Snapshot

Fits = Callable[[Snapshot, PlaceJob], list[NodeClaim] | None]


@dataclass(frozen=True, slots=True)
class Victims:
    """The grants a claimant needs freed, for the alternative (`choice`) they make room for."""

    claimant: Grant
    choice: Choice
    grants: tuple[Grant, ...]

    @property
    def reason(self) -> str:
        """What the victims' owners are told, in plain words."""
        c = self.claimant
        return f"guaranteed demand of project {c.project} for {self.choice.count} x {self.choice.sku}"


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
