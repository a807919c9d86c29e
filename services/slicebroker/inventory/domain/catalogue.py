"""The SKU catalogue: the accelerator models the facility knows, loaded from the package data file
`catalogue.yaml` so that adding a model is a data change, not a code change."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any

import yaml

from slicebroker.core.catalogue import catalogue_text
from slicebroker.core.errors import InvalidArgument
from slicebroker.core.reasons import Reason
from slicebroker.inventory.domain.model import (
    DeviceKind,
    Geometry,
    Isolation,
    Partition,
    ResourceName,
    Sku,
    SliceKind,
    UnitVersion,
)

_NO_UNIT = UnitVersion("", "", "")


class Catalogue:
    """SKUs by canonical name, in catalogue order, and the Kubernetes names that map to them."""

    def __init__(self, skus: Sequence[Sku], unit: UnitVersion = _NO_UNIT) -> None:
        self._skus = {sku.name: sku for sku in skus}
        if len(self._skus) != len(skus):
            raise ValueError("duplicate SKU names in the catalogue")
        self.unit = unit
        self._by_resource: dict[str, list[tuple[Sku, ResourceName]]] = {}
        for sku in skus:
            for rn in sku.resource_names:
                self._by_resource.setdefault(rn.name, []).append((sku, rn))

    def __iter__(self) -> Iterator[Sku]:
        return iter(self._skus.values())

    def __len__(self) -> int:
        return len(self._skus)

    def __contains__(self, name: object) -> bool:
        return name in self._skus

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._skus)

    def require(self, field: str, name: str, *, reason: Reason = Reason.UNKNOWN_SKU) -> Sku:
        """The SKU called `name`, or InvalidArgument naming `field` and listing the known SKUs."""
        sku = self._skus.get(name)
        if sku is None:
            known = ", ".join(self._skus)
            raise InvalidArgument(field, f"unknown SKU {name!r} (known: {known})", reason=reason)
        return sku

    def resolve(self, name: str) -> tuple[tuple[Sku, ResourceName], ...]:
        """The SKUs (and what slice) a Kubernetes resource name stands for; generic names such as
        `nvidia.com/gpu` or `rebellions.ai/npu` stand for several."""
        return tuple(self._by_resource.get(name, ()))

    def select(self, field: str, names: Sequence[str]) -> tuple[Sku, ...]:
        """The SKUs named (canonical or Kubernetes resource names), in catalogue order; all for none."""
        if not names:
            return tuple(self)
        chosen: set[str] = set()
        for i, name in enumerate(names):
            if name in self._skus:
                chosen.add(name)
                continue
            matches = self.resolve(name)
            if not matches:
                known = ", ".join(self._skus)
                aliases = ", ".join(sorted(self._by_resource))
                raise InvalidArgument(
                    f"{field}[{i}]",
                    f"unknown SKU {name!r} (known: {known}; Kubernetes names: {aliases})",
                    reason=Reason.UNKNOWN_SKU,
                )
            chosen.update(sku.name for sku, _ in matches)
        return tuple(sku for sku in self if sku.name in chosen)


def _sku(entry: dict[str, Any], units: dict[str, float]) -> Sku:
    name = str(entry["name"])
    geometry = entry.get("partition_geometry")
    return Sku(
        name=name,
        vendor=str(entry["vendor"]),
        model=str(entry["model"]),
        memory_gib=int(entry["memory_gib"]),
        kind=DeviceKind(entry["kind"]),
        bf16_dense_tflops=float(entry.get("bf16_dense_tflops", 0)),
        power_w=int(entry.get("power_w", 0)),
        normalised_units=float(units.get(name, 0.0)),
        slice_kinds=tuple(
            (SliceKind(kind), Isolation(iso)) for kind, iso in (entry.get("slices") or {"whole": "exclusive"}).items()
        ),
        geometry=Geometry(int(geometry["compute_slices"]), int(geometry["memory_slices"])) if geometry else None,
        partitions=tuple(
            Partition(
                profile=str(p["profile"]),
                kind=SliceKind(p["kind"]),
                compute=int(p["compute"]),
                memory=int(p["memory"]),
                memory_gib=int(p["memory_gib"]),
                max=int(p["max"]),
                legacy=bool(p.get("legacy", False)),
            )
            for p in entry.get("partitions", ())
        ),
        resource_names=tuple(
            ResourceName(
                name=str(r["name"]),
                slice=SliceKind(r["slice"]),
                profile=str(r.get("profile", "")),
                provider=str(r.get("provider", "")),
                since=str(r.get("since", "")),
                until=str(r.get("until", "")),
                note=str(r.get("note", "")),
            )
            for r in entry.get("resource_names", ())
        ),
    )


def parse_catalogue(text: str) -> Catalogue:
    raw = yaml.safe_load(text)
    unit, values = _NO_UNIT, {}
    normalised = raw.get("normalised_units")
    if normalised:
        current = next(v for v in normalised["versions"] if v["version"] == normalised["current"])
        unit = UnitVersion(str(current["version"]), str(current["unit"]), str(current.get("basis", "")))
        values = {str(k): float(v) for k, v in current["values"].items()}
    return Catalogue([_sku(entry, values) for entry in raw["skus"]], unit)


@cache
def load_catalogue() -> Catalogue:
    """The catalogue shipped with the package (read once per process)."""
    return parse_catalogue(catalogue_text())
