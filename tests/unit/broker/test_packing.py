"""The packing engine through the broker's own path (snapshot + placer.place): fragmentation-aware
choices, mixed slices on one device, exact bookkeeping, determinism, and the engine mirroring the
snapshot after any sequence of placements and releases."""

from __future__ import annotations

import copy
from collections import Counter, defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slicebroker.broker.domain.model import WHOLE, Shape, SliceKind
from slicebroker.broker.domain.packing import FREE, HOST_ONLY, MILLI, Demand, Dev
from slicebroker.broker.domain.placer import PlaceJob, choose, place
from slicebroker.broker.domain.snapshot import (
    ANYWHERE,
    NO_HOST,
    Constraint,
    HostResources,
    NodeClaim,
    NodeView,
    Snapshot,
    Topology,
)

SKU = "H100-SXM-80GB"
MIG = (7, 8)  # an H100's compute and memory partition counters
ONE_NODE = Topology(Constraint.SAME_NODE, required=True)


def facility(*nodes: tuple[int, int, int]) -> Snapshot:
    """(devices, cpu cores, memory GiB) per node; ids n0, n1, …"""
    s = Snapshot()
    s.slice_capacity[(SKU, "mig")] = MIG
    s.replace_sku(
        SKU,
        [
            NodeView(
                f"n{i}", SKU, 1, True, tuple(f"n{i}/gpu{d}" for d in range(g)), cpu_free=c * 1000, memory_free=m * 1024
            )
            for i, (g, c, m) in enumerate(nodes)
        ],
        0,
    )
    return s


def share(milli: int, memory: int = 0) -> Shape:
    return Shape(SliceKind.SHARE, "", milli, memory or milli)


def mig(profile: str, compute: int, memory: int) -> Shape:
    return Shape(SliceKind.MIG, profile, compute, memory)


