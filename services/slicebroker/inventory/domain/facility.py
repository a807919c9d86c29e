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
                cpu_milli: 224000                # optional, on nodes and node_groups: host CPU
                memory_mib: 2097152              # (milli-cores) and memory (MiB) offered to grants
              - {prefix: a100-r001-m, count: 2, sku: A100-SXM-80GB, devices: 8,
                 mig_layout: {1g.10gb: 56}}      # optional, on nodes and node_groups: the MIG
                                                 # instances the node's GPUs are cut into ahead of
                                                 # time (profile: instances across the node)

Everything is checked before anything is registered. A refusal is InvalidArgument with reason
INVALID_FACILITY (or UNKNOWN_SKU) whose field names the place in the document, e.g.
"yaml: sites[0].racks[2].nodes[1].sku".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from slicebroker.core.errors import InvalidArgument
from slicebroker.core.ids import NAME_RE
from slicebroker.core.reasons import Reason
from slicebroker.inventory.domain.catalogue import Catalogue
from slicebroker.inventory.domain.mig import check_mig_layout
from slicebroker.inventory.domain.model import MAX_CPU_MILLI, MAX_DEVICES_PER_NODE, MAX_MEMORY_MIB, NodeSpec

# Bounds that keep one request's work (and a typo such as `count: 100000`) in check.
MAX_NODES_PER_GROUP = 1000
MAX_NODES_PER_FACILITY = 100_000

# The C loader parses a few-thousand-node facility an order of magnitude faster.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TOP_KEYS = frozenset({"facility", "sites", "switches"})
_SITE_KEYS = frozenset({"name", "racks", "halls"})
_HALL_KEYS = frozenset({"name", "racks", "pods", "spine"})
_POD_KEYS = frozenset({"name", "racks", "leaf", "spine"})
_RACK_KEYS = frozenset({"name", "nodes", "node_groups", "leaf", "spine", "nvlink"})
_NODE_KEYS = frozenset({"id", "sku", "devices", "leaf", "cpu_milli", "memory_mib", "mig_layout"})
_GROUP_KEYS = frozenset({"prefix", "start", "count", "sku", "devices", "leaf", "cpu_milli", "memory_mib", "mig_layout"})
_SWITCH_KEYS = frozenset({"name", "tier", "parent"})
SWITCH_TIERS = ("leaf", "spine", "core")
# Rack-scale NVLink (e.g. NVL72) makes the rack one NVLink domain; else each node is its own.
NVLINK_SCOPES = ("node", "rack")


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


@dataclass(frozen=True, slots=True)
class _Place:
    """Where in the tree the nodes being read sit, with the network defaults inherited from above."""

    site: str
    hall: str = ""
    pod: str = ""
    rack: str = ""
    leaf: str = ""
    spine: str = ""
    nvlink: str = "node"


class _Builder:
    """Collects nodes while checking that ids are unique across the whole facility."""

    def __init__(self, catalogue: Catalogue, switches: dict[str, tuple[str, str]] | None) -> None:
        self.catalogue = catalogue
        self.nodes: list[NodeSpec] = []
        self.paths: list[str] = []
        self.seen: dict[str, str] = {}
        # name -> (tier, parent); None when the document declares no switches (then leaves are free labels).
        self.switches = switches

    def add(
        self,
        path: str,
        node_id: str,
        place: _Place,
        leaf: str,
        sku_path: str,
        sku: object,
        devices: int,
        host: tuple[int, int] = (0, 0),
        mig_layout: tuple[str, Mapping[Any, object]] = ("", {}),
    ) -> None:
        """`mig_layout` is (its path, the layout as written), checked once the SKU is known."""
        if node_id in self.seen:
            raise _bad(path, f"node id {node_id!r} is already used by {self.seen[node_id]}")
        if len(self.nodes) >= MAX_NODES_PER_FACILITY:
            raise _bad(path, f"a facility holds at most {MAX_NODES_PER_FACILITY} nodes")
        known = self.catalogue.require(_field(sku_path), sku if isinstance(sku, str) else repr(sku))
        layout_path, raw_layout = mig_layout
        layout = check_mig_layout(_field(layout_path), known, devices, raw_layout, Reason.INVALID_FACILITY)
        spine = place.spine
        if self.switches is not None and leaf:
            spine = spine or _spine_of(self.switches, leaf)
        self.seen[node_id] = path
        self.nodes.append(
            NodeSpec(
                node_id,
                place.site,
                place.rack,
                known.name,
                known.kind,
                devices,
                hall=place.hall,
                pod=place.pod,
                nvlink_domain=place.rack if place.nvlink == "rack" else "",
                leaf=leaf,
                spine=spine,
                cpu_milli=host[0],
                memory_mib=host[1],
                mig_layout=layout,
            )
        )
        self.paths.append(path)

    def check_leaf(self, path: str, leaf: str) -> None:
        if self.switches is None or not leaf:
            return
        switch = self.switches.get(leaf)
        if switch is None:
            raise _bad(path, f"leaf {leaf!r} is not declared under switches")
        if switch[0] != "leaf":
            raise _bad(path, f"switch {leaf!r} is a {switch[0]}, not a leaf")


