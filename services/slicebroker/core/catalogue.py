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


def instances_size(sku: str, instances: Mapping[str, int]) -> PartitionSize:
    """What `instances` (partition profile -> count) of `sku` take together, in devices of
    compute and of memory; every profile must be one of the SKU's."""
    sizes = partition_sizes()[sku]
    return PartitionSize(
        sum((sizes[p].compute * n for p, n in instances.items()), Fraction(0)),
        sum((sizes[p].memory * n for p, n in instances.items()), Fraction(0)),
    )


# How the price book and the ledger name a slice kind: the broker's generic kind made specific
# with its profile ("mig" + "1g.10gb" -> "mig-1g.10gb"; a share's profile is its fraction).
_PRICED_KINDS = {"mig": "mig", "share": "fraction", "npu_partition": "npu"}
WHOLE_KIND = "whole"


def canonical_kind(kind: str, profile: str) -> str:
    """The slice kind as the price book names it ("whole", "mig-1g.10gb", "npu-2core.12gb",
    "fraction-0.25"); kinds already specific, and "" (a whole device), pass as they are."""
    if not kind:
        return WHOLE_KIND
    prefix = _PRICED_KINDS.get(kind)
    if prefix is None or not profile:
        return kind
    return f"{prefix}-{profile}"
