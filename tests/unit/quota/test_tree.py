"""The quota math (`domain/tree.py`): table tests of borrowing, lending, hard caps and priority
classes on small trees, and hypothesis properties: no sequence of reserve/cancel leaves usage
negative, over a hard cap, over subtree quota plus borrowing limit, or a root pool overdrawn."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slicebroker.quota.domain.amount import UNLIMITED, ZERO, Amount
from slicebroker.quota.domain.tree import (
    Limit,
    Priority,
    QuotaEntry,
    QuotaNode,
    Snapshot,
    available,
    borrowed,
    borrowing,
    check,
    device_cap_entry,
    fits_all,
    guaranteed,
    pool_usage,
    subtree_quota,
)

R = "H100-SXM-80GB"
D = Amount.of(1).finite()  # units per device


def entry(nominal: int = 0, borrow: int | None = None, lend: int | None = None, cap: int | None = None) -> QuotaEntry:
    def lim(v: int | None) -> Amount:
        return UNLIMITED if v is None else Amount.of(v)

    return QuotaEntry(Amount.of(nominal), lim(borrow), lim(lend), lim(cap))


def tree(**nodes: tuple[str, Mapping[str, QuotaEntry]]) -> Snapshot:
    """name=(parent, entries)."""
    return Snapshot({n: QuotaNode(n, parent, dict(entries)) for n, (parent, entries) in nodes.items()})


def take(s: Snapshot, node: str, devices: int, priority: Priority = Priority.STANDARD) -> Snapshot | Limit:
    charges = {R: devices * D}
    refused = check(s, node, charges, priority.may_borrow)
    return refused.limit if refused else s.charged(node, charges)


def cohort_of_two(a: QuotaEntry, b: QuotaEntry, cohort: QuotaEntry | None = None) -> Snapshot:
    return tree(
        c=("", {R: cohort} if cohort else {}),
        a=("c", {R: a}),
        b=("c", {R: b}),
    )


def test_borrow_idle_quota_of_a_cohort_mate() -> None:
    s = cohort_of_two(entry(4), entry(4))
    after = take(s, "a", 8)
    assert isinstance(after, Snapshot)
    assert borrowed(after, "a", R) == 4 * D
    assert take(after, "b", 1) is Limit.NOMINAL


def test_borrowing_limit_bounds_use_above_nominal() -> None:
    s = cohort_of_two(entry(4, borrow=2), entry(4))
    assert isinstance(take(s, "a", 6), Snapshot)
    assert take(s, "a", 7) is Limit.BORROWING_LIMIT


def test_lending_limit_keeps_the_rest_for_the_lender() -> None:
    s = cohort_of_two(entry(4), entry(10, lend=3))
    assert guaranteed(s, "b", R) == 7 * D
    assert subtree_quota(s, "c", R) == 7 * D  # a's 4 and b's lendable 3
    after = take(s, "a", 7)
    assert isinstance(after, Snapshot)
    assert take(after, "a", 1) is Limit.NOMINAL
    # b can still take all of what it did not lend.
    assert available(after, "b", R)[0] == 7 * D


def test_hard_cap_below_what_borrowing_allows() -> None:
    s = cohort_of_two(entry(4, cap=5), entry(4))
    assert take(s, "a", 6) is Limit.HARD_CAP


def test_hard_cap_of_an_ancestor_binds_its_projects() -> None:
    s = tree(i=("", {R: entry(10, cap=3)}), p=("i", {}), q=("i", {}))
    after = take(s, "p", 2)
    assert isinstance(after, Snapshot)
    assert take(after, "q", 2) is Limit.HARD_CAP


def test_guaranteed_class_may_not_borrow() -> None:
    s = cohort_of_two(entry(4), entry(4))
    assert take(s, "a", 5, Priority.GUARANTEED) is Limit.BORROWING_LIMIT
    assert isinstance(take(s, "a", 4, Priority.GUARANTEED), Snapshot)
    assert isinstance(take(s, "a", 5, Priority.PREEMPTIBLE), Snapshot)


def test_priority_classes_map_to_borrowing_and_preemption() -> None:
    assert not Priority.GUARANTEED.may_borrow
    assert not Priority.GUARANTEED.preemptible(borrowing=True)
    assert Priority.STANDARD.may_borrow and not Priority.STANDARD.preemptible(False)
    assert Priority.STANDARD.preemptible(True)
    assert Priority.PREEMPTIBLE.preemptible(False)


def test_device_cap_is_a_private_cap() -> None:
    s = tree(i=("", {}), p=("i", {R: device_cap_entry(8)}), q=("i", {R: device_cap_entry(2)}))
    assert take(s, "q", 3) is Limit.HARD_CAP
    assert isinstance(take(s, "p", 8), Snapshot)
    assert take(s, "p", 9) is Limit.HARD_CAP


def test_a_sku_nobody_has_quota_for_is_refused_and_an_unused_class_is_free() -> None:
    s = tree(i=("", {}), p=("i", {}))
    assert take(s, "p", 1) is Limit.NO_QUOTA
    assert check(s, "p", {"accel": D}) is None


def test_refusal_says_by_how_much() -> None:
    s = cohort_of_two(entry(4, borrow=1), entry(4))
    refused = check(s, "a", {R: 7 * D})
    assert refused is not None
    assert (refused.limit, refused.node, refused.requested, refused.available, refused.short_by) == (
        Limit.BORROWING_LIMIT,
        "a",
        7 * D,
        5 * D,
        2 * D,
    )


@pytest.mark.parametrize(
    ("a", "b", "cohort", "want_a"),
    [
        (entry(4), entry(4), None, 8),
        (entry(4, borrow=0), entry(4), None, 4),
        (entry(4), entry(4, lend=0), None, 4),
        (entry(4), entry(4, lend=1), None, 5),
        (entry(0), entry(0), entry(6), 6),
        (entry(4, cap=2), entry(4), None, 2),
    ],
)
def test_most_a_can_take_alone(a: QuotaEntry, b: QuotaEntry, cohort: QuotaEntry | None, want_a: int) -> None:
    s = cohort_of_two(a, b, cohort)
    assert isinstance(take(s, "a", want_a), Snapshot)
    assert isinstance(take(s, "a", want_a + 1), Limit)


# -- properties ------------------------------------------------------------------------------------

limits = st.one_of(st.none(), st.integers(0, 6))
entries = st.one_of(
    st.none(),
    st.builds(entry, st.integers(0, 6), limits, limits, limits),
)
LEAVES = ("p1", "p2", "p3", "p4")


@st.composite
def trees(draw: st.DrawFn) -> Snapshot:
    """cohort → i1 (p1, p2), i2 (p3, p4); any node may have an entry (roots never borrow)."""
    shape = {"c": "", "i1": "c", "i2": "c", "p1": "i1", "p2": "i1", "p3": "i2", "p4": "i2"}
    nodes = {}
    for n, parent in shape.items():
        e = draw(entries)
        if e is not None and not parent:
            e = QuotaEntry(e.nominal, UNLIMITED, e.lending_limit, e.hard_cap)
        nodes[n] = QuotaNode(n, parent, {R: e} if e else {})
    return Snapshot(nodes)


ops = st.lists(
    st.tuples(st.sampled_from(["reserve", "cancel"]), st.sampled_from(LEAVES), st.integers(1, 4), st.booleans()),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(trees(), ops)
def test_no_sequence_breaks_a_limit(s: Snapshot, steps: list[tuple[str, str, int, bool]]) -> None:
    held: list[tuple[str, int]] = []
    for op, node, devices, may_borrow in steps:
        if op == "reserve":
            charges = {R: devices * D}
            if check(s, node, charges, may_borrow) is None:
                s = s.charged(node, charges)
                held.append((node, devices))
        elif held:
            # Cancel (or release) the oldest holding: usage returns exactly what was taken.
            n, d = held.pop(0)
            s = s.charged(n, {R: d * D}, -1)
        assert fits_all(s, [R])
    assert all(v >= 0 for v in s.usage.values())


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10), st.integers(0, 10), ops)
def test_lending_limit_is_honoured(nominal: int, lend: int, steps: list[tuple[str, str, int, bool]]) -> None:
    """p1 lends at most `lend` of its nominal: p2..p4 (nominal 0) never hold more than that."""
    s = tree(c=("", {}), i1=("c", {}), i2=("c", {}), p1=("i1", {R: entry(nominal, lend=lend)}))
    s = Snapshot({**s.nodes, **{p: QuotaNode(p, "i1" if p == "p2" else "i2", {}) for p in ("p2", "p3", "p4")}})
    for _, node, devices, _ in steps:
        if node != "p1" and check(s, node, {R: devices * D}) is None:
            s = s.charged(node, {R: devices * D})
        others = sum(s.usage.get((p, R), 0) for p in ("p2", "p3", "p4"))
        assert others <= min(lend, nominal) * D
        assert available(s, "p1", R)[0] >= (nominal - min(lend, nominal)) * D


def test_zero_is_not_unlimited() -> None:
    assert ZERO != UNLIMITED
    assert ZERO <= UNLIMITED and not UNLIMITED <= ZERO


# -- reclaiming lent quota --------------------------------------------------------------------


def lent_to_a_borrower() -> Snapshot:
    """p1 borrows all that p2 lends: 16 held against nominal 8 + 8."""
    s = tree(uni=("", {}), p1=("uni", {R: entry(8, borrow=8)}), p2=("uni", {R: entry(8, lend=8)}))
    return s.charged("p1", {R: 16 * D})


def test_guaranteed_demand_within_nominal_is_reclaimable() -> None:
    s = lent_to_a_borrower()
    refused = check(s, "p2", {R: 8 * D}, Priority.GUARANTEED.may_borrow, Priority.GUARANTEED.may_reclaim)
    assert refused is not None and refused.limit is Limit.NOMINAL and refused.node == "uni"
    assert refused.reclaimable and refused.short_by == 8 * D


def test_standard_demand_within_nominal_reclaims_too_preemptible_never() -> None:
    s = lent_to_a_borrower()
    standard = check(s, "p2", {R: 3 * D}, True, Priority.STANDARD.may_reclaim)
    assert standard is not None and standard.reclaimable
    preemptible = check(s, "p2", {R: 3 * D}, True, Priority.PREEMPTIBLE.may_reclaim)
    assert preemptible is not None and preemptible.limit is Limit.NOMINAL and not preemptible.reclaimable


def test_demand_beyond_own_nominal_is_not_reclaimable() -> None:
    s = lent_to_a_borrower()
    refused = check(s, "p2", {R: 9 * D}, True, True)
    assert refused is not None and refused.limit is Limit.NOMINAL and not refused.reclaimable


def test_borrower_asking_more_is_not_reclaimable() -> None:
    s = lent_to_a_borrower()
    refused = check(s, "p1", {R: 1 * D}, True, True)
    assert refused is not None and not refused.reclaimable


def test_reclaim_needs_every_node_on_the_path_within_quota() -> None:
    """Project p2 is within its nominal, but its institution i2 already uses more than its subtree
    quota (p3 borrows from the cohort): reclaiming for p2 would still leave i2 borrowing."""
    s = tree(
        c=("", {}),
        i1=("c", {}),
        i2=("c", {}),
        p1=("i1", {R: entry(8)}),
        p2=("i2", {R: entry(2)}),
        p3=("i2", {R: entry(0)}),
    )
    s = s.charged("p3", {R: 8 * D}).charged("p1", {R: 2 * D})
    refused = check(s, "p2", {R: 1 * D}, True, True)
    assert refused is not None and refused.limit is Limit.NOMINAL and not refused.reclaimable


def test_usage_within_a_private_guarantee_is_not_borrowing() -> None:
    """p2 keeps its whole nominal (lending limit 0): holding it borrows nothing up the tree, though
    its institution brings no quota of its own to the cohort."""
    s = tree(c=("", {}), i=("c", {}), p1=("i", {R: entry(4)}), p2=("i", {R: entry(4, lend=0)}))
    assert take(s, "p2", 4) is not Limit.NOMINAL
    after = s.charged("p2", {R: 4 * D})
    assert not borrowing(after, "p2", R)


@settings(max_examples=300, deadline=None)
@given(trees(), ops, st.sampled_from(LEAVES), st.integers(1, 4))
def test_reclaimable_iff_within_own_quota_along_the_path(
    s: Snapshot, steps: list[tuple[str, str, int, bool]], node: str, devices: int
) -> None:
    """After any admitted sequence, a pool refusal is reclaimable exactly when no node below the
    root would borrow with the request added; and then someone under the root does borrow now
    (the pool is short only because of them)."""
    for op, n, d, may_borrow in steps:
        if op == "reserve" and check(s, n, {R: d * D}, may_borrow) is None:
            s = s.charged(n, {R: d * D})
    refused = check(s, node, {R: devices * D}, True, True)
    if refused is None or refused.limit is not Limit.NOMINAL:
        assert refused is None or not refused.reclaimable
        return
    after = s.charged(node, {R: devices * D})
    within = all(
        pool_usage(after, n, R) <= subtree_quota(after, n, R) for n in after.path(node) if after.nodes[n].parent
    )
    assert refused.reclaimable == within
    if refused.reclaimable:
        root = s.path(node)[-1]
        assert any(borrowed(s, n, R) > 0 for n in s.nodes if s.path(n)[-1] == root and s.nodes[n].parent)
