"""Gang members that each want several devices, split from a grant the broker placed in whole
members; and node sync of nodes that advertise whole devices or only MIG instances."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slicebroker.operator import mapping
from slicebroker.operator.controller import node_shape
from slicebroker.operator.settings import OperatorSettings

SETTINGS = OperatorSettings()


@given(
    per_member=st.integers(1, 4),
    members_per_node=st.lists(st.integers(1, 3), min_size=1, max_size=5),
    pinned_first=st.booleans(),
)
def test_a_grant_placed_in_whole_members_splits_one_node_per_member(
    per_member: int, members_per_node: list[int], pinned_first: bool
) -> None:
    slices = [
        (f"n{n}", f"n{n}/gpu{d}")
        for n, k in enumerate(members_per_node)
        for d in reversed(range(k * per_member))  # the broker's order is not the operator's
    ]
    names = [f"m{i}" for i in range(sum(members_per_node))]
    pinned = {names[-1]: "n0"} if pinned_first else {}
    split = mapping.assign_members(names, slices, per_member, pinned)
    assert split is not None
    assert sorted(i for ids in split.values() for i in ids) == list(range(len(slices))), "each slice once"
    for member, ids in split.items():
        assert len(ids) == per_member
        assert len({slices[i][0] for i in ids}) == 1, f"{member} spans nodes"
    if pinned_first:
        assert {slices[i][0] for i in split[names[-1]]} == {"n0"}


def node(capacity: dict[str, str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "n1", "labels": labels or {}}, "status": {"capacity": {"cpu": "64", **capacity}}}


@pytest.mark.parametrize(
    ("capacity", "labels", "expected"),
    [
        # Whole devices, as before.
        ({"nvidia.com/gpu": "8"}, {"slicebroker.io/sku": "H100-SXM-80GB"}, ("H100-SXM-80GB", 8)),
        ({"furiosa.ai/rngd": "4"}, {}, ("RNGD", 4)),
        # nvidia.com/gpu fits several SKUs: the GPU product label names one.
        ({"nvidia.com/gpu": "8"}, {"nvidia.com/gpu.product": "NVIDIA-H200"}, ("H200-SXM-141GB", 8)),
        ({"nvidia.com/gpu": "8"}, {}, None),
        # MIG only: the physical GPUs from nvidia.com/gpu.count ...
        (
            {"nvidia.com/mig-1g.10gb": "14", "nvidia.com/gpu": "0"},
            {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB", "nvidia.com/gpu.count": "2"},
            ("A100-SXM-80GB", 2),
        ),
        # ... else the fewest GPUs the instances fit on (7 x 1g.10gb is one; 3g + 2 x 2g is one).
        ({"nvidia.com/mig-1g.10gb": "7"}, {"slicebroker.io/sku": "H100-SXM-80GB"}, ("H100-SXM-80GB", 1)),
        (
            {"nvidia.com/mig-3g.40gb": "1", "nvidia.com/mig-2g.20gb": "2"},
            {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
            ("H100-SXM-80GB", 1),
        ),
        ({"nvidia.com/mig-1g.10gb": "8"}, {"slicebroker.io/sku": "H100-SXM-80GB"}, ("H100-SXM-80GB", 2)),
        # A profile only one SKU has needs no label at all.
        ({"nvidia.com/mig-7g.141gb": "4"}, {}, ("H200-SXM-141GB", 4)),
        # A SKU label that does not publish the profile, or no way to tell H100 from A100: not synced.
        ({"nvidia.com/mig-1g.10gb": "7"}, {"slicebroker.io/sku": "H200-SXM-141GB"}, None),
        ({"nvidia.com/mig-1g.10gb": "7"}, {}, None),
        # Nothing accelerated.
        ({"memory": "512Gi"}, {}, None),
    ],
)
def test_node_shape(capacity: dict[str, str], labels: dict[str, str], expected: tuple[str, int] | None) -> None:
    shape = node_shape(node(capacity, labels), SETTINGS)
    assert (shape[:2] if shape else None) == expected


def test_a_mig_node_keeps_its_topology_labels() -> None:
    labels = {"slicebroker.io/sku": "H100-SXM-80GB", "slicebroker.io/leaf": "leaf-9", "slicebroker.io/rack": "r9"}
    shape = node_shape(node({"nvidia.com/mig-1g.10gb": "7"}, labels), SETTINGS)
    topology = {"site": SETTINGS.default_site, "rack": "r9", "leaf": "leaf-9"}
    assert shape == ("H100-SXM-80GB", 1, topology, {"1g.10gb": 7})


A100_LABELS = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}


@pytest.mark.parametrize(
    ("capacity", "labels", "expected"),
    [
        # Whole devices: no layout (inventory cuts them as requests come), even with MIG names next
        # to nvidia.com/gpu (the mixed strategy with some GPUs left whole).
        ({"nvidia.com/gpu": "8"}, {"slicebroker.io/sku": "H100-SXM-80GB"}, {}),
        ({"nvidia.com/gpu": "4", "nvidia.com/mig-1g.10gb": "28"}, A100_LABELS, {}),
        ({"furiosa.ai/rngd": "4"}, {}, {}),
        # MIG only: the instances it advertises, profile by profile, as its layout.
        ({"nvidia.com/mig-1g.10gb": "7"}, A100_LABELS, {"1g.10gb": 7}),
        ({"nvidia.com/mig-1g.10gb": "14", "nvidia.com/gpu": "0"}, A100_LABELS, {"1g.10gb": 14}),
        (
            {"nvidia.com/mig-3g.40gb": "1", "nvidia.com/mig-2g.20gb": "2", "nvidia.com/mig-1g.10gb": "0"},
            A100_LABELS,
            {"3g.40gb": 1, "2g.20gb": 2},
        ),
    ],
)
def test_node_shape_mig_layout(capacity: dict[str, str], labels: dict[str, str], expected: dict[str, int]) -> None:
    shape = node_shape(node(capacity, labels), SETTINGS)
    assert shape is not None
    assert shape.mig_layout == expected


def test_a_gpu_count_label_too_small_for_the_instances_gives_way_to_them() -> None:
    # Inventory refuses a layout its devices cannot carry; the advertised instances are what is real.
    labels = A100_LABELS | {"nvidia.com/gpu.count": "1"}
    shape = node_shape(node({"nvidia.com/mig-1g.10gb": "14"}, labels), SETTINGS)
    assert shape is not None and (shape.devices, shape.mig_layout) == (2, {"1g.10gb": 14})
