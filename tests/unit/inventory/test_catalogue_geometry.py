"""The SKU catalogue's data: figures, normalised units, MIG and NPU partition geometry, isolation
classes and Kubernetes resource names with their aliases."""

from __future__ import annotations

import pytest

from slicebroker.core.catalogue import sku_names
from slicebroker.core.errors import InvalidArgument
from slicebroker.core.reasons import Reason
from slicebroker.inventory.domain.catalogue import load_catalogue
from slicebroker.inventory.domain.model import Isolation, SliceKind

CATALOGUE = load_catalogue()
GPUS = ("A100-SXM-80GB", "H100-SXM-80GB", "H200-SXM-141GB", "B200-SXM-180GB")


def test_the_canonical_names_are_kept_in_order() -> None:
    assert (
        CATALOGUE.names
        == sku_names()
        == (
            "H100-SXM-80GB",
            "H200-SXM-141GB",
            "A100-SXM-80GB",
            "B200-SXM-180GB",
            "RNGD",
            "ATOM",
            "REBEL",
        )
    )


@pytest.mark.parametrize("sku", CATALOGUE.names)
def test_every_sku_has_figures_and_a_normalised_unit(sku: str) -> None:
    s = CATALOGUE.require("sku", sku)
    assert s.bf16_dense_tflops > 0 and s.power_w > 0
    # The unit's basis: bf16 dense TFLOPS relative to the H100's 989, to 3 decimals.
    assert s.normalised_units == pytest.approx(round(s.bf16_dense_tflops / 989, 3))
    assert s.isolation(SliceKind.WHOLE) is Isolation.EXCLUSIVE


def test_the_unit_is_versioned() -> None:
    assert CATALOGUE.unit.version == "h100e-2026.1"
    assert CATALOGUE.unit.unit == "H100e"
    assert CATALOGUE.require("sku", "H100-SXM-80GB").normalised_units == 1.0


@pytest.mark.parametrize("sku", GPUS)
def test_gpus_have_the_six_mig_profiles_as_hardware_partitions(sku: str) -> None:
    s = CATALOGUE.require("sku", sku)
    assert s.isolation(SliceKind.MIG) is Isolation.HARDWARE
    assert s.isolation(SliceKind.SHARE) is Isolation.SOFT
    assert [p.profile.split(".")[0] for p in s.partitions] == ["1g", "1g", "2g", "3g", "4g", "7g"]
    assert s.partitions[-1].memory_gib == s.memory_gib
    assert s.geometry is not None and (s.geometry.compute_slices, s.geometry.memory_slices) == (7, 8)


def test_the_h100_profiles_are_nvidias() -> None:
    h100 = CATALOGUE.require("sku", "H100-SXM-80GB")
    assert [p.profile for p in h100.partitions] == ["1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"]


@pytest.mark.parametrize("sku", [s.name for s in CATALOGUE if s.partitions])
def test_max_per_device_follows_from_the_counters(sku: str) -> None:
    """`max` is documentation; the counters are what claims enforce, so they must agree."""
    s = CATALOGUE.require("sku", sku)
    assert s.geometry is not None
    for p in s.partitions:
        assert p.max == min(s.geometry.compute_slices // p.compute, s.geometry.memory_slices // p.memory), p


def test_rngd_is_whole_with_legacy_core_partitions() -> None:
    rngd = CATALOGUE.require("sku", "RNGD")
    assert rngd.isolation(SliceKind.NPU_PARTITION) is Isolation.HARDWARE
    assert all(p.legacy and p.kind is SliceKind.NPU_PARTITION for p in rngd.partitions)
    assert [(p.profile, p.max) for p in rngd.partitions] == [("1core.6gb", 8), ("2core.12gb", 4), ("4core.24gb", 2)]
    ((sku, name),) = CATALOGUE.resolve("furiosa.ai/rngd-2core.12gb")
    assert (sku.name, name.slice, name.profile, name.until) == ("RNGD", SliceKind.NPU_PARTITION, "2core.12gb", "2024.2")
    ((sku, name),) = CATALOGUE.resolve("furiosa.ai/rngd")
    assert (sku.name, name.slice) == ("RNGD", SliceKind.WHOLE)


def test_rebellions_names_classic_and_generic() -> None:
    assert [s.name for s, _ in CATALOGUE.resolve("rebellions.ai/npu")] == ["ATOM", "REBEL"]
    assert [s.name for s, _ in CATALOGUE.resolve("rebellions.ai/ATOM")] == ["ATOM"]
    ((sku, name),) = CATALOGUE.resolve("rebellions.ai/REBEL")
    assert (sku.name, name.since) == ("REBEL", "v0.4.0")


def test_nvidia_names_map_to_every_gpu_and_mig_names_to_profiles() -> None:
    assert sorted(s.name for s, _ in CATALOGUE.resolve("nvidia.com/gpu")) == sorted(GPUS)
    matches = CATALOGUE.resolve("nvidia.com/mig-1g.10gb")
    assert sorted(s.name for s, _ in matches) == ["A100-SXM-80GB", "H100-SXM-80GB"]
    assert {n.profile for _, n in matches} == {"1g.10gb"}


@pytest.mark.parametrize("sku", CATALOGUE.names)
def test_every_partition_name_points_at_a_profile_of_its_sku(sku: str) -> None:
    s = CATALOGUE.require("sku", sku)
    for name in s.resource_names:
        if name.profile:
            assert s.partition(name.profile) is not None, name
        assert s.isolation(name.slice) is not None, name


def test_select_by_canonical_or_kubernetes_name() -> None:
    assert [s.name for s in CATALOGUE.select("names", [])] == list(CATALOGUE.names)
    assert [s.name for s in CATALOGUE.select("names", ["REBEL", "furiosa.ai/rngd"])] == ["RNGD", "REBEL"]


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(InvalidArgument) as caught:
        CATALOGUE.select("names", ["H100-SXM-80GB", "nvidia.com/h100"])
    assert caught.value.field == "names[1]"
    assert caught.value.reason is Reason.UNKNOWN_SKU
    assert "H100-SXM-80GB" in caught.value.message and "rebellions.ai/npu" in caught.value.message