def _spine_of(switches: dict[str, tuple[str, str]], leaf: str) -> str:
    name = switches[leaf][1]
    while name and switches[name][0] != "spine":
        name = switches[name][1]
    return name


def _parse_switches(raw: object) -> dict[str, tuple[str, str]] | None:
    """The declared network switches, each with its tier and parent; parents must be declared and
    the parent chain must not loop."""
    if raw is None:
        return None
    switches: dict[str, tuple[str, str]] = {}
    for i, raw_switch in enumerate(_list("switches", raw)):
        path = f"switches[{i}]"
        doc = _mapping(path, raw_switch, _SWITCH_KEYS, ("name", "tier"))
        name = _name(f"{path}.name", doc["name"])
        if name in switches:
            raise _bad(f"{path}.name", f"switch {name!r} is listed twice")
        tier = doc["tier"]
        if tier not in SWITCH_TIERS:
            raise _bad(f"{path}.tier", f"must be one of {', '.join(SWITCH_TIERS)}, not {tier!r}")
        parent = doc.get("parent", "")
        if parent:
            _name(f"{path}.parent", parent)
        switches[name] = (tier, parent)
    for i, (name, (_, parent)) in enumerate(switches.items()):
        if parent and parent not in switches:
            raise _bad(f"switches[{i}].parent", f"switch {parent!r} is not declared")
        seen = {name}
        while parent:
            if parent in seen:
                raise _bad(f"switches[{i}].parent", f"the parents of {name!r} form a cycle through {parent!r}")
            seen.add(parent)
            parent = switches[parent][1]
    return switches


def _opt_name(path: str, doc: Mapping[str, Any], key: str, default: str) -> str:
    return _name(f"{path}.{key}", doc[key]) if key in doc else default


def _racks(builder: _Builder, path: str, raw: object, place: _Place, rack_names: set[str]) -> None:
    for r, raw_rack in enumerate(_list(path, raw)):
        rack_path = f"{path}[{r}]"
        rack_doc = _mapping(rack_path, raw_rack, _RACK_KEYS, ("name",))
        rack = _name(f"{rack_path}.name", rack_doc["name"])
        if rack in rack_names:
            raise _bad(f"{rack_path}.name", f"rack {rack!r} is listed twice in site {place.site!r}")
        rack_names.add(rack)
        nvlink = rack_doc.get("nvlink", "node")
        if nvlink not in NVLINK_SCOPES:
            raise _bad(f"{rack_path}.nvlink", f"must be one of {', '.join(NVLINK_SCOPES)}, not {nvlink!r}")
        here = _Place(
            place.site,
            place.hall,
            place.pod,
            rack,
            _opt_name(rack_path, rack_doc, "leaf", place.leaf),
            _opt_name(rack_path, rack_doc, "spine", place.spine),
            nvlink,
        )
        nodes = _list(f"{rack_path}.nodes", rack_doc.get("nodes"), required=False)
        groups = _list(f"{rack_path}.node_groups", rack_doc.get("node_groups"), required=False)
        if not nodes and not groups:
            raise _bad(rack_path, "lists no nodes (give nodes or node_groups)")
        for n, raw_node in enumerate(nodes):
            node_path = f"{rack_path}.nodes[{n}]"
            node = _mapping(node_path, raw_node, _NODE_KEYS, ("id", "sku", "devices"))
            node_id = _name(f"{node_path}.id", node["id"])
            devices = _int(f"{node_path}.devices", node["devices"], 1, MAX_DEVICES_PER_NODE)
            leaf = _opt_name(node_path, node, "leaf", here.leaf)
            builder.check_leaf(f"{node_path}.leaf" if "leaf" in node else f"{rack_path}.leaf", leaf)
            host = _host(node_path, node)
            layout = _mig_layout(node_path, node)
            builder.add(node_path, node_id, here, leaf, f"{node_path}.sku", node["sku"], devices, host, layout)
        for g, raw_group in enumerate(groups):
            group_path = f"{rack_path}.node_groups[{g}]"
            group = _mapping(group_path, raw_group, _GROUP_KEYS, ("prefix", "count", "sku", "devices"))
            prefix = group["prefix"]
            if not isinstance(prefix, str) or not prefix:
                raise _bad(f"{group_path}.prefix", "must be a non-empty string")
            start = _int(f"{group_path}.start", group.get("start", 1), 0, 10**6)
            count = _int(f"{group_path}.count", group["count"], 1, MAX_NODES_PER_GROUP)
            devices = _int(f"{group_path}.devices", group["devices"], 1, MAX_DEVICES_PER_NODE)
            leaf = _opt_name(group_path, group, "leaf", here.leaf)
            builder.check_leaf(f"{group_path}.leaf" if "leaf" in group else f"{rack_path}.leaf", leaf)
            host = _host(group_path, group)
            layout = _mig_layout(group_path, group)
            for index in range(start, start + count):
                node_id = _name(f"{group_path}.prefix", f"{prefix}{index:02d}")
                sku = group["sku"]
                builder.add(group_path, node_id, here, leaf, f"{group_path}.sku", sku, devices, host, layout)


