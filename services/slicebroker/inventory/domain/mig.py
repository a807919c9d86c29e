"""MIG layouts: the instances a node's GPUs are cut into ahead of time (a MIG manager's fixed
layout, as the NVIDIA device plugin's mixed strategy advertises it), checked against the catalogue.

RegisterNode and facility YAML check a layout the same way, here: the SKU has MIG profiles, each
profile named is one of them, each count is at least 1, and the instances fit on the node's
devices by compute and by memory (what each profile takes of a device, from
`core.catalogue.partition_sizes`, summed over the node). That is a necessary condition only (it
does not pack instances device by device); what the node's MIG manager really made is the truth,
and the layout says what it made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slicebroker.core.catalogue import PartitionSize, instances_size, partition_sizes
from slicebroker.core.errors import InvalidArgument
from slicebroker.core.reasons import Reason
from slicebroker.inventory.domain.model import MigLayout, Sku, SliceKind


def mig_profiles(sku: Sku) -> dict[str, PartitionSize]:
    """The SKU's MIG profiles with their sizes, in catalogue order; empty for a SKU without MIG."""
    sizes = partition_sizes().get(sku.name, {})
    return {
        profile: size
        for profile, size in sizes.items()
        if (partition := sku.partition(profile)) is not None and partition.kind is SliceKind.MIG
    }


def check_mig_layout(
    field: str, sku: Sku, device_count: int, layout: Mapping[Any, object], reason: Reason | None = None
) -> MigLayout:
    """`layout` (profile -> instances across the node) as stored, sorted by profile; empty for none.
    A bad layout is InvalidArgument naming `field` (and the profile, as `field["1g.10gb"]`)."""
    if not layout:
        return ()
    profiles = mig_profiles(sku)
    if not profiles:
        raise InvalidArgument(field, f"SKU {sku.name!r} has no MIG profiles", reason=reason)
    out: list[tuple[str, int]] = []
    for profile, count in layout.items():
        where = f'{field}["{profile}"]'
        size = profiles.get(profile) if isinstance(profile, str) else None
        if size is None:
            known = ", ".join(profiles)
            raise InvalidArgument(
                where, f"{profile!r} is not a MIG profile of {sku.name} (known: {known})", reason=reason
            )
        # bool is an int in Python; `7g.80gb: yes` is a mistake, not 1.
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidArgument(where, f"must be a count of instances, 1 or more, not {count!r}", reason=reason)
        out.append((str(profile), count))
    total = instances_size(sku.name, dict(out))
    for dimension, used in (("compute", total.compute), ("memory", total.memory)):
        if used > device_count:
            raise InvalidArgument(
                field,
                f"the instances take {float(used):.2f} devices' {dimension}, more than the node's "
                f"{device_count} {sku.name} devices",
                reason=reason,
            )
    return tuple(sorted(out))
