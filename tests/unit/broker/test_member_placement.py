"""Gangs whose members each want several devices (`Topology.devices_per_member`): every topology
path keeps a member's devices on one node, the request validation refuses counts that do not divide
into members, and a property that no sequence of placements and releases ever splits a member or
takes a device twice."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slicebroker.broker.domain.model import Grant, GrantState
from slicebroker.broker.domain.placer import PlaceJob, choose
from slicebroker.broker.domain.preemption import plan
from slicebroker.broker.domain.snapshot import (
    Constraint,
    HostResources,
    NodeClaim,
    NodeView,
    SliceSpec,
    Snapshot,
    Topology,
)
from slicebroker.broker.domain.validation import validate_request
from slicebroker.core.errors import InvalidArgument

SKU = "B200-SXM-180GB"
CPU2 = HostResources(cpu_milli=2_000)
MIG = SliceSpec("", "mig", "3g.40gb", 3, 4)


def node(
    name: str,
    free: int,
    *,
    leaf: str = "",
    nvlink: str = "",
    cpu: int = 0,
    size: int = 8,
    holders: dict[str, str] | None = None,
) -> NodeView:
    """A node with `free` free devices; the rest are held by `holders`' grants, else by gr_other."""
    return NodeView(
        node_id=name,
        sku=SKU,
        generation=1,
        schedulable=True,
        free_devices=tuple(f"{name}/gpu{i}" for i in range(free)),
        held={f"{name}/gpu{i}": "gr_other" for i in range(free, size)} | (holders or {}),
        nvlink_domain=nvlink,
        leaf=leaf,
        cpu_free=cpu,
    )


def snap(*views: NodeView) -> Snapshot:
    s = Snapshot()
    s.replace_sku(SKU, views, 0)
    s.slice_capacity[(SKU, "mig")] = (7, 8)
    return s


def per_node(claims: list[NodeClaim] | None) -> dict[str, int] | None:
    if claims is None:
        return None
    return {c.node_id: len(c.device_ids) + len(c.slices) for c in claims}


def members(constraint: Constraint, unit: int, required: bool = True) -> Topology:
    return Topology(constraint, required, unit)


# Leaf x has 9 free devices but only 6 in pairs (3 + 3 + 3); leaf y has 9 with 8 in pairs (4 + 2 + 3).
LEAVES = (
    node("x1", 3, leaf="x"),
    node("x2", 3, leaf="x"),
    node("x3", 3, leaf="x"),
    node("y1", 4, leaf="y"),
    node("y2", 2, leaf="y"),
    node("y3", 3, leaf="y"),
)


@pytest.mark.parametrize(
    ("views", "count", "topology", "expected"),
    [
        # Anywhere: each node gives whole pairs only; the most whole members first, ties by id.
        ((node("a", 3), node("b", 3), node("c", 2)), 6, members(Constraint.NONE, 2), {"a": 2, "b": 2, "c": 2}),
        ((node("a", 3), node("b", 3)), 6, members(Constraint.NONE, 2), None),
        ((node("a", 5), node("b", 4), node("c", 4)), 8, members(Constraint.NONE, 4), {"a": 4, "b": 4}),
        # One node holding everything satisfies any member size.
        ((node("a", 3), node("b", 6)), 6, members(Constraint.NONE, 2), {"b": 6}),
        # Same leaf: x has enough devices but not enough pairs; y is chosen.
        (LEAVES, 8, members(Constraint.SAME_LEAF, 2), {"y1": 4, "y2": 2, "y3": 2}),
        (LEAVES[:3], 8, members(Constraint.SAME_LEAF, 2), None),
        # Preferred leaf that cannot be met falls back to anywhere, still in pairs.
        (
            (node("a", 3, leaf="x"), node("b", 3, leaf="y")),
            4,
            members(Constraint.SAME_LEAF, 2, False),
            {"a": 2, "b": 2},
        ),
        # Same NVLink domain: d1 has exactly 4 free but one pair; d2 has two.
        (
            (
                node("a", 3, nvlink="d1"),
                node("b", 1, nvlink="d1"),
                node("c", 2, nvlink="d2"),
                node("d", 3, nvlink="d2"),
            ),
            4,
            members(Constraint.SAME_NVLINK_DOMAIN, 2),
            {"c": 2, "d": 2},
        ),
        # Spread: one member per node, nodes with the fewest free (that hold a member) first.
        ((node("a", 1), node("b", 2), node("c", 3), node("d", 4)), 4, members(Constraint.SPREAD, 2), {"b": 2, "c": 2}),
        ((node("a", 1), node("b", 2), node("c", 3), node("d", 4)), 8, members(Constraint.SPREAD, 2), None),
        # Same node: all on one.
        ((node("a", 3), node("b", 4)), 4, members(Constraint.SAME_NODE, 2), {"b": 4}),
        # A member size of 0 or 1 is today's behaviour.
        ((node("a", 3), node("b", 3)), 6, members(Constraint.NONE, 1), {"a": 3, "b": 3}),
        ((node("a", 3), node("b", 3)), 6, members(Constraint.NONE, 0), {"a": 3, "b": 3}),
    ],
)
def test_each_member_lands_on_one_node(
    views: tuple[NodeView, ...], count: int, topology: Topology, expected: dict[str, int] | None
) -> None:
    assert per_node(snap(*views).place(SKU, count, topology)) == expected


