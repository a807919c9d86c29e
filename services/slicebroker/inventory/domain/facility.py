"""Facility descriptions: the YAML an operator writes, parsed and validated into node descriptions.

The format (see examples/facility.yaml)::

    facility: kisti-ai-centre            # optional label
    sites:
      - name: daejeon
        racks:
          - name: h100-r001
            nodes:                       # nodes one by one ...
              - {id: h100-r001-n01, sku: H100-SXM-80GB, devices: 8}
            node_groups:                 # ... and/or runs of alike nodes: ids prefix + 01, 02, ...
              - {prefix: h100-r001-n, count: 4, sku: H100-SXM-80GB, devices: 8}
              - {prefix: h100-r001-n, start: 5, count: 2, sku: H100-SXM-80GB, devices: 8}

Everything is checked before anything is registered. A refusal is InvalidArgument with reason
INVALID_FACILITY (or UNKNOWN_SKU) whose field names the place in the document, e.g.
"yaml: sites[0].racks[2].nodes[1].sku".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from slicebroker.core.errors import InvalidArgument
from slicebroker.core.ids import NAME_RE
from slicebroker.core.reasons import Reason
from slicebroker.inventory.domain.catalogue import Catalogue
from slicebroker.inventory.domain.model import MAX_DEVICES_PER_NODE, NodeSpec

# Bounds that keep one request's work (and a typo such as `count: 100000`) in check.
MAX_NODES_PER_GROUP = 1000
MAX_NODES_PER_FACILITY = 100_000

# The C loader parses a few-thousand-node facility an order of magnitude faster.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TOP_KEYS = frozenset({"facility", "sites"})
_SITE_KEYS = frozenset({"name", "racks"})
_RACK_KEYS = frozenset({"name", "nodes", "node_groups"})
_NODE_KEYS = frozenset({"id", "sku", "devices"})
_GROUP_KEYS = frozenset({"prefix", "start", "count", "sku", "devices"})


@dataclass(frozen=True, slots=True)
class Facility:
    name: str
    nodes: tuple[NodeSpec, ...]
    # Where each node was described ("sites[0].racks[1].node_groups[0]"), parallel to `nodes`.
    paths: tuple[str, ...]

    @property
    def devices(self) -> int:
        return sum(node.device_count for node in self.nodes)


def _field(path: str) -> str:
    """The request field a place in the document stands for: the `yaml` field, then the path."""
    return f"yaml: {path}" if path else "yaml"


def _bad(path: str, message: str, reason: Reason = Reason.INVALID_FACILITY) -> InvalidArgument:
    return InvalidArgument(_field(path), message, reason=reason)


def _mapping(path: str, value: object, allowed: frozenset[str], required: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _bad(path, f"must be a mapping, not {type(value).__name__}")
    unknown = sorted(str(key) for key in value if key not in allowed)
    if unknown:
        raise _bad(path, f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    for key in required:
        if key not in value:
            raise _bad(f"{path}.{key}" if path else key, "is required")
    return value


def _list(path: str, value: object, *, required: bool = True) -> list[Any]:
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise _bad(path, "must be a list")
    if required and not value:
        raise _bad(path, "must not be empty")
    return value


def _name(path: str, value: object) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise _bad(path, f"{value!r} is not a valid name (lowercase letters, digits, '.', '_' or '-'; at most 63)")
    return value


def _int(path: str, value: object, low: int, high: int) -> int:
    # bool is an int in Python; `devices: yes` is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(path, f"must be an integer, not {value!r}")
    if not low <= value <= high:
        raise _bad(path, f"must be between {low} and {high}, not {value}")
    return value


class _Builder:
    """Collects nodes while checking that ids are unique across the whole facility."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.nodes: list[NodeSpec] = []
        self.paths: list[str] = []
        self.seen: dict[str, str] = {}

    def add(self, path: str, node_id: str, site: str, rack: str, sku_path: str, sku: object, devices: int) -> None:
        if node_id in self.seen:
            raise _bad(path, f"node id {node_id!r} is already used by {self.seen[node_id]}")
        if len(self.nodes) >= MAX_NODES_PER_FACILITY:
            raise _bad(path, f"a facility holds at most {MAX_NODES_PER_FACILITY} nodes")
        known = self.catalogue.require(_field(sku_path), sku if isinstance(sku, str) else repr(sku))
        self.seen[node_id] = path
        self.nodes.append(NodeSpec(node_id, site, rack, known.name, known.kind, devices))
        self.paths.append(path)