class Script:
    """Requests through placer.place, each taken on the snapshot as the live placer takes it."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.s = snapshot
        self.n = 0

    def ask(
        self, count: int = 1, shape: Shape = WHOLE, host: HostResources = NO_HOST, topology: Topology = ANYWHERE
    ) -> list[NodeClaim] | None:
        self.n += 1
        claims = place(self.s, PlaceJob(f"g{self.n}", SKU, count, topology, shape, host))
        if claims is not None:
            self.s.take(f"g{self.n}", claims)
        return claims


def where(claims: list[NodeClaim] | None) -> list[str]:
    assert claims is not None
    return sorted([*(d for c in claims for d in c.device_ids), *(x.device_id for c in claims for x in c.slices)])


def test_a_share_goes_to_the_device_it_fills_best() -> None:
    run = Script(facility((2, 32, 256)))
    assert where(run.ask(shape=share(600))) == ["n0/gpu0"]
    # 400 fits exactly beside the 600: the device already cut, not the whole one.
    assert where(run.ask(shape=share(400))) == ["n0/gpu0"]
    assert run.s.engine(SKU).nodes["n0"].devices == {"n0/gpu0": ("share", 0, 0), "n0/gpu1": FREE}


def test_whole_devices_consolidate_and_leave_whole_nodes_for_big_requests() -> None:
    run = Script(facility((8, 64, 512), (8, 64, 512)))
    first, second = run.ask(), run.ask()
    assert {c.node_id for c in [*(first or []), *(second or [])]} == {"n0"}, "consolidated on one node"
    assert where(run.ask(8, topology=ONE_NODE)) == [f"n1/gpu{d}" for d in range(8)]


# Mixed slices on one node, as the broker places them: (devices on the node, requests, the device
# each lands on or None).
MIXED = [
    pytest.param(
        2,
        [("share", 500), ("share", 500), ("share", 300), ("share", 700)],
        ["n0/gpu0", "n0/gpu0", "n0/gpu1", "n0/gpu1"],
        id="shares-fill-one-device-then-cut-the-next",
    ),
    pytest.param(
        # The second 3g.40gb beside the first would strand a compute slice without memory (6/7
        # compute, 8/8 memory): the engine cuts the other device, where a third 3g still fits.
        2,
        [("mig", "3g.40gb"), ("mig", "3g.40gb"), ("mig", "1g.10gb"), ("share", 500)],
        ["n0/gpu0", "n0/gpu1", "n0/gpu0", None],
        id="mig-keeps-room-for-its-kind-and-no-share-goes-on-a-mig-device",
    ),
    pytest.param(
        # With one device the two 3g share it, and a 1g.10gb would be its ninth memory slice.
        1,
        [("mig", "3g.40gb"), ("mig", "3g.40gb"), ("mig", "1g.10gb")],
        ["n0/gpu0", "n0/gpu0", None],
        id="partition-geometry-the-ninth-memory-slice-of-eight",
    ),
    pytest.param(
        2,
        [("share", 500), ("mig", "1g.10gb"), ("whole", 1), ("share", 600)],
        ["n0/gpu0", "n0/gpu1", None, None],
        id="a-device-cut-one-way-takes-no-other-kind-and-no-whole-request",
    ),
    pytest.param(
        2,
        [("mig", "7g.80gb"), ("mig", "1g.10gb"), ("share", 999), ("share", 1)],
        ["n0/gpu0", "n0/gpu1", None, None],
        id="a-full-partition-device-takes-nothing-more",
    ),
    pytest.param(
        2,
        [("share", 250), ("share", 250), ("whole", 1), ("share", 500), ("share", 1)],
        ["n0/gpu0", "n0/gpu0", "n0/gpu1", "n0/gpu0", None],
        id="shares-stay-together-so-a-whole-device-remains",
    ),
]


@pytest.mark.parametrize(("devices", "requests", "landed"), MIXED)
def test_mixed_slices_on_one_node(devices: int, requests: list[tuple[str, object]], landed: list[str | None]) -> None:
    run = Script(facility((devices, 64, 512)))
    profiles = {"3g.40gb": (3, 4), "1g.10gb": (1, 1), "7g.80gb": (7, 8)}
    got: list[str | None] = []
    for kind, size in requests:
        if kind == "whole":
            claims = run.ask(int(str(size)), topology=ONE_NODE)
        elif kind == "share":
            claims = run.ask(shape=share(int(str(size))))
        else:
            claims = run.ask(shape=mig(str(size), *profiles[str(size)]))
        got.append(None if claims is None else where(claims)[0])
    assert got == landed


def test_host_resources_per_slice_are_enforced() -> None:
    run = Script(facility((2, 4, 8)))
    assert run.ask(shape=share(500), host=HostResources(5_000, 0)) is None
    assert run.ask(host=HostResources(1, 9 * 1024)) is None
    assert where(run.ask(2, host=HostResources(2_000, 4 * 1024))) == ["n0/gpu0", "n0/gpu1"]
    assert run.s.place_host(SKU, HostResources(1, 1)) is None


def test_host_only_demands_avoid_stranding_devices() -> None:
    # A device request needs 8 cores. The CPU-only demand goes where it strands no device.
    s = facility((1, 8, 64), (1, 64, 64))
    s.observe(SKU, 1, None, HostResources(8_000, 1024))
    claims = s.place_host(SKU, HostResources(8_000, 1024))
    assert claims is not None and claims[0].node_id == "n1" and claims[0].device_ids == ()


def test_release_returns_exactly_what_was_taken() -> None:
    run = Script(facility((2, 16, 64)))
    before = dict(run.s.engine(SKU).nodes["n0"].devices), run.s.engine(SKU).nodes["n0"].cpu
    run.ask(shape=share(300), host=HostResources(2_000, 0))
    run.ask(shape=mig("1g.10gb", 1, 1))
    run.s.release(["g1", "g2"])
    assert (dict(run.s.engine(SKU).nodes["n0"].devices), run.s.engine(SKU).nodes["n0"].cpu) == before


def test_several_slices_are_all_or_nothing_and_leave_nothing_behind() -> None:
    s = facility((1, 64, 512), (1, 64, 512))
    engine_before = {n: (st.cpu, dict(st.devices)) for n, st in s.engine(SKU).nodes.items()}
    job = PlaceJob("g", SKU, 3, ANYWHERE, share(600))
    assert choose(s, job) is None, "two devices hold only two slices of 600"
    assert {n: (st.cpu, dict(st.devices)) for n, st in s.engine(SKU).nodes.items()} == engine_before
    two = choose(s, PlaceJob("g", SKU, 2, ONE_NODE, share(400)))
    assert two is not None and len(two) == 1 and len(two[0].slices) == 2, "same node: both on n0's device"


def test_invalid_demands_are_refused() -> None:
    for bad in (
        lambda: Demand(0, 0, WHOLE_KIND, 0),
        lambda: Demand(0, 0, "share", 2, 500, 500),
        lambda: Demand(0, 0, "share", 1, 0, 0),
        lambda: Demand(0, 0, HOST_ONLY, 1),
        lambda: Demand(-1, 0, HOST_ONLY, 0),
    ):
        with pytest.raises(ValueError):
            bad()


WHOLE_KIND = "whole"
PROFILES = [("1g.10gb", 1, 1), ("2g.20gb", 2, 2), ("3g.40gb", 3, 4), ("7g.80gb", 7, 8)]
requests = st.one_of(
    st.tuples(st.just("share"), st.integers(1, 3), st.sampled_from([100, 250, 460, 500, 810]), st.integers(0, 8)),
    st.tuples(st.just("mig"), st.integers(1, 3), st.sampled_from(range(len(PROFILES))), st.integers(0, 8)),
    st.tuples(st.just("whole"), st.sampled_from([1, 2, 4, 8]), st.just(0), st.integers(0, 8)),
    st.tuples(st.just("release"), st.integers(0, 50), st.just(0), st.just(0)),
)


def _replay(ops: list[tuple[str, int, int, int]]) -> tuple[Snapshot, list[tuple[str, list[NodeClaim] | None]]]:
    s = facility((8, 32, 256), (4, 16, 128), (2, 96, 384), (2, 8, 64))
    run = Script(s)
    held: list[str] = []
    out: list[tuple[str, list[NodeClaim] | None]] = []
    for kind, n, size, cpu in ops:
        if kind == "release":
            if held:
                s.release([held.pop(n % len(held))])
            continue
        host = HostResources(cpu * 1000, 1024)
        if kind == "share":
            claims = run.ask(n, share(size), host)
        elif kind == "mig":
            profile, c, m = PROFILES[size]
            claims = run.ask(n, mig(profile, c, m), host)
        else:
            claims = run.ask(n, host=host, topology=ONE_NODE)
        if claims is not None:
            held.append(f"g{run.n}")
        out.append((f"g{run.n}", claims))
    return s, out


@settings(max_examples=80, deadline=None)
@given(st.lists(requests, max_size=60))
def test_no_sequence_over_commits_anything_and_replays_identically(ops: list[tuple[str, int, int, int]]) -> None:
    a, placed_a = _replay(ops)
    _, placed_b = _replay(ops)
    assert placed_a == placed_b, "deterministic"
    capacity = {
        "n0": (32_000, 256 * 1024),
        "n1": (16_000, 128 * 1024),
        "n2": (96_000, 384 * 1024),
        "n3": (8_000, 64 * 1024),
    }
    # Everything still held, from the snapshot's own records.
    cpu: Counter[str] = Counter()
    per_device: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    whole: Counter[str] = Counter()
    live = {gid for gid, claims in placed_a if claims is not None} & set(a._nodes_of_grant)
    for gid, claims in placed_a:
        if gid not in live or claims is None:
            continue
        for claim in claims:
            cpu[claim.node_id] += claim.cpu_milli
            for d in claim.device_ids:
                whole[d] += 1
            for spec in claim.slices:
                per_device[spec.device_id].append((spec.kind, spec.compute, spec.memory))
    for node_id, (cpu_cap, _) in capacity.items():
        assert cpu[node_id] <= cpu_cap
    for device, slices in per_device.items():
        assert whole[device] == 0, "a sliced device is never also held whole"
        assert len({k for k, _, _ in slices}) == 1, "one kind of slice per device"
        cap = (MILLI, MILLI) if slices[0][0] == "share" else MIG
        assert sum(c for _, c, _ in slices) <= cap[0] and sum(m for _, _, m in slices) <= cap[1]
    assert all(n == 1 for n in whole.values()), "no device held twice"
    # The engine mirrors the snapshot exactly.
    for node_id, node in a._nodes.items():
        state = a.engine(SKU).nodes[node_id]
        expected: dict[str, Dev] = dict.fromkeys(node.free, FREE)
        for d, sl in node.sliced.items():
            expected[d] = (sl.kind, sl.cap_compute - sl.used_compute, sl.cap_memory - sl.used_memory)
        assert (state.cpu, state.memory, dict(state.devices)) == (node.cpu_free, node.memory_free, expected)


def test_a_copy_for_planning_decides_alike_and_leaves_the_original_alone() -> None:
    run = Script(facility((4, 64, 512), (4, 64, 512)))
    for milli in (300, 500, 700, 250):
        run.ask(shape=share(milli))
    hypo = copy.deepcopy(run.s)
    job = PlaceJob("x", SKU, 2, ANYWHERE, share(400))
    assert choose(hypo, job) == choose(run.s, job)
    hypo.take("x", choose(hypo, job) or [])
    hypo.engine(SKU).observe(Demand(0, 0, "share", 1, 900, 900))
    assert run.s.engine(SKU).nodes != hypo.engine(SKU).nodes
    assert len(run.s.engine(SKU).workload.kinds) == 4