@pytest.mark.parametrize(
    ("views", "count", "topology", "expected"),
    [
        # a: 4 free but CPU for 3, so one pair; b: 4 free with CPU for all.
        ((node("a", 4, cpu=6_000), node("b", 4, cpu=16_000)), 6, members(Constraint.NONE, 2), {"b": 4, "a": 2}),
        ((node("a", 4, cpu=6_000), node("b", 4, cpu=16_000)), 8, members(Constraint.NONE, 2), None),
        ((node("a", 4, cpu=6_000), node("b", 4, cpu=16_000)), 4, members(Constraint.SPREAD, 2), {"a": 2, "b": 2}),
        (
            (node("a", 3, leaf="x", cpu=16_000), node("b", 3, leaf="x", cpu=16_000), node("c", 4, leaf="y", cpu=6_000)),
            4,
            members(Constraint.SAME_LEAF, 2),
            {"a": 2, "b": 2},
        ),
        ((node("a", 4, cpu=6_000), node("b", 4, cpu=16_000)), 4, members(Constraint.SAME_NODE, 2), {"b": 4}),
    ],
)
def test_members_with_host_resources(
    views: tuple[NodeView, ...], count: int, topology: Topology, expected: dict[str, int] | None
) -> None:
    assert per_node(snap(*views).place(SKU, count, topology, CPU2)) == expected


def test_slices_of_one_member_stay_on_one_node() -> None:
    # Two 3g.40gb fit a device: each node takes one member of two, never one slice of each.
    s = snap(node("a", 1), node("b", 1))
    claims = s.place_slices(SKU, MIG, 4, unit=2)
    assert per_node(claims) == {"a": 2, "b": 2}
    assert s.place_slices(SKU, MIG, 6, unit=2) is None
    # A member of three 3g.40gb fits no device of this SKU: nothing is placed.
    assert s.place_slices(SKU, MIG, 3, unit=3) is None


def _grant(gid: str, count: int, topology: Topology | None = None, state: GrantState = GrantState.ACTIVE) -> Grant:
    return Grant(
        id=gid, project="p", sku=SKU, count=count, lease_ms=1, idempotency_key="", state=state, created_ms=0,
        preemptible=state is GrantState.ACTIVE, topology=topology or Topology(),
    )  # fmt: skip


def test_the_placer_and_preemption_honour_members() -> None:
    # a: 3 free, gr_v holds a/gpu3; b: 2 free, gr_w holds b/gpu2; the rest is held by others.
    s = snap(
        node("a", 3, holders={"a/gpu3": "gr_v"}),
        node("b", 2, holders={"b/gpu2": "gr_w"}),
    )
    claimant = _grant("gr_new", 6, members(Constraint.NONE, 2), GrantState.QUEUED)
    assert choose(s, PlaceJob("gr_new", SKU, 6, claimant.topology)) is None
    # gr_w comes first in victim order, and freeing it gives 3 + 3 free devices: enough for six
    # single devices, but still two pairs. Only freeing gr_v (a: 4 free, two pairs) makes three.
    (victims,) = plan(s, [claimant], [_grant("gr_w", 1), _grant("gr_v", 1)], [])
    assert [v.id for v in victims.grants] == ["gr_v"]
    (victims,) = plan(s, [replace(claimant, topology=Topology())], [_grant("gr_w", 1), _grant("gr_v", 1)], [])
    assert [v.id for v in victims.grants] == ["gr_w"]


