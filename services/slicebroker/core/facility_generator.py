"""Synthetic facilities shaped like a real national centre, as facility YAML documents.

Pure and dependency-free (no inventory imports) so that the inventory's benchmark, its tests and
`slicectl admin facility generate` share one generator while the CLI stays off the services'
code (import-linter forbids clients -> services; core is shared by both).

Shape, per SKU in the order given (each SKU gets halls of its own, so GPUs and NPUs sit in
separate halls as they do in practice):

- nodes of `devices_per_node` devices (8: HGX boards and NPU trays); a last, smaller node takes
  the remainder when the count does not divide;
- `nodes_per_rack` nodes per rack, `nodes_per_leaf` nodes per InfiniBand leaf switch: a pod
  (scalable unit) is the nodes under one leaf;
- `leaves_per_hall` pods per hall, each hall with one spine group every leaf of it connects to;
- switches are declared, so the document also exercises the leaf -> spine checks;
- with `cpu_milli_per_device` / `memory_mib_per_device`, each node offers that much host CPU and
  memory per device to grants (a typical HGX node: 224 cores and 2 TiB for 8 GPUs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from slicebroker.core.catalogue import sku_names


@dataclass(frozen=True, slots=True)
class FacilityShape:
    devices_per_node: int = 8
    nodes_per_rack: int = 4
    nodes_per_leaf: int = 32
    leaves_per_hall: int = 16
    site: str = "daejeon"
    name: str = "synthetic"
    # Host capacity per device of a node (0: none declared).
    cpu_milli_per_device: int = 0
    memory_mib_per_device: int = 0

    def host(self, devices: int) -> dict[str, int]:
        """The host keys of a node with `devices` devices (none when not declared)."""
        doc = {}
        if self.cpu_milli_per_device:
            doc["cpu_milli"] = self.cpu_milli_per_device * devices
        if self.memory_mib_per_device:
            doc["memory_mib"] = self.memory_mib_per_device * devices
        return doc


def _short(sku: str) -> str:
    """ "H100-SXM-80GB" -> "h100": node ids stay short and readable."""
    return sku.split("-", 1)[0].lower()


def generate(devices: Mapping[str, int], shape: FacilityShape = FacilityShape()) -> dict[str, Any]:
    """A facility document with `devices[sku]` devices of each SKU.

    Raises ValueError for unknown SKUs, non-positive counts or shapes, and duplicate short names.
    """
    known = sku_names()
    for value, what in (
        (shape.devices_per_node, "devices_per_node"),
        (shape.nodes_per_rack, "nodes_per_rack"),
        (shape.nodes_per_leaf, "nodes_per_leaf"),
        (shape.leaves_per_hall, "leaves_per_hall"),
    ):
        if value < 1:
            raise ValueError(f"{what} must be at least 1, not {value}")
    if shape.cpu_milli_per_device < 0 or shape.memory_mib_per_device < 0:
        raise ValueError("host CPU and memory per device must not be negative")
    if shape.nodes_per_leaf % shape.nodes_per_rack:
        raise ValueError("nodes_per_leaf must be a multiple of nodes_per_rack (racks do not span leaves)")
    shorts: dict[str, str] = {}
    for sku, count in devices.items():
        if sku not in known:
            raise ValueError(f"unknown SKU {sku!r} (known: {', '.join(known)})")
        if count < 1:
            raise ValueError(f"{sku}: the device count must be at least 1, not {count}")
        short = _short(sku)
        if short in shorts:
            raise ValueError(f"{sku} and {shorts[short]} would share node-id prefix {short!r}")
        shorts[short] = sku

    switches: list[dict[str, Any]] = []
    halls: list[dict[str, Any]] = []
    hall_no = rack_no = 0
    for sku, count in devices.items():
        short = _short(sku)
        full, rest = divmod(count, shape.devices_per_node)
        # (devices, number of nodes) runs: the full nodes, then the remainder node.
        sizes = [shape.devices_per_node] * full + ([rest] if rest else [])
        racks_per_leaf = shape.nodes_per_leaf // shape.nodes_per_rack
        node_at = 0
        while node_at < len(sizes):
            hall_no += 1
            hall = f"hall-{hall_no:02d}"
            spine = f"{hall}-spine"
            switches.append({"name": spine, "tier": "spine"})
            pods = []
            for pod_no in range(1, shape.leaves_per_hall + 1):
                if node_at >= len(sizes):
                    break
                pod = f"su-{pod_no:03d}"
                leaf = f"{hall}-{pod}-leaf"
                switches.append({"name": leaf, "tier": "leaf", "parent": spine})
                racks = []
                for _ in range(racks_per_leaf):
                    if node_at >= len(sizes):
                        break
                    rack_no += 1
                    rack = f"{short}-r{rack_no:04d}"
                    in_rack = sizes[node_at : node_at + shape.nodes_per_rack]
                    whole = sum(1 for size in in_rack if size == shape.devices_per_node)
                    entry: dict[str, Any] = {"name": rack}
                    if whole:
                        entry["node_groups"] = [
                            {"prefix": f"{rack}-n", "count": whole, "sku": sku, "devices": shape.devices_per_node}
                            | shape.host(shape.devices_per_node)
                        ]
                    if whole < len(in_rack):
                        entry["nodes"] = [
                            {"id": f"{rack}-n{whole + 1:02d}", "sku": sku, "devices": in_rack[-1]}
                            | shape.host(in_rack[-1])
                        ]
                    racks.append(entry)
                    node_at += len(in_rack)
                pods.append({"name": pod, "leaf": leaf, "racks": racks})
            halls.append({"name": hall, "pods": pods})
    return {"facility": shape.name, "switches": switches, "sites": [{"name": shape.site, "halls": halls}]}


def dump(document: Mapping[str, Any]) -> str:
    """The document as YAML, keys in the order written (the C dumper when available: 100k devices)."""
    dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return str(yaml.dump(dict(document), Dumper=dumper, sort_keys=False, default_flow_style=None, width=120))


def generate_yaml(devices: Mapping[str, int], shape: FacilityShape = FacilityShape()) -> str:
    return dump(generate(devices, shape))