def parse_facility(text: str, catalogue: Catalogue) -> Facility:
    """The nodes `text` describes, or InvalidArgument naming the first problem."""
    try:
        doc = yaml.load(text, Loader=_Loader)  # a safe loader, C or Python
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise _bad("", f"not valid YAML: {problem}{where}") from None
    if doc is None:
        raise _bad("", "is empty")
    top = _mapping("", doc, _TOP_KEYS, ("sites",))
    name = top.get("facility", "")
    if not isinstance(name, str):
        raise _bad("facility", "must be a string")
    builder = _Builder(catalogue)
    site_names: set[str] = set()
    for s, raw_site in enumerate(_list("sites", top["sites"])):
        site_path = f"sites[{s}]"
        site_doc = _mapping(site_path, raw_site, _SITE_KEYS, ("name", "racks"))
        site = _name(f"{site_path}.name", site_doc["name"])
        if site in site_names:
            raise _bad(f"{site_path}.name", f"site {site!r} is listed twice")
        site_names.add(site)
        rack_names: set[str] = set()
        for r, raw_rack in enumerate(_list(f"{site_path}.racks", site_doc["racks"])):
            rack_path = f"{site_path}.racks[{r}]"
            rack_doc = _mapping(rack_path, raw_rack, _RACK_KEYS, ("name",))
            rack = _name(f"{rack_path}.name", rack_doc["name"])
            if rack in rack_names:
                raise _bad(f"{rack_path}.name", f"rack {rack!r} is listed twice in site {site!r}")
            rack_names.add(rack)
            nodes = _list(f"{rack_path}.nodes", rack_doc.get("nodes"), required=False)
            groups = _list(f"{rack_path}.node_groups", rack_doc.get("node_groups"), required=False)
            if not nodes and not groups:
                raise _bad(rack_path, "lists no nodes (give nodes or node_groups)")
            for n, raw_node in enumerate(nodes):
                path = f"{rack_path}.nodes[{n}]"
                node = _mapping(path, raw_node, _NODE_KEYS, ("id", "sku", "devices"))
                node_id = _name(f"{path}.id", node["id"])
                devices = _int(f"{path}.devices", node["devices"], 1, MAX_DEVICES_PER_NODE)
                builder.add(path, node_id, site, rack, f"{path}.sku", node["sku"], devices)
            for g, raw_group in enumerate(groups):
                path = f"{rack_path}.node_groups[{g}]"
                group = _mapping(path, raw_group, _GROUP_KEYS, ("prefix", "count", "sku", "devices"))
                prefix = group["prefix"]
                if not isinstance(prefix, str) or not prefix:
                    raise _bad(f"{path}.prefix", "must be a non-empty string")
                start = _int(f"{path}.start", group.get("start", 1), 0, 10**6)
                count = _int(f"{path}.count", group["count"], 1, MAX_NODES_PER_GROUP)
                devices = _int(f"{path}.devices", group["devices"], 1, MAX_DEVICES_PER_NODE)
                for index in range(start, start + count):
                    node_id = _name(f"{path}.prefix", f"{prefix}{index:02d}")
                    builder.add(path, node_id, site, rack, f"{path}.sku", group["sku"], devices)
    return Facility(name=name, nodes=tuple(builder.nodes), paths=tuple(builder.paths))