FIELD = "topology.devices_per_member"


def validate(count: int, per_member: int, alternatives: list[tuple[str, int]] | None = None) -> object:
    return validate_request(
        project="p1", sku="H200", count=count, lease_ms=60_000, idempotency_key="", known_skus={"H200", "H100"},
        max_count=64, max_lease_ms=3_600_000, alternatives=alternatives or [],
        topology=members(Constraint.SAME_LEAF, per_member),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("count", "per_member", "alternatives", "words"),
    [
        (8, -1, None, "must be 0"),
        (2, 4, None, "more than the 2"),
        (6, 4, None, "do not divide"),
        (8, 4, [("H100", 6)], "alternatives[0].count"),
    ],
)
def test_members_that_do_not_divide_the_count_are_refused(
    count: int, per_member: int, alternatives: list[tuple[str, int]] | None, words: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate(count, per_member, alternatives)
    assert info.value.field == FIELD
    assert words in info.value.message


@pytest.mark.parametrize("per_member", [0, 1, 2, 4, 8])
def test_members_that_divide_the_count_are_accepted(per_member: int) -> None:
    validate(8, per_member, [("H100", 16)])


@settings(max_examples=300, deadline=None)
@given(
    nodes=st.lists(st.tuples(st.integers(0, 8), st.integers(0, 2), st.integers(0, 16_000)), min_size=1, max_size=7),
    ops=st.lists(
        st.tuples(
            st.sampled_from(["whole", "host", "mig", "release"]),
            st.integers(1, 4),  # members
            st.sampled_from([0, 1, 2, 3, 4]),  # devices per member
            st.sampled_from(list(Constraint)),
            st.booleans(),  # required
        ),
        max_size=25,
    ),
)
def test_no_member_is_ever_split_and_no_device_is_taken_twice(
    nodes: list[tuple[int, int, int]], ops: list[tuple[str, int, int, Constraint, bool]]
) -> None:
    views = [node(f"n{i}", free, leaf=f"l{leaf}", cpu=cpu) for i, (free, leaf, cpu) in enumerate(nodes)]
    s = snap(*views)
    held: dict[str, list[NodeClaim]] = {}
    taken: Counter[str] = Counter()
    for i, (kind, n_members, per_member, constraint, required) in enumerate(ops):
        if kind == "release":
            if held:
                gid = sorted(held)[n_members % len(held)]
                s.release([gid])
                for claim in held.pop(gid):
                    taken.subtract(claim.device_ids)
            continue
        unit = max(1, per_member)
        count = n_members * unit
        topology = Topology(constraint, required, per_member)
        if kind == "mig":
            claims = s.place_slices(SKU, MIG, count, same_node=constraint is Constraint.SAME_NODE, unit=unit)
        else:
            claims = s.place(SKU, count, topology, CPU2 if kind == "host" else HostResources())
        if claims is None:
            if kind == "whole" and constraint is Constraint.NONE:
                # Anywhere finds room whenever the free devices make that many whole members.
                assert _free_in_members(s, unit) < count
            continue
        counts = per_node(claims)
        assert counts is not None and sum(counts.values()) == count
        assert all(n % unit == 0 for n in counts.values()), f"a member split across nodes: {counts}"
        if constraint is Constraint.SPREAD and required and kind != "mig":
            assert all(n == unit for n in counts.values()), "spread: one member per node"
        if constraint is Constraint.SAME_NODE and required:
            assert len(counts) == 1
        s.take(f"g{i}", claims)
        held[f"g{i}"] = claims
        for claim in claims:
            taken.update(claim.device_ids)
        assert all(v <= 1 for v in taken.values()), "a device taken twice"
        for view in views:
            on_node = [d for d, v in taken.items() if v and d.startswith(f"{view.node_id}/")]
            assert set(on_node) <= set(view.free_devices), "a device beyond the node's free capacity"


def _free_in_members(s: Snapshot, unit: int) -> int:
    """Free devices that make whole members, over every node (read from the picture under test)."""
    return sum(len(n.free) - len(n.free) % unit for n in s._nodes.values())
