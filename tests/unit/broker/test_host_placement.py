"""Placement with host CPU and memory per slice: table cases for every constraint, and a property
that no sequence of placements and releases ever puts more on a node than its CPU and memory."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from slicebroker.broker.domain.snapshot import (
    Constraint,
    HostResources,
    NodeClaim,
    NodeView,
    SliceSpec,
    Snapshot,
    Topology,
)

SKU = "H100-SXM-80GB"


def node(name: str, free: int, cpu: int, mem: int, *, leaf: str = "", nvlink: str = "") -> NodeView:
    return NodeView(
        node_id=name,
        sku=SKU,
        generation=1,
        schedulable=True,
        free_devices=tuple(f"{name}/gpu{i}" for i in range(free)),
        nvlink_domain=nvlink,
        leaf=leaf,
        cpu_free=cpu,
        memory_free=mem,
    )


def snap(*views: NodeView) -> Snapshot:
    s = Snapshot()
    s.replace_sku(SKU, views, 0)
    s.slice_capacity[(SKU, "mig")] = (7, 8)
    return s


def devices(claims: list[NodeClaim] | None) -> dict[str, int]:
    assert claims is not None
    return {c.node_id: len(c.device_ids) + len(c.slices) for c in claims}


CPU2 = HostResources(cpu_milli=2_000)


def test_no_host_request_places_as_before_even_on_nodes_without_host_capacity() -> None:
    s = snap(node("a", 8, 0, 0))
    assert devices(s.place(SKU, 4)) == {"a": 4}


def test_a_node_without_enough_cpu_is_skipped_for_the_one_that_has_it() -> None:
    s = snap(node("a", 8, 3_000, 0), node("b", 8, 16_000, 0))
    claims = s.place(SKU, 4, host=CPU2)
    assert devices(claims) == {"b": 4}
    assert claims is not None and (claims[0].cpu_milli, claims[0].memory_mib) == (8_000, 0)


def test_host_resources_cap_what_a_node_takes_and_a_gang_spans_nodes() -> None:
    s = snap(node("a", 8, 6_000, 1 << 20), node("b", 8, 4_000, 1 << 20))
    claims = s.place(SKU, 5, host=CPU2)
    assert devices(claims) == {"a": 3, "b": 2}
    assert s.place(SKU, 6, host=CPU2) is None


def test_memory_counts_too() -> None:
    s = snap(node("a", 8, 64_000, 1024), node("b", 8, 64_000, 4096))
    assert devices(s.place(SKU, 2, host=HostResources(1_000, 2048))) == {"b": 2}


def test_same_node_and_spread_and_leaf() -> None:
    s = snap(
        node("a", 8, 2_000, 0, leaf="l1"),
        node("b", 8, 8_000, 0, leaf="l1"),
        node("c", 8, 8_000, 0, leaf="l2"),
    )
    assert devices(s.place(SKU, 4, Topology(Constraint.SAME_NODE), CPU2)) == {"b": 4}
    assert devices(s.place(SKU, 3, Topology(Constraint.SPREAD), CPU2)) == {"a": 1, "b": 1, "c": 1}
    # No node holds 5: l1 holds 1 + 4 = 5 usable devices, l2 only 4.
    assert devices(s.place(SKU, 5, Topology(Constraint.SAME_LEAF), CPU2)) == {"a": 1, "b": 4}
    assert s.place(SKU, 9, Topology(Constraint.SAME_NODE), CPU2) is None
    preferred = s.place(SKU, 9, Topology(Constraint.SAME_NODE, required=False), CPU2)
    assert sum(devices(preferred).values()) == 9


def test_take_and_release_move_host_resources() -> None:
    s = snap(node("a", 8, 4_000, 0))
    first = s.place(SKU, 2, host=CPU2)
    assert first is not None
    s.take("g1", first)
    assert s.place(SKU, 1, host=CPU2) is None  # CPU is gone though 6 GPUs are free
    assert devices(s.place(SKU, 6)) == {"a": 6}  # requests without host resources still fit
    s.release(["g1"])
    assert devices(s.place(SKU, 2, host=CPU2)) == {"a": 2}


def test_untake_gives_host_resources_back() -> None:
    s = snap(node("a", 8, 4_000, 0))
    claims = s.place(SKU, 2, host=CPU2)
    assert claims is not None
    s.take("g1", claims)
    s.untake("g1", claims)
    assert devices(s.place(SKU, 2, host=CPU2)) == {"a": 2}


def test_slices_respect_host_resources_per_slice() -> None:
    s = snap(node("a", 1, 2_000, 0), node("b", 1, 8_000, 0))
    spec = SliceSpec("", "mig", "1g.10gb", 1, 1)
    claims = s.place_slices(SKU, spec, 5, host=CPU2)
    assert devices(claims) == {"a": 1, "b": 4}
    assert claims is not None and [(c.node_id, c.cpu_milli) for c in claims] == [("a", 2_000), ("b", 8_000)]
    assert s.place_slices(SKU, spec, 6, host=CPU2) is None


@settings(max_examples=200, deadline=None)
@given(
    nodes=st.lists(st.tuples(st.integers(1, 8), st.integers(0, 16_000), st.integers(0, 8192)), min_size=1, max_size=6),
    ops=st.lists(
        st.tuples(
            st.sampled_from(["whole", "mig", "release"]),
            st.integers(1, 6),
            st.integers(0, 4_000),
            st.integers(0, 3000),
            st.sampled_from(list(Constraint)),
        ),
        max_size=30,
    ),
)
def test_no_placement_ever_exceeds_a_node_s_cpu_or_memory(
    nodes: list[tuple[int, int, int]], ops: list[tuple[str, int, int, int, Constraint]]
) -> None:
    views = [node(f"n{i}", free, cpu, mem, leaf=f"l{i % 2}") for i, (free, cpu, mem) in enumerate(nodes)]
    capacity = {v.node_id: (v.cpu_free, v.memory_free) for v in views}
    s = snap(*views)
    held: dict[str, list[NodeClaim]] = {}
    for i, (kind, count, cpu, mem, constraint) in enumerate(ops):
        if kind == "release":
            if held:
                gid = sorted(held)[count % len(held)]
                s.release([gid])
                del held[gid]
            continue
        host = HostResources(cpu, mem)
        if kind == "whole":
            claims = s.place(SKU, count, Topology(constraint), host)
        else:
            claims = s.place_slices(SKU, SliceSpec("", "mig", "1g.10gb", 1, 1), count, host=host)
        if claims is None:
            continue
        for claim in claims:
            n = len(claim.device_ids) + len(claim.slices)
            assert (claim.cpu_milli, claim.memory_mib) == host.times(n)
        assert sum(len(c.device_ids) + len(c.slices) for c in claims) == count
        s.take(f"g{i}", claims)
        held[f"g{i}"] = claims
        used: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for grant_claims in held.values():
            for claim in grant_claims:
                used[claim.node_id][0] += claim.cpu_milli
                used[claim.node_id][1] += claim.memory_mib
        for node_id, (cpu_used, mem_used) in used.items():
            assert cpu_used <= capacity[node_id][0] and mem_used <= capacity[node_id][1]
