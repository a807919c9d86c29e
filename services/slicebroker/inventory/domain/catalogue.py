"""The SKU catalogue: the accelerator models the facility knows, loaded from the package data file
`catalogue.yaml` so that adding a model is a data change, not a code change."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cache

import yaml

from slicebroker.core.catalogue import catalogue_text
from slicebroker.core.errors import InvalidArgument
from slicebroker.core.reasons import Reason
from slicebroker.inventory.domain.model import DeviceKind, Sku


class Catalogue:
    """SKUs by canonical name, in catalogue order."""

    def __init__(self, skus: Sequence[Sku]) -> None:
        self._skus = {sku.name: sku for sku in skus}
        if len(self._skus) != len(skus):
            raise ValueError("duplicate SKU names in the catalogue")

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


def parse_catalogue(text: str) -> Catalogue:
    raw = yaml.safe_load(text)
    return Catalogue(
        [
            Sku(
                name=str(entry["name"]),
                vendor=str(entry["vendor"]),
                model=str(entry["model"]),
                memory_gib=int(entry["memory_gib"]),
                kind=DeviceKind(entry["kind"]),
            )
            for entry in raw["skus"]
        ]
    )


@cache
def load_catalogue() -> Catalogue:
    """The catalogue shipped with the package (read once per process)."""
    return parse_catalogue(catalogue_text())
