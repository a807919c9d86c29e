"""Placement on the broker's snapshot: best fit, spanning, determinism, bookkeeping."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slicebroker.broker.domain.snapshot import NodeView, Snapshot

SKU = "H100-SXM-80GB"


def snapshot(*free: int, per_node: int = 8) -> Snapshot:
    snap = Snapshot()
    views = [
        NodeView(
            node_id=f"n{i:02d}",
            sku=SKU,
            generation=1,
            schedulable=True,
            free_devices=tuple(f"n{i:02d}/gpu{d}" for d in range(n)),
            held={f"n{i:02d}/gpu{d}": "gr_other" for d in range(n, per_node)},
        )
        for i, n in enumerate(free)
    ]
    snap.replace_sku(SKU, views, now_ms=0)
    return snap


@pytest.mark.parametrize(
    ("free", "count", "nodes"),
    [
        ((8, 3, 5), 3, ["n01"]),  # exact fit
        ((8, 4, 6), 3, ["n01"]),  # the fullest node that still fits
        ((8, 8, 8), 8, ["n00"]),  # ties break on node id
        ((2, 3, 1), 5, ["n01", "n00"]),  # spans, most free first
        ((8, 8), 16, ["n00", "n01"]),
    ],
)
def test_place_best_fit_then_fewest_nodes(free: tuple[int, ...], count: int, nodes: list[str]) -> None:
    claims = snapshot(*free).place(SKU, count)
    assert claims is not None
    assert [c.node_id for c in claims] == nodes
    assert sum(len(c.device_ids) for c in claims) == count


def test_place_returns_none_when_not_enough_free() -> None:
    assert snapshot(2, 3).place(SKU, 6) is None
    assert snapshot().place(SKU, 1) is None
    assert snapshot(8).place("RNGD", 1) is None


def test_take_bumps_generation_and_hides_devices_until_release() -> None:
    snap = snapshot(8)
    claims = snap.place(SKU, 8)
    assert claims and claims[0].expected_generation == 1
    snap.take("gr_a", claims)
    assert snap.generation("n00") == 2
    assert snap.place(SKU, 1) is None
    assert snap.release(["gr_a"]) == {"n00"}
    assert snap.free_count(SKU) == 8
    assert snap.release(["gr_a"]) == set(), "releasing twice touches nothing"


def test_untake_returns_devices_of_a_refused_claim() -> None:
    snap = snapshot(4)
    claims = snap.place(SKU, 3)
    assert claims
    snap.take("gr_a", claims)
    snap.untake("gr_a", claims)
    assert snap.free_count(SKU) == 4


def test_devices_held_at_load_are_released_by_their_grant() -> None:
    snap = snapshot(5)  # three devices held by gr_other when the snapshot was loaded
    assert snap.release(["gr_other"]) == {"n00"}
    assert snap.free_count(SKU) == 8


def test_unschedulable_nodes_are_never_placed_on() -> None:
    snap = Snapshot()
    view = NodeView("n00", SKU, 1, False, ("n00/gpu0",))
    snap.replace_sku(SKU, [view], now_ms=0)
    assert snap.place(SKU, 1) is None


@settings(max_examples=200, deadline=None)
@given(
    free=st.lists(st.integers(min_value=0, max_value=8), min_size=1, max_size=12),
    requests=st.lists(st.integers(min_value=1, max_value=20), max_size=30),
)
def test_placements_never_overlap_and_are_deterministic(free: list[int], requests: list[int]) -> None:
    a, b = snapshot(*free), snapshot(*free)
    taken: set[str] = set()
    for i, count in enumerate(requests):
        claims_a, claims_b = a.place(SKU, count), b.place(SKU, count)
        assert claims_a == claims_b
        if claims_a is None:
            assert a.free_count(SKU) < count
            continue
        devices = [d for c in claims_a for d in c.device_ids]
        assert len(devices) == count
        assert not taken & set(devices)
        taken |= set(devices)
        a.take(f"gr_{i}", claims_a)
        b.take(f"gr_{i}", claims_b)
    assert a.free_count(SKU) == sum(free) - len(taken)


@settings(max_examples=100, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["leaf", "nvlink", "any", "spread", "release"]), st.integers(1, 20)), max_size=40
    )
)
def test_subtree_counters_always_match_the_nodes(ops: list[tuple[str, int]]) -> None:
    from slicebroker.broker.domain.snapshot import Constraint, Topology

    snap = Snapshot()
    views = [
        NodeView(
            f"n{i:02d}",
            SKU,
            1,
            True,
            tuple(f"n{i:02d}/gpu{d}" for d in range(8)),
            leaf=f"l{i // 4}",
            nvlink_domain=f"r{i // 2}",
        )
        for i in range(12)
    ]
    snap.replace_sku(SKU, views, now_ms=0)
    held: list[str] = []
    constraints = {"leaf": Constraint.SAME_LEAF, "nvlink": Constraint.SAME_NVLINK_DOMAIN, "spread": Constraint.SPREAD}
    for i, (op, n) in enumerate(ops):
        if op == "release":
            if held:
                snap.release([held.pop(n % len(held))])
            continue
        topology = Topology(constraints[op]) if op in constraints else Topology()
        claims = snap.place(SKU, n, topology)
        if claims is not None:
            assert sum(len(c.device_ids) for c in claims) == n
            if op == "leaf":
                assert len({f"l{int(c.node_id[1:]) // 4}" for c in claims}) == 1
            snap.take(f"g{i}", claims)
            held.append(f"g{i}")
        for (sku, level, key), free in snap._group_free.items():
            nodes = snap._group_nodes[(sku, level, key)]
            assert free == sum(len(snap._nodes[node].free) for node in nodes)
