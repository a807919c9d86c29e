"""The SKU catalogue file every service reads: one data file, so that inventory (which serves it),
quota (which caps by it) and the rest never disagree on which accelerator models exist."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from importlib import resources
from types import MappingProxyType

import yaml


@cache
def catalogue_text() -> str:
    return resources.files("slicebroker.core").joinpath("catalogue.yaml").read_text(encoding="utf-8")


@cache
def sku_names() -> tuple[str, ...]:
    """Canonical SKU names, in catalogue order."""
    return tuple(str(entry["name"]) for entry in yaml.safe_load(catalogue_text())["skus"])


@dataclass(frozen=True, slots=True)
class PartitionSize:
    """A hardware partition profile as fractions of its device: its compute and memory counters
    over the SKU's partition geometry (a 1g.10gb MIG slice of an H100 is 1/7 and 1/8; an RNGD
    2core.12gb partition is 2/8 and 2/8)."""

    compute: Fraction
    memory: Fraction


@cache
def partition_sizes() -> Mapping[str, Mapping[str, PartitionSize]]:
    """SKU -> partition profile -> its size, for every SKU the catalogue lists partitions of."""
    out: dict[str, Mapping[str, PartitionSize]] = {}
    for sku in yaml.safe_load(catalogue_text())["skus"]:
        geometry = sku.get("partition_geometry") or {}
        compute, memory = int(geometry.get("compute_slices", 0)), int(geometry.get("memory_slices", 0))
        if compute <= 0 or memory <= 0:
            continue
        out[str(sku["name"])] = MappingProxyType(
            {
                str(p["profile"]): PartitionSize(
                    Fraction(int(p["compute"]), compute), Fraction(int(p["memory"]), memory)
                )
                for p in sku.get("partitions") or []
            }
        )
    return MappingProxyType(out)
