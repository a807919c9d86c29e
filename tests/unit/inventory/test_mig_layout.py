"""check_mig_layout: a node's fixed MIG layout against the catalogue (profiles of the SKU, counts of
1 or more, instances that fit on the node's devices by compute and by memory)."""

from __future__ import annotations

from typing import Any

import pytest

from slicebroker.core.errors import InvalidArgument
from slicebroker.inventory.domain.catalogue import load_catalogue
from slicebroker.inventory.domain.mig import check_mig_layout, mig_profiles

CATALOGUE = load_catalogue()


def test_only_gpus_with_mig_have_mig_profiles() -> None:
    assert list(mig_profiles(CATALOGUE.require("sku", "A100-SXM-80GB"))) == [
        "1g.10gb",
        "1g.20gb",
        "2g.20gb",
        "3g.40gb",
        "4g.40gb",
        "7g.80gb",
    ]
    # RNGD's partitions are NPU partitions, not MIG; ATOM has none.
    assert mig_profiles(CATALOGUE.require("sku", "RNGD")) == {}
    assert mig_profiles(CATALOGUE.require("sku", "ATOM")) == {}


@pytest.mark.parametrize(
    ("sku", "devices", "layout", "stored"),
    [
        ("A100-SXM-80GB", 1, {}, ()),
        ("A100-SXM-80GB", 1, {"1g.10gb": 7}, (("1g.10gb", 7),)),
        # Exactly full in both dimensions: 7/7 compute, 8/8 memory.
        ("H100-SXM-80GB", 1, {"3g.40gb": 1, "2g.20gb": 2}, (("2g.20gb", 2), ("3g.40gb", 1))),
        ("H100-SXM-80GB", 1, {"1g.20gb": 4}, (("1g.20gb", 4),)),
        ("H200-SXM-141GB", 8, {"7g.141gb": 8}, (("7g.141gb", 8),)),
    ],
)
def test_good_layouts_are_stored_sorted(sku: str, devices: int, layout: dict[str, int], stored: Any) -> None:
    assert check_mig_layout("mig_layout", CATALOGUE.require("sku", sku), devices, layout) == stored


@pytest.mark.parametrize(
    ("sku", "devices", "layout", "field"),
    [
        ("A100-SXM-80GB", 1, {"1g.18gb": 1}, 'mig_layout["1g.18gb"]'),
        ("A100-SXM-80GB", 1, {"1g.10gb": 0}, 'mig_layout["1g.10gb"]'),
        ("A100-SXM-80GB", 1, {"1g.10gb": True}, 'mig_layout["1g.10gb"]'),
        ("A100-SXM-80GB", 1, {"1g.10gb": "7"}, 'mig_layout["1g.10gb"]'),
        ("A100-SXM-80GB", 1, {7: 1}, 'mig_layout["7"]'),
        ("RNGD", 1, {"1core.6gb": 1}, "mig_layout"),
        ("A100-SXM-80GB", 1, {"1g.10gb": 8}, "mig_layout"),
        ("A100-SXM-80GB", 1, {"1g.20gb": 5}, "mig_layout"),
        ("A100-SXM-80GB", 2, {"7g.80gb": 2, "1g.10gb": 1}, "mig_layout"),
    ],
)
def test_bad_layouts_name_the_field(sku: str, devices: int, layout: dict[Any, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_mig_layout("mig_layout", CATALOGUE.require("sku", sku), devices, layout)
    assert caught.value.field == field
