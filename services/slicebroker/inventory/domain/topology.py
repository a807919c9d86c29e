"""Questions about the topology tree (site -> hall -> pod -> rack -> node, plus NVLink domains and
InfiniBand leaves and spines), answered over a snapshot of nodes. Pure: the service reads the
nodes, these functions count."""

from __future__ import annotations

from collections.abc import Iterable

from slicebroker.core.errors import InvalidArgument
from slicebroker.inventory.domain.catalogue import Catalogue
from slicebroker.inventory.domain.model import CapacityRow, Node, Subtree

GROUP_BY = ("", "site", "hall", "pod", "rack", "leaf")


def check_group_by(value: str) -> str:
    if value not in GROUP_BY:
        raise InvalidArgument(
            "group_by", f"must be one of {', '.join(g or '(empty)' for g in GROUP_BY)}, not {value!r}"
        )
    return value


def capacity_rows(
    nodes: Iterable[Node], subtree: Subtree, group_by: str, catalogue: Catalogue
) -> tuple[CapacityRow, ...]:
    """Devices by state per (group, SKU) for the nodes under `subtree`; rows sorted by group, then
    catalogue order. A device on a cordoned or draining node counts as cordoned, not free."""
    counts: dict[tuple[str, str], list[int]] = {}
    for node in nodes:
        if not subtree.contains(node):
            continue
        group = getattr(node, group_by) if group_by else ""
        c = counts.setdefault((group, node.sku), [0] * 7)
        c[0] += 1
        for device in node.devices:
            c[1] += 1
            if not device.healthy:
                c[5] += 1
            elif device.holder:
                c[3] += 1
            elif device.slices:
                c[4] += 1
            elif not node.schedulable:
                c[6] += 1
            else:
                c[2] += 1
    order = {name: i for i, name in enumerate(catalogue.names)}
    rows = []
    for (group, sku), c in sorted(counts.items(), key=lambda item: (item[0][0], order.get(item[0][1], 99))):
        units = catalogue.require("sku", sku).normalised_units if sku in catalogue else 0.0
        rows.append(
            CapacityRow(
                group=group,
                sku=sku,
                nodes=c[0],
                devices=c[1],
                free=c[2],
                held=c[3],
                sliced=c[4],
                unhealthy=c[5],
                cordoned=c[6],
                free_units=round(c[2] * units, 3),
            )
        )
    return tuple(rows)
