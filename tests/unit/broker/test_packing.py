"""The packing engine: exact capacity bookkeeping, fragmentation-aware choices, determinism."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slicebroker.broker.domain.packing import MILLI, Demand, Packer, PackNode, Placement


def nodes(*specs: tuple[str, int, int, int]) -> list[PackNode]:
    """(model, cpu cores, memory GiB, gpus) per node; ids n0, n1, …"""
    return [PackNode(f"n{i}", m, c * 1000, g * 1024, n) for i, (m, c, g, n) in enumerate(specs)]


def share(milli: int, cpu: int = 1) -> Demand:
    return Demand(cpu_milli=cpu * 1000, memory_mib=1024, gpus=1, gpu_milli=milli)


def whole(n: int, cpu: int = 1) -> Demand:
    return Demand(cpu_milli=cpu * 1000, memory_mib=1024, gpus=n, gpu_milli=MILLI)


def test_a_share_goes_to_the_gpu_it_fills_best() -> None:
    packer = Packer(nodes(("A", 32, 256, 2)))
    first = packer.place(share(600))
    assert first == Placement("n0", ((0, 600),))
    # 400 fits exactly beside the 600: the half-full GPU, not the empty one.
    assert packer.place(share(400)) == Placement("n0", ((0, 400),))
    assert packer.gpu[0] == [0, MILLI]


def test_whole_gpus_go_where_they_leave_whole_nodes_for_big_tasks() -> None:
    packer = Packer(nodes(("A", 64, 512, 8), ("A", 64, 512, 8)))
    packer.place(whole(1))
    packer.place(whole(1))
    assert {p for p in (0, 1) if packer.gpu[p].count(MILLI) < 8} == {0}, "consolidated on one node"
    assert packer.place(whole(8)) == Placement("n1", tuple((i, MILLI) for i in range(8)))


def test_cpu_and_memory_are_enforced() -> None:
    packer = Packer(nodes(("A", 4, 8, 2)))
    assert packer.place(Demand(cpu_milli=5000, memory_mib=1, gpus=0, gpu_milli=0)) is None
    assert packer.place(Demand(cpu_milli=1, memory_mib=9 * 1024, gpus=1, gpu_milli=MILLI)) is None
    assert packer.place(Demand(cpu_milli=4000, memory_mib=8 * 1024, gpus=2, gpu_milli=MILLI)) is not None
    assert packer.place(Demand(cpu_milli=1, memory_mib=1, gpus=0, gpu_milli=0)) is None


def test_model_constraints_are_honoured() -> None:
    packer = Packer(nodes(("T4", 32, 128, 2), ("V100", 32, 128, 2)))
    placed = packer.place(Demand(1000, 1024, 1, MILLI, models=frozenset({"V100"})))
    assert placed is not None and placed.node == "n1"


def test_cpu_only_tasks_avoid_stranding_gpus() -> None:
    # A GPU task needs 8 cores. The CPU-only task should go where it strands no GPU.
    packer = Packer(nodes(("A", 8, 64, 1), ("A", 64, 64, 1)))
    packer.workload.observe(Demand(8000, 1024, 1, MILLI))
    placed = packer.place(Demand(cpu_milli=8000, memory_mib=1024, gpus=0, gpu_milli=0))
    assert placed is not None and placed.node == "n1"


def test_release_returns_exactly_what_was_taken() -> None:
    packer = Packer(nodes(("A", 16, 64, 2)))
    demand = share(300)
    placed = packer.place(demand)
    assert placed is not None
    packer.release(placed, demand)
    assert packer.gpu[0] == [MILLI, MILLI] and packer.cpu[0] == 16000 and packer.used_gpu_milli == 0


def test_invalid_demands_are_refused() -> None:
    with pytest.raises(ValueError):
        Demand(1000, 1024, 2, 500)
    with pytest.raises(ValueError):
        Demand(1000, 1024, 1, 0)


demands = st.one_of(
    st.builds(share, st.sampled_from([100, 250, 300, 460, 500, 700]), st.integers(1, 8)),
    st.builds(whole, st.sampled_from([1, 2, 4, 8]), st.integers(1, 16)),
    st.builds(lambda c: Demand(c * 1000, 2048, 0, 0), st.integers(1, 16)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(demands, max_size=80))
def test_no_sequence_over_commits_anything_and_replays_identically(seq: list[Demand]) -> None:
    cluster = nodes(("A", 32, 256, 8), ("A", 16, 128, 4), ("B", 96, 384, 2), ("B", 8, 64, 2))
    a, b = Packer(cluster), Packer(cluster)
    for demand in seq:
        placed_a, placed_b = a.place(demand), b.place(demand)
        assert placed_a == placed_b, "deterministic"
        for i, node in enumerate(cluster):
            assert 0 <= a.cpu[i] <= node.cpu_milli
            assert 0 <= a.mem[i] <= node.memory_mib
            assert all(0 <= g <= MILLI for g in a.gpu[i])
        if placed_a is not None:
            assert len(placed_a.gpus) == demand.gpus
            assert len({index for index, _ in placed_a.gpus}) == demand.gpus
    assert a.used_gpu_milli == a.recount_used_gpu_milli()
