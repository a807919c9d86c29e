"""Guarantees against capacity: whether the nominal quota promised across the tenant tree, per
resource class, is more than the facility has.

Nominal quota is what a tenant is guaranteed, so the sum of every tenant's nominal for a class is
what the facility has promised of it. Promising more than there is is allowed (an operator may
be about to add nodes, or count on guarantees not all being used at once), so it is never
refused: writes that make a class over-committed answer with a warning, and an admin check lists
every over-committed class. Capacity is what inventory reports as healthy devices, turned into
classes by the same `charges` every reservation uses, so a family counts its SKUs' devices and
"accel" their normalised units.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from slicebroker.quota.domain.amount import format_units
from slicebroker.quota.domain.model import TenantNode
from slicebroker.quota.domain.resources import MEMORY_SUFFIX, charges, skus


class CapacitySource(Protocol):
    """Where the facility's capacity comes from (inventory, over gRPC)."""

    async def healthy_devices(self) -> Mapping[str, int]:
        """Healthy devices per SKU registered now."""
        ...


@dataclass(frozen=True, slots=True)
class Commitment:
    """One class: units guaranteed (sum of nominal quota) and units the facility has."""

    resource_class: str
    guaranteed: int
    capacity: int

    @property
    def over_committed(self) -> bool:
        return self.guaranteed > self.capacity

    @property
    def over_by(self) -> int:
        return max(0, self.guaranteed - self.capacity)

    def warning(self) -> str:
        return (
            f"guarantees for {self.resource_class} ({format_units(self.guaranteed)}) exceed the capacity inventory "
            f"reports ({format_units(self.capacity)}) by {format_units(self.over_by)}"
        )


def class_capacity(devices: Mapping[str, int]) -> dict[str, int]:
    """Units per class of `devices` whole devices per SKU (SKUs outside the catalogue are ignored:
    no quota can name them)."""
    out: dict[str, int] = {}
    for sku, count in devices.items():
        if sku not in skus() or count <= 0:
            continue
        for resource, units in charges(sku, "", count).items():
            if not resource.endswith(MEMORY_SUFFIX):
                out[resource] = out.get(resource, 0) + units
    return out


def commitments(nodes: Iterable[TenantNode], capacity: Mapping[str, int]) -> list[Commitment]:
    """Every class some tenant guarantees, over-committed ones first (most over first), then by name."""
    guaranteed: dict[str, int] = {}
    for node in nodes:
        for cls, entry in node.entries.items():
            units = entry.nominal.finite()
            if units > 0:
                guaranteed[cls] = guaranteed.get(cls, 0) + units
    rows = [Commitment(cls, units, capacity.get(cls, 0)) for cls, units in guaranteed.items()]
    rows.sort(key=lambda c: (-c.over_by, c.resource_class))
    return rows


def warnings_for(rows: Sequence[Commitment], classes: Iterable[str]) -> tuple[str, ...]:
    """Warnings for the over-committed classes among `classes` (those a write just changed)."""
    wanted = set(classes)
    return tuple(c.warning() for c in rows if c.over_committed and c.resource_class in wanted)
