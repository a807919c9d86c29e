"""Nodes with a fixed MIG layout (GPUs cut into instances ahead of time): only their layout's
profiles land there, never more than the layout's counts, a uniform layout's instances stay spread
over the devices as they really are, whole devices and shares never go there, MIG requests prefer
them (best fit) over free-form nodes, members and "same node" are honoured, releases give the
instances back, and no sequence of placements and releases ever exceeds a layout or a device."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slicebroker.broker.domain.model import Grant, GrantState, PriorityClass, Shape, SliceKind
from slicebroker.broker.domain.placer import PlaceJob, choose
from slicebroker.broker.domain.preemption import plan
from slicebroker.broker.domain.snapshot import (
    ANYWHERE,
    NO_HOST,
    Constraint,
    DeviceSlices,
    HostResources,
    NodeClaim,
    NodeView,
    SliceSpec,
    Snapshot,
    Topology,
)
from slicebroker.broker.peers import _node_view
from slicebroker.v1 import inventory_pb2

SKU = "H100-SXM-80GB"
GEOMETRY = (7, 8)
# profile -> (compute, memory) counters, as the catalogue has them for this SKU.
PROFILES = {"1g.10gb": (1, 1), "1g.20gb": (1, 2), "2g.20gb": (2, 2), "3g.40gb": (3, 4), "7g.80gb": (7, 8)}
# A balanced layout on two devices: each holds one 3g.40gb, one 2g.20gb and two 1g.10gb.
BALANCED = {"3g.40gb": 2, "2g.20gb": 2, "1g.10gb": 4}


def spec(profile: str) -> SliceSpec:
    return SliceSpec("", "mig", profile, *PROFILES[profile])


def held(node_id: str, device: int, *grants_profiles: tuple[str, str]) -> DeviceSlices:
    """A device of `node_id` carrying slices: (grant id, profile) pairs."""
    device_id = f"{node_id}/gpu{device}"
    return DeviceSlices(
        device_id, "mig", GEOMETRY, tuple((g, SliceSpec(device_id, "mig", p, *PROFILES[p])) for g, p in grants_profiles)
    )


def fixed(
    name: str,
    layout: dict[str, int],
    devices: int = 2,
    *,
    sliced: tuple[DeviceSlices, ...] = (),
    cpu: int = 0,
    generation: int = 1,
    device_count: int = 0,
) -> NodeView:
    """A node whose `devices` GPUs are cut into `layout`; the devices in `sliced` carry slices."""
    busy = {d.device_id for d in sliced}
    return NodeView(
        node_id=name,
        sku=SKU,
        generation=generation,
        schedulable=True,
        free_devices=tuple(d for i in range(devices) if (d := f"{name}/gpu{i}") not in busy),
        sliced=sliced,
        cpu_free=cpu,
        mig_layout=layout,
        device_count=device_count,
    )


def free_form(name: str, devices: int = 2, *, sliced: tuple[DeviceSlices, ...] = (), cpu: int = 0) -> NodeView:
    return fixed(name, {}, devices, sliced=sliced, cpu=cpu)


def snap(*views: NodeView) -> Snapshot:
    s = Snapshot()
    s.slice_capacity[(SKU, "mig")] = GEOMETRY
    s.replace_sku(SKU, views, 0)
    return s


def mig_job(
    gid: str, profile: str, count: int, topology: Topology = ANYWHERE, host: HostResources = NO_HOST
) -> PlaceJob:
    c, m = PROFILES[profile]
    return PlaceJob(gid, SKU, count, topology, Shape(SliceKind.MIG, profile, c, m), host)


def per_node(claims: list[NodeClaim] | None) -> dict[str, int] | None:
    if claims is None:
        return None
    return {c.node_id: len(c.device_ids) + len(c.slices) for c in claims}


def per_device(claims: list[NodeClaim]) -> Counter[str]:
    return Counter(s.device_id for c in claims for s in c.slices)


# -- which profiles, how many --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("layout", "profile", "count", "expected"),
    [
        ({"1g.10gb": 14}, "1g.10gb", 14, {"f": 14}),
        ({"1g.10gb": 14}, "1g.10gb", 15, None),  # more than the layout
        ({"1g.10gb": 14}, "3g.40gb", 1, None),  # not in the layout, though the devices have room
        ({"1g.10gb": 14}, "1g.20gb", 1, None),
        (BALANCED, "3g.40gb", 2, {"f": 2}),
        (BALANCED, "3g.40gb", 3, None),  # counters would allow three on two devices
        (BALANCED, "1g.10gb", 4, {"f": 4}),
        (BALANCED, "7g.80gb", 1, None),
        ({"1g.10gb": 3}, "1g.10gb", 3, {"f": 3}),  # 3 over 2 devices: not uniform, counters decide
        ({"1g.10gb": 3}, "1g.10gb", 4, None),
    ],
)
def test_only_layout_profiles_land_up_to_the_layout_counts(
    layout: dict[str, int], profile: str, count: int, expected: dict[str, int] | None
) -> None:
    assert per_node(choose(snap(fixed("f", layout)), mig_job("g", profile, count))) == expected


def test_counts_are_never_exceeded_across_grants_and_count_what_inventory_reported() -> None:
    # One 1g.10gb of the layout's three is held already (inventory's report).
    s = snap(fixed("f", {"1g.10gb": 3}, sliced=(held("f", 0, ("gr_old", "1g.10gb")),)))
    assert choose(s, mig_job("g1", "1g.10gb", 3)) is None
    claims = choose(s, mig_job("g1", "1g.10gb", 1))
    assert claims is not None
    s.take("g1", claims)
    claims = choose(s, mig_job("g2", "1g.10gb", 1))
    assert claims is not None
    s.take("g2", claims)
    assert choose(s, mig_job("g3", "1g.10gb", 1)) is None


def test_a_uniform_layout_keeps_each_devices_share_of_the_instances() -> None:
    # Counters alone would put both 3g.40gb on one device (3 + 3 of 7, 4 + 4 of 8); the layout
    # has one on each device.
    claims = choose(snap(fixed("f", BALANCED)), mig_job("g", "3g.40gb", 2))
    assert claims is not None and sorted(per_device(claims).values()) == [1, 1]
    # Eight 1g.10gb over two devices: four on each, though a device holds seven by its counters.
    s = snap(fixed("f", {"1g.10gb": 8}))
    claims = choose(s, mig_job("g", "1g.10gb", 8))
    assert claims is not None and per_device(claims) == {"f/gpu0": 4, "f/gpu1": 4}
    # Grants placed one by one keep to it too.
    s = snap(fixed("f", {"1g.10gb": 8}))
    for i in range(8):
        c = choose(s, mig_job(f"g{i}", "1g.10gb", 1))
        assert c is not None
        s.take(f"g{i}", c)
    assert choose(s, mig_job("g9", "1g.10gb", 1)) is None


def test_the_device_count_includes_devices_that_are_not_listed() -> None:
    # Eight instances on four devices (two each), two of which are unhealthy and not listed: the
    # healthy two still hold two each, not four.
    s = snap(fixed("f", {"1g.10gb": 8}, 2, device_count=4))
    assert choose(s, mig_job("g", "1g.10gb", 5)) is None
    claims = choose(s, mig_job("g", "1g.10gb", 4))
    assert claims is not None and per_device(claims) == {"f/gpu0": 2, "f/gpu1": 2}


def test_a_layout_that_is_not_uniform_fills_the_fullest_device_that_fits() -> None:
    # Three 3g.40gb over two devices do not divide: any device whose counters fit, fullest first.
    s = snap(fixed("f", {"3g.40gb": 3}))
    claims = choose(s, mig_job("g", "3g.40gb", 3))
    assert claims is not None and sorted(per_device(claims).values()) == [1, 2]


# -- whole devices and shares --------------------------------------------------------------------
def test_whole_devices_and_shares_never_go_on_a_fixed_node() -> None:
    s = snap(fixed("f", BALANCED, 8, cpu=64_000))
    assert s.free_count(SKU) == 0
    share = SliceSpec("", "share", "", 250, 250)
    for topology in (
        Topology(),
        Topology(Constraint.SAME_NODE),
        Topology(Constraint.SAME_LEAF),
        Topology(Constraint.SAME_NVLINK_DOMAIN),
        Topology(Constraint.SPREAD),
        Topology(Constraint.SAME_LEAF, required=False),
        Topology(devices_per_member=2),
    ):
        assert s.place(SKU, 2, topology) is None, topology
        assert s.place(SKU, 1, topology, HostResources(cpu_milli=1_000)) is None, topology
    assert s.place_slices(SKU, share, 1) is None
    assert s.place_slices(SKU, SliceSpec("", "npu_partition", "p", 1, 1), 1) is None
    # With a free-form node beside it, whole devices and shares go there.
    s = snap(fixed("f", BALANCED, 8, cpu=64_000), free_form("a", 2, cpu=64_000))
    assert s.free_count(SKU) == 2
    assert per_node(s.place(SKU, 2)) == {"a": 2}
    assert per_node(s.place(SKU, 2, host=HostResources(cpu_milli=1_000))) == {"a": 2}
    assert s.place(SKU, 3) is None
    assert per_node(s.place_slices(SKU, share, 3)) == {"a": 3}


def test_releasing_slices_on_a_fixed_node_frees_no_whole_device() -> None:
    s = snap(fixed("f", BALANCED))
    claims = choose(s, mig_job("g", "1g.10gb", 1))
    assert claims is not None
    s.take("g", claims)
    s.release(["g"])
    assert s.free_count(SKU) == 0 and s.place(SKU, 1) is None


# -- where MIG requests go -----------------------------------------------------------------------
def test_a_mig_request_prefers_a_fixed_node_and_other_profiles_go_free_form() -> None:
    # The free-form node has a device already cut for 1g.10gb (the engine's favourite spot).
    s = snap(free_form("a", sliced=(held("a", 0, ("gr_x", "1g.10gb")),)), fixed("z", {"1g.10gb": 2}))
    assert per_node(choose(s, mig_job("g", "1g.10gb", 1))) == {"z": 1}
    # More than the fixed node holds: it takes what it can, the rest goes free-form.
    assert per_node(choose(s, mig_job("g", "1g.10gb", 3))) == {"z": 2, "a": 1}
    # A profile outside the layout goes free-form only.
    assert per_node(choose(s, mig_job("g", "3g.40gb", 1))) == {"a": 1}


def test_best_fit_takes_the_fixed_node_with_the_fewest_instances_left_ties_by_id() -> None:
    views = (
        fixed("c", {"1g.10gb": 4}),
        fixed("b", {"1g.10gb": 4}, sliced=(held("b", 0, ("gr_x", "1g.10gb")),)),  # 3 left
        fixed("a", {"1g.10gb": 4}),
    )
    assert per_node(choose(snap(*views), mig_job("g", "1g.10gb", 1))) == {"b": 1}
    # Three singles: all on b (fullest that fits); a fourth moves on to a (tie with c, lower id).
    assert per_node(choose(snap(*views), mig_job("g", "1g.10gb", 4))) == {"b": 3, "a": 1}
    # Four on one node: b cannot (3 left), a can.
    assert per_node(choose(snap(*views), mig_job("g", "1g.10gb", 4, Topology(Constraint.SAME_NODE)))) == {"a": 4}


@pytest.mark.parametrize(
    ("count", "topology", "expected"),
    [
        # a has 3 instances left, b 4: singles fill a first.
        (4, Topology(), {"a": 3, "b": 1}),
        # Members of two: a takes one member (its third instance cannot make another), b one.
        (4, Topology(devices_per_member=2), {"a": 2, "b": 2}),
        (6, Topology(devices_per_member=2), {"a": 2, "b": 4}),
        (8, Topology(devices_per_member=2), {"a": 2, "b": 4, "free": 2}),
        # All on one node: a cannot hold four, b can.
        (4, Topology(Constraint.SAME_NODE), {"b": 4}),
        # No fixed node holds five: the free-form node takes them all.
        (5, Topology(Constraint.SAME_NODE), {"free": 5}),
        (15, Topology(Constraint.SAME_NODE), None),
    ],
)
def test_members_and_same_node_on_fixed_nodes(count: int, topology: Topology, expected: dict[str, int] | None) -> None:
    s = snap(fixed("a", {"1g.10gb": 3}), fixed("b", {"1g.10gb": 4}), free_form("free"))
    assert per_node(choose(s, mig_job("g", "1g.10gb", count, topology))) == expected


def test_host_resources_bound_a_fixed_node_too() -> None:
    two = HostResources(cpu_milli=2_000)
    s = snap(fixed("f", {"1g.10gb": 8}, cpu=4_000), free_form("a", cpu=64_000))
    assert per_node(choose(s, mig_job("g", "1g.10gb", 3, host=two))) == {"f": 2, "a": 1}
    claims = choose(s, mig_job("g", "1g.10gb", 2, host=two))
    assert claims is not None and [(c.node_id, c.cpu_milli) for c in claims] == [("f", 4_000)]
    s.take("g", claims)
    assert per_node(choose(s, mig_job("g2", "1g.10gb", 1, host=two))) == {"a": 1}
    s.release(["g"])
    assert per_node(choose(s, mig_job("g2", "1g.10gb", 1, host=two))) == {"f": 1}


def test_placing_is_read_only() -> None:
    s = snap(fixed("a", {"1g.10gb": 3}), fixed("b", {"1g.10gb": 4}), free_form("free"))
    first = choose(s, mig_job("g", "1g.10gb", 8, Topology(devices_per_member=2)))
    assert choose(s, mig_job("g", "1g.10gb", 8, Topology(devices_per_member=2))) == first
    # A request that fails part way leaves nothing behind either.
    assert choose(s, mig_job("g", "1g.10gb", 30)) is None
    assert choose(s, mig_job("g", "1g.10gb", 8, Topology(devices_per_member=2))) == first


# -- keeping the picture in step -----------------------------------------------------------------
def test_release_and_untake_give_the_instance_back() -> None:
    s = snap(fixed("f", {"3g.40gb": 2}))
    a = choose(s, mig_job("ga", "3g.40gb", 1))
    assert a is not None
    s.take("ga", a)
    b = choose(s, mig_job("gb", "3g.40gb", 1))
    assert b is not None and per_device(b) != per_device(a)  # one per device
    s.take("gb", b)
    assert choose(s, mig_job("gc", "3g.40gb", 1)) is None
    assert s.release(["ga"]) == {"f"}
    again = choose(s, mig_job("gc", "3g.40gb", 1))
    assert again is not None and per_device(again) == per_device(a)
    s.take("gc", again)
    assert choose(s, mig_job("gd", "3g.40gb", 1)) is None
    # Inventory refused gc's claim: the instance is back (the generation is refreshed separately).
    s.untake("gc", again)
    gd = choose(s, mig_job("gd", "3g.40gb", 1))
    assert gd is not None and per_device(gd) == per_device(again)
    assert s.generation("f") == 4  # one bump per claim taken


def test_put_node_replaces_the_layout_and_the_holdings() -> None:
    s = snap(fixed("f", {"1g.10gb": 2}))
    # Inventory now reports the node with both instances held by another replica's grants.
    s.put_node(fixed("f", {"1g.10gb": 2}, sliced=(held("f", 0, ("x", "1g.10gb"), ("y", "1g.10gb")),), generation=2))
    assert choose(s, mig_job("g", "1g.10gb", 1)) is None
    s.release(["x"])
    assert per_node(choose(s, mig_job("g", "1g.10gb", 1))) == {"f": 1}
    # Re-registered without a layout: a free-form node again, whole devices and all.
    s.put_node(fixed("f", {}, generation=3))
    assert s.free_count(SKU) == 2 and per_node(s.place(SKU, 2)) == {"f": 2}
    # And with one again: out of the whole-device picture.
    s.put_node(fixed("f", {"1g.10gb": 2}, generation=4))
    assert s.free_count(SKU) == 0 and s.place(SKU, 1) is None
    s.drop_node("f")
    assert choose(s, mig_job("g", "1g.10gb", 1)) is None


def test_preemption_frees_an_instance_on_a_fixed_node() -> None:
    s = snap(fixed("f", {"3g.40gb": 2}, sliced=(held("f", 0, ("gr_v", "3g.40gb")), held("f", 1, ("gr_w", "3g.40gb")))))

    def grant(gid: str, preemptible: bool = True, state: GrantState = GrantState.ACTIVE) -> Grant:
        return Grant(
            id=gid, project="p", sku=SKU, count=1, lease_ms=1, idempotency_key="", state=state, created_ms=0,
            preemptible=preemptible, shape=Shape(SliceKind.MIG, "3g.40gb", 3, 4),
            priority=PriorityClass.STANDARD if preemptible else PriorityClass.GUARANTEED,
        )  # fmt: skip

    claimant = grant("gr_new", preemptible=False, state=GrantState.QUEUED)
    (victims,) = plan(s, [claimant], [grant("gr_v")], [])
    assert [v.id for v in victims.grants] == ["gr_v"]
    # A whole device is never freed by it: the fixed node holds none.
    whole = Grant(
        id="gr_whole", project="p", sku=SKU, count=1, lease_ms=1, idempotency_key="", state=GrantState.QUEUED,
        created_ms=0, priority=PriorityClass.GUARANTEED,
    )  # fmt: skip
    assert plan(s, [whole], [grant("gr_v"), grant("gr_w")], []) == []


def test_the_broker_reads_the_layout_and_device_count_from_inventory() -> None:
    node = inventory_pb2.Node(
        id="n1",
        sku=SKU,
        generation=3,
        schedulable=True,
        devices=[
            inventory_pb2.Device(id="n1/gpu0", sku=SKU, healthy=True),
            inventory_pb2.Device(id="n1/gpu1", sku=SKU, healthy=False),
        ],
        mig_layout={"1g.10gb": 14},
    )
    view = _node_view(node, SKU)
    assert view.mig_layout == {"1g.10gb": 14} and view.device_count == 2
    assert view.free_devices == ("n1/gpu0",)
    assert _node_view(inventory_pb2.Node(id="n2", sku=SKU), SKU).mig_layout == {}


# -- the invariant -------------------------------------------------------------------------------
LAYOUTS = [
    {"1g.10gb": 14},  # all-1g.10gb on two devices
    BALANCED,
    {"3g.40gb": 3, "1g.10gb": 1},  # not uniform: counters decide
    {"2g.20gb": 6},
]
OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("place"),
            st.sampled_from(sorted(PROFILES)),
            st.integers(1, 6),
            st.sampled_from([0, 2]),  # devices_per_member
            st.booleans(),  # same node
        ),
        st.tuples(st.just("release"), st.integers(0, 30), st.just(0), st.just(0), st.just(False)),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(layouts=st.lists(st.sampled_from(range(len(LAYOUTS))), min_size=1, max_size=3), free=st.integers(0, 2), ops=OPS)
def test_no_sequence_exceeds_a_layout_or_a_device(layouts: list[int], free: int, ops: list[tuple]) -> None:
    views = [fixed(f"f{i}", LAYOUTS[n]) for i, n in enumerate(layouts)]
    views += [free_form(f"a{i}") for i in range(free)]
    s = snap(*views)
    layout_of = {v.node_id: v.mig_layout for v in views}
    # grant id -> its slices, as the broker would hold them.
    live: dict[str, list[SliceSpec]] = {}
    node_of: dict[str, str] = {}
    for i, (op, profile, count, unit, same) in enumerate(ops):
        if op == "release":
            if live:
                gid = sorted(live)[profile % len(live)]
                s.release([gid])
                del live[gid]
            continue
        if unit and count % unit:
            count += 1
        topology = Topology(Constraint.SAME_NODE if same else Constraint.NONE, True, unit)
        claims = choose(s, mig_job(f"g{i}", profile, count, topology))
        if claims is None:
            continue
        assert sum(len(c.slices) for c in claims) == count
        if same:
            assert len(claims) == 1
        for c in claims:
            if unit:
                assert len(c.slices) % unit == 0
            for sl in c.slices:
                node_of[sl.device_id] = c.node_id
        s.take(f"g{i}", claims)
        live[f"g{i}"] = [sl for c in claims for sl in c.slices]
        # Every layout count holds, each uniform device share holds, and every device's counters.
        on_node: Counter[tuple[str, str]] = Counter()
        on_device: Counter[tuple[str, str]] = Counter()
        used: dict[str, list[int]] = {}
        for specs in live.values():
            for sl in specs:
                node_id = node_of[sl.device_id]
                on_node[(node_id, sl.profile)] += 1
                on_device[(sl.device_id, sl.profile)] += 1
                c, m = used.setdefault(sl.device_id, [0, 0])
                used[sl.device_id] = [c + sl.compute, m + sl.memory]
        for (node_id, p), n in on_node.items():
            layout = layout_of[node_id]
            if layout:
                assert p in layout and n <= layout[p], (node_id, p, n)
        for (device_id, p), n in on_device.items():
            layout = layout_of[node_of[device_id]]
            if layout and all(v % 2 == 0 for v in layout.values()):
                assert n <= layout[p] // 2, (device_id, p, n)
        for c, m in used.values():
            assert c <= GEOMETRY[0] and m <= GEOMETRY[1]