def _host(path: str, doc: Mapping[str, Any]) -> tuple[int, int]:
    """Host CPU (milli-cores) and memory (MiB) a node offers to grants; absent: 0, none."""
    return (
        _int(f"{path}.cpu_milli", doc.get("cpu_milli", 0), 0, MAX_CPU_MILLI),
        _int(f"{path}.memory_mib", doc.get("memory_mib", 0), 0, MAX_MEMORY_MIB),
    )


def _mig_layout(path: str, doc: Mapping[str, Any]) -> tuple[str, Mapping[Any, object]]:
    """The node's MIG layout as written (profile: instances), with its path; absent: none."""
    layout_path = f"{path}.mig_layout"
    raw = doc.get("mig_layout", {})
    if not isinstance(raw, dict):
        raise _bad(layout_path, "must be a mapping of MIG profile to instances, e.g. {1g.10gb: 7}")
    return layout_path, raw


def _node_doc(node: NodeSpec, **extra: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": node.id, "sku": node.sku, "devices": node.device_count, **extra}
    return doc | _optional_doc(node)


def _optional_doc(node: NodeSpec) -> dict[str, Any]:
    """The optional keys a node or group is written with: host capacity and MIG layout, if any."""
    doc: dict[str, Any] = {}
    if node.cpu_milli:
        doc["cpu_milli"] = node.cpu_milli
    if node.memory_mib:
        doc["memory_mib"] = node.memory_mib
    if node.mig_layout:
        doc["mig_layout"] = dict(node.mig_layout)
    return doc


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
    builder = _Builder(catalogue, _parse_switches(top.get("switches")))
    site_names: set[str] = set()
    for s, raw_site in enumerate(_list("sites", top["sites"])):
        site_path = f"sites[{s}]"
        site_doc = _mapping(site_path, raw_site, _SITE_KEYS, ("name",))
        site = _name(f"{site_path}.name", site_doc["name"])
        if site in site_names:
            raise _bad(f"{site_path}.name", f"site {site!r} is listed twice")
        site_names.add(site)
        if "racks" not in site_doc and "halls" not in site_doc:
            raise _bad(f"{site_path}.racks", "is required (or give halls)")
        # Rack names are unique per site, whichever hall or pod lists them.
        rack_names: set[str] = set()
        if "racks" in site_doc:
            _racks(builder, f"{site_path}.racks", site_doc["racks"], _Place(site), rack_names)
        hall_names: set[str] = set()
        for h, raw_hall in enumerate(_list(f"{site_path}.halls", site_doc.get("halls"), required=False)):
            hall_path = f"{site_path}.halls[{h}]"
            hall_doc = _mapping(hall_path, raw_hall, _HALL_KEYS, ("name",))
            hall = _name(f"{hall_path}.name", hall_doc["name"])
            if hall in hall_names:
                raise _bad(f"{hall_path}.name", f"hall {hall!r} is listed twice in site {site!r}")
            hall_names.add(hall)
            if "racks" not in hall_doc and "pods" not in hall_doc:
                raise _bad(hall_path, "lists no racks (give racks or pods)")
            hall_place = _Place(site, hall, spine=_opt_name(hall_path, hall_doc, "spine", ""))
            if "racks" in hall_doc:
                _racks(builder, f"{hall_path}.racks", hall_doc["racks"], hall_place, rack_names)
            pod_names: set[str] = set()
            for p, raw_pod in enumerate(_list(f"{hall_path}.pods", hall_doc.get("pods"), required=False)):
                pod_path = f"{hall_path}.pods[{p}]"
                pod_doc = _mapping(pod_path, raw_pod, _POD_KEYS, ("name", "racks"))
                pod = _name(f"{pod_path}.name", pod_doc["name"])
                if pod in pod_names:
                    raise _bad(f"{pod_path}.name", f"pod {pod!r} is listed twice in hall {hall!r}")
                pod_names.add(pod)
                pod_place = _Place(
                    site,
                    hall,
                    pod,
                    leaf=_opt_name(pod_path, pod_doc, "leaf", ""),
                    spine=_opt_name(pod_path, pod_doc, "spine", hall_place.spine),
                )
                _racks(builder, f"{pod_path}.racks", pod_doc["racks"], pod_place, rack_names)
    return Facility(name=name, nodes=tuple(builder.nodes), paths=tuple(builder.paths))


_RUN_RE = re.compile(r"^(?P<prefix>.*?)(?P<index>[0-9]+)$")


def _runs(nodes: Sequence[NodeSpec]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One rack's nodes as node_groups (runs of alike nodes with consecutive ids) and single nodes."""
    groups: list[dict[str, Any]] = []
    singles: list[dict[str, Any]] = []
    run: list[NodeSpec] = []
    run_prefix, run_start = "", 0

    def flush() -> None:
        if len(run) >= 2:
            group: dict[str, Any] = {"prefix": run_prefix, "count": len(run), "sku": run[0].sku}
            group["devices"] = run[0].device_count
            if run_start != 1:
                group["start"] = run_start
            groups.append(group | _optional_doc(run[0]))
        else:
            singles.extend(_node_doc(n) for n in run)
        run.clear()

    for node in sorted(nodes, key=lambda n: n.id):
        match = _RUN_RE.match(node.id)
        # Only ids the group syntax spells back exactly ("<prefix><index:02d>") join a run.
        if match is None or f"{match['prefix']}{int(match['index']):02d}" != node.id:
            flush()
            singles.append(_node_doc(node))
            continue
        prefix, index = match["prefix"], int(match["index"])
        last = run[-1] if run else None
        if (
            last is None
            or prefix != run_prefix
            or index != run_start + len(run)
            or (node.sku, node.device_count, node.cpu_milli, node.memory_mib, node.mig_layout)
            != (last.sku, last.device_count, last.cpu_milli, last.memory_mib, last.mig_layout)
        ):
            flush()
            run_prefix, run_start = prefix, index
        run.append(node)
    flush()
    return groups, singles


def export_facility(name: str, nodes: Sequence[NodeSpec]) -> dict[str, Any]:
    """The facility document that `parse_facility` reads back into the same nodes.

    Leaves and spines are written on the racks (and on nodes whose leaf differs from their rack's);
    switches are not declared, so the document loads wherever it came from."""
    tree: dict[str, dict[str, dict[str, dict[str, list[NodeSpec]]]]] = {}
    for node in nodes:
        tree.setdefault(node.site, {}).setdefault(node.hall, {}).setdefault(node.pod, {}).setdefault(
            node.rack, []
        ).append(node)

    def rack_doc(rack: str, members: list[NodeSpec]) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": rack}
        leaves = sorted({n.leaf for n in members})
        rack_leaf = max(leaves, key=lambda leaf: sum(n.leaf == leaf for n in members))
        if rack_leaf:
            doc["leaf"] = rack_leaf
        spines = {n.spine for n in members}
        if len(spines) > 1:
            raise ValueError(f"rack {rack!r} has nodes under different spines; the format cannot say so")
        if spines - {""}:
            doc["spine"] = spines.pop()
        if any(n.nvlink_domain == rack for n in members):
            doc["nvlink"] = "rack"
        same = [n for n in members if n.leaf == rack_leaf]
        groups, singles = _runs(same)
        for node in members:
            if node.leaf != rack_leaf:
                singles.append(_node_doc(node, leaf=node.leaf))
        if groups:
            doc["node_groups"] = groups
        if singles:
            doc["nodes"] = singles
        return doc

    sites = []
    for site, halls in tree.items():
        site_doc: dict[str, Any] = {"name": site}
        for hall, pods in halls.items():
            if not hall:
                site_doc["racks"] = [rack_doc(r, m) for r, m in pods.get("", {}).items()]
                continue
            hall_doc: dict[str, Any] = {"name": hall}
            for pod, racks in pods.items():
                if not pod:
                    hall_doc["racks"] = [rack_doc(r, m) for r, m in racks.items()]
                else:
                    hall_doc.setdefault("pods", []).append(
                        {"name": pod, "racks": [rack_doc(r, m) for r, m in racks.items()]}
                    )
            site_doc.setdefault("halls", []).append(hall_doc)
        sites.append(site_doc)
    return {"facility": name, "sites": sites}
