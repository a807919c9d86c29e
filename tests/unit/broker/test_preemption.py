"""Preemption planning on a real snapshot: victim order, the smallest set that makes room, notices
already given count, claimants planned together never over-preempt, and a grant that is not
preemptible is never a victim (property test); the same for reclaiming lent quota."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slicebroker.broker.domain.model import Choice, Grant, GrantState, PriorityClass, Shape, SliceKind
from slicebroker.broker.domain.preemption import Reclaim, deadline, plan, plan_reclaims, victim_order
from slicebroker.broker.domain.snapshot import NodeView, Snapshot
from slicebroker.core.errors import ResourceExhausted
from slicebroker.core.reasons import Reason

SKU = "H100-SXM-80GB"


def grant(gid: str, count: int = 1, *, preemptible: bool = True, started: int = 0, project: str = "p", **kw: object):
    return Grant(
        id=gid,
        project=project,
        sku=SKU,
        count=count,
        lease_ms=60_000,
        idempotency_key="",
        state=GrantState.ACTIVE,
        created_ms=started,
        started_ms=started,
        preemptible=preemptible,
        **kw,  # type: ignore[arg-type]
    )


def claimant(gid: str, count: int) -> Grant:
    return grant(gid, count, preemptible=False, priority=PriorityClass.GUARANTEED).with_(
        state=GrantState.QUEUED, choices=(Choice(SKU, count),)
    )


def layout(*nodes: list[str | None]) -> Snapshot:
    """One node per list: each device free (None) or held by the grant id given."""
    snap = Snapshot()
    views = []
    for i, devices in enumerate(nodes):
        node = f"n{i:02d}"
        views.append(
            NodeView(
                node_id=node,
                sku=SKU,
                generation=1,
                schedulable=True,
                free_devices=tuple(f"{node}/gpu{d}" for d, holder in enumerate(devices) if holder is None),
                held={f"{node}/gpu{d}": holder for d, holder in enumerate(devices) if holder is not None},
            )
        )
    snap.replace_sku(SKU, views, now_ms=0)
    return snap


def victims_of(result: list) -> dict[str, list[str]]:
    return {v.claimant.id: [g.id for g in v.grants] for v in result}


def test_victim_order_lowest_class_then_most_over_share_then_most_recent() -> None:
    standard_borrowing = grant("std", priority=PriorityClass.STANDARD, project="heavy", started=50)
    old_heavy = grant("old-heavy", priority=PriorityClass.PREEMPTIBLE, project="heavy", started=10)
    new_heavy = grant("new-heavy", priority=PriorityClass.PREEMPTIBLE, project="heavy", started=20)
    newest_light = grant("new-light", priority=PriorityClass.PREEMPTIBLE, project="light", started=30)
    guaranteed = grant("guaranteed", preemptible=False, priority=PriorityClass.GUARANTEED, started=99)
    # Quota's fair share serves "light" first: "heavy" is the most over its share.
    fair = ["new-light", "std", "old-heavy", "new-heavy", "guaranteed"]
    order = victim_order([standard_borrowing, old_heavy, new_heavy, newest_light, guaranteed], fair)
    assert [g.id for g in order] == ["new-heavy", "old-heavy", "new-light", "std"]


def test_the_smallest_set_that_makes_room() -> None:
    snap = layout(["a", "a", "a", "a", "b", "b", "b", "b"], ["c", "c", "x", "x", "x", "x", "x", "x"])
    a, b, c = grant("a", 4), grant("b", 4), grant("c", 2)
    # Greedy takes c then a (6 free); c is not needed once a is free.
    result = plan(snap, [claimant("g1", 4)], [c, a, b], noticed=[])
    assert victims_of(result) == {"g1": ["a"]}
    assert snap.free_count(SKU) == 0, "the live snapshot is not touched"


def test_no_set_frees_room_so_no_one_is_preempted() -> None:
    snap = layout(["a", "a", "x", "x"], ["x", "x", "x", "x"])
    assert plan(snap, [claimant("g1", 3)], [grant("a", 2)], noticed=[]) == []


def test_grants_already_under_notice_count_as_freeing_capacity() -> None:
    snap = layout(["a", "a", "a", "a"], ["b", "b", "b", "b"])
    result = plan(snap, [claimant("g1", 4)], [grant("b", 4)], noticed=["a"])
    assert result == []


def test_claimants_planned_together_preempt_only_what_they_need_together() -> None:
    snap = layout(["a", "a", "a", "a"], ["b", "b", "b", "b"], ["c", "c", "c", "c"])
    candidates = [grant("a", 4), grant("b", 4), grant("c", 4)]
    result = plan(snap, [claimant("g1", 2), claimant("g2", 2), claimant("g3", 3)], candidates, noticed=[])
    # g1 frees a, g2 fits in what a left, g3 needs one more grant.
    assert victims_of(result) == {"g1": ["a"], "g3": ["b"]}


def test_the_deadline_honours_notice_and_minimum_runtime() -> None:
    young = grant("young", started=1_000)
    old = grant("old", started=0)
    assert deadline(young, now_ms=2_000, notice_ms=300, min_runtime_ms=5_000) == 6_000
    assert deadline(old, now_ms=10_000, notice_ms=300, min_runtime_ms=5_000) == 10_300


@settings(max_examples=150, deadline=None)
@given(
    holders=st.lists(st.lists(st.one_of(st.none(), st.integers(0, 9)), min_size=4, max_size=8), min_size=1, max_size=4),
    protected=st.sets(st.integers(0, 9)),
    wants=st.lists(st.integers(1, 8), min_size=1, max_size=3),
    noticed=st.sets(st.integers(0, 9), max_size=3),
)
def test_a_grant_that_is_not_preemptible_is_never_a_victim(
    holders: list[list[int | None]], protected: set[int], wants: list[int], noticed: set[int]
) -> None:
    nodes = [[None if h is None else f"g{h}" for h in node] for node in holders]
    counts: dict[str, int] = defaultdict(int)
    for node in nodes:
        for h in node:
            if h is not None:
                counts[h] += 1
    grants = [
        grant(gid, n, preemptible=int(gid[1:]) not in protected, started=int(gid[1:])) for gid, n in counts.items()
    ]
    snap = layout(*nodes)
    free_before = snap.free_count(SKU)
    under_notice = [g.id for g in grants if int(g.id[1:]) in noticed and g.preemptible]
    candidates = victim_order([g for g in grants if g.id not in under_notice], [])
    claimants = [claimant(f"c{i}", n) for i, n in enumerate(wants)]
    result = plan(snap, claimants, candidates, under_notice)
    chosen = [g for v in result for g in v.grants]
    assert all(g.preemptible for g in chosen)
    assert len({g.id for g in chosen}) == len(chosen), "a victim is chosen once"
    assert not {g.id for g in chosen} & set(under_notice), "never noticed twice"
    assert snap.free_count(SKU) == free_before
    # Minimal: sparing any one victim of a claimant leaves it without room (checked by replanning
    # with that victim protected: the plan then needs another victim or cannot serve it).
    for victims in result:
        for spared in victims.grants:
            rest = [g for g in candidates if g.id != spared.id]
            again = plan(snap, claimants, rest, under_notice)
            assert victims_of(again).get(victims.claimant.id) != [g.id for g in victims.grants if g is not spared]


@pytest.mark.parametrize("count", [1, 4, 8])
def test_place_is_read_only(count: int) -> None:
    snap = layout(["a", None, None, None, None, None, None, None])
    result = plan(snap, [claimant("g1", count)], [grant("a", 1)], noticed=[])
    assert snap.free_count(SKU) == 7
    assert victims_of(result) == ({"g1": ["a"]} if count == 8 else {})


# -- reclaiming lent quota ------------------------------------------------------------------------

TREE = {"uni": "c", "lab": "c", "other": ""}  # institution -> its cohort ("" none)


def under(g: Grant, pool: str) -> bool:
    return pool in (g.institution, TREE.get(g.institution, ""))


def member(gid: str, count: int, institution: str = "uni", **kw: Any) -> Grant:
    g: Grant = grant(gid, count, institution=institution, **kw)
    return g


def reclaim(short_by: float, pool: str = "uni") -> Reclaim:
    return Reclaim(pool, SKU, short_by, f"{short_by:g}")


def test_reclaim_takes_the_fewest_borrowers_under_the_pool_in_victim_order() -> None:
    cands = [member("new", 2, started=30), member("mid", 8, started=20), member("old", 4, started=10)]
    (v,) = plan_reclaims([(claimant("q", 8), reclaim(8))], victim_order(cands, []), [], under)
    # Greedy takes new (2) then mid (8); new is then not needed and is spared.
    assert [g.id for g in v.grants] == ["mid"]
    assert v.reason == f"guaranteed quota of project p reclaimed: 8 x {SKU}"


def test_reclaim_looks_only_under_its_pool_and_at_preemptible_active_grants() -> None:
    cands = [
        member("elsewhere", 8, institution="other", started=50),
        member("kept", 8, preemptible=False, started=40),
        member("ending", 8, started=30).with_(state=GrantState.ENDED),
        member("cohort-mate", 4, institution="lab", started=20),
        member("mine", 4, started=10),
    ]
    (v,) = plan_reclaims([(claimant("q", 8), reclaim(8, "c"))], cands, [], under)
    assert [g.id for g in v.grants] == ["cohort-mate", "mine"]
    assert plan_reclaims([(claimant("q", 8), reclaim(8, "uni"))], cands, [], under) == []  # 4 < 8: no one


def test_notices_already_given_count_and_reclaimers_share_nothing() -> None:
    noticed = [member("n1", 4)]
    cands = [member("a", 4, started=3), member("b", 4, started=2), member("c", 4, started=1)]
    out = plan_reclaims([(claimant("q1", 8), reclaim(8)), (claimant("q2", 4), reclaim(4))], cands, noticed, under)
    assert [(v.claimant.id, [g.id for g in v.grants]) for v in out] == [("q1", ["a"]), ("q2", ["b"])]
    # Enough already under notice: nothing new.
    assert plan_reclaims([(claimant("q", 4), reclaim(4))], cands, noticed, under) == []


def test_partition_victims_free_quota_by_their_size() -> None:
    # Seven 1g.10gb slices are one device's worth of quota, as quota charged them; counting each
    # as a whole device would notice one grant and leave the claimant short for another pass.
    mig = Shape(SliceKind.MIG, "1g.10gb", 1, 1)
    cands = [
        member("small", 4, shape=mig, started=3),
        member("more", 3, shape=mig, started=2),
        member("w", 1, started=1),
    ]
    (v,) = plan_reclaims([(claimant("q", 1), reclaim(1))], victim_order(cands, []), [], under)
    assert [g.id for g in v.grants] == ["small", "more"]
    share = Shape(SliceKind.SHARE, "", 250, 250)
    (v,) = plan_reclaims([(claimant("q", 1), reclaim(0.5))], [member("s", 2, shape=share)], [], under)
    assert [g.id for g in v.grants] == ["s"]
    # Quota rounds 5/7 up to "0.714286": five sevenths still cover it, and no more is taken.
    five_sevenths = Reclaim("uni", SKU, 5 / 7, "0.714286")
    (v,) = plan_reclaims([(claimant("q", 1), five_sevenths)], [member("five", 5, shape=mig), *cands], [], under)
    assert [g.id for g in v.grants] == ["five"]


def test_reclaim_is_read_only_from_a_reclaimable_refusal() -> None:
    md = {"reclaimable": "1", "pool": "uni", "sku": SKU, "short_by": "2.5"}
    assert Reclaim.of(ResourceExhausted("short", reason=Reason.QUOTA_EXCEEDED, metadata=md)) == Reclaim(
        "uni", SKU, 2.5, "2.5"
    )
    assert (
        Reclaim.of(ResourceExhausted("short", reason=Reason.QUOTA_EXCEEDED, metadata={**md, "reclaimable": ""})) is None
    )
    assert Reclaim.of(ResourceExhausted("short", reason=Reason.INSUFFICIENT_CAPACITY, metadata=md)) is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 8), st.booleans(), st.sampled_from(["uni", "lab", "other"])), max_size=12),
    st.lists(st.tuples(st.integers(1, 16), st.sampled_from(["uni", "c"])), min_size=1, max_size=4),
)
def test_reclaim_never_notices_a_grant_that_is_not_preemptible_and_covers_minimally(
    grants: list[tuple[int, bool, str]], asks: list[tuple[int, str]]
) -> None:
    cands = [member(f"g{i}", n, institution=inst, preemptible=p, started=i) for i, (n, p, inst) in enumerate(grants)]
    reclaimers = [(claimant(f"q{i}", n), reclaim(n, pool)) for i, (n, pool) in enumerate(asks)]
    out = plan_reclaims(reclaimers, victim_order(cands, []), [], under)
    seen: set[str] = set()
    for v in out:
        r = next(r for c, r in reclaimers if c.id == v.claimant.id)
        ids = {g.id for g in v.grants}
        assert not ids & seen  # no grant noticed twice
        seen |= ids
        assert all(g.preemptible and under(g, r.pool) for g in v.grants)
        total = sum(g.count for g in v.grants)
        assert total >= r.short_by  # covers
        assert all(total - g.count < r.short_by for g in v.grants)  # no victim can be spared
