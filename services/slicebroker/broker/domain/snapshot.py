"""The broker's picture of inventory: per SKU, each schedulable node's generation and free devices.

Decisions are made here, never against live state; claims carry the generations read here, and
inventory refuses a claim whose picture is stale. Within one broker process all claims and
releases go through one writer (see `grant_path`), so the picture stays exact between refreshes
and only other replicas' writes cause conflicts.

Nodes with a fixed MIG layout (GPUs cut into instances ahead of time) serve MIG slices of their
layout's profiles and nothing else: they are kept out of every whole-device structure and out of
the packing engine, and MIG requests try them first (see `place_slices`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from slicebroker.broker.domain.packing import FREE, HOST_ONLY, WHOLE, Demand, Dev, NodeState, PackingEngine


class Constraint(StrEnum):
    """Where the devices of one grant may be, from tightest to loosest network locality."""

    NONE = "none"
    SAME_NODE = "same_node"
    SAME_NVLINK_DOMAIN = "same_nvlink_domain"
    SAME_LEAF = "same_leaf"
    # One device per node (resilience), rather than together.
    SPREAD = "spread"


@dataclass(frozen=True, slots=True)
class Topology:
    constraint: Constraint = Constraint.NONE
    # Required: refuse rather than place elsewhere. Preferred: fall back to no constraint.
    required: bool = True
    # The devices come in members of this many, each member's devices on one node (a pod that
    # wants several devices cannot span nodes). 0 or 1: no grouping. The constraint then applies
    # to members: spread puts one member on each node.
    devices_per_member: int = 0

    @property
    def unit(self) -> int:
        """How many devices must go on one node together: a member's, or one."""
        return max(1, self.devices_per_member)


ANYWHERE = Topology()


@dataclass(frozen=True, slots=True)
class HostResources:
    """Host CPU (milli-cores) and memory (MiB) that go with each slice, on the slice's node."""

    cpu_milli: int = 0
    memory_mib: int = 0

    def __bool__(self) -> bool:
        return self.cpu_milli > 0 or self.memory_mib > 0

    def times(self, n: int) -> tuple[int, int]:
        return self.cpu_milli * n, self.memory_mib * n

    def fits(self, cpu_free: int, memory_free: int) -> int:
        """How many slices' worth of host resources `cpu_free` and `memory_free` hold."""
        most = _UNBOUNDED
        if self.cpu_milli:
            most = min(most, max(cpu_free, 0) // self.cpu_milli)
        if self.memory_mib:
            most = min(most, max(memory_free, 0) // self.memory_mib)
        return most


NO_HOST = HostResources()
_UNBOUNDED = 1 << 62
# The levels a gang is tried at, smallest subtree first (the node itself is always first).
_LEVELS = {
    Constraint.SAME_NODE: ("node",),
    Constraint.SAME_NVLINK_DOMAIN: ("node", "nvlink"),
    Constraint.SAME_LEAF: ("node", "nvlink", "leaf"),
}


@dataclass(frozen=True, slots=True)
class SliceSpec:
    """One partition or share of one device. `compute`/`memory` are partition counters (MIG, NPU
    partitions) or milli-units (shares), in the device's own capacity units."""

    device_id: str
    kind: str  # "mig", "share" or "npu_partition"
    profile: str
    compute: int
    memory: int


@dataclass(frozen=True, slots=True)
class DeviceSlices:
    """A device carrying slices as inventory reported it: its kind, capacity and (grant, slice) in use."""

    device_id: str
    kind: str
    capacity: tuple[int, int]
    held: tuple[tuple[str, SliceSpec], ...]


@dataclass(frozen=True, slots=True)
class NodeView:
    """A node as inventory reported it."""

    node_id: str
    sku: str
    generation: int
    schedulable: bool
    free_devices: tuple[str, ...]
    # device id -> holder grant id, for devices held now.
    held: dict[str, str] = field(default_factory=dict)
    nvlink_domain: str = ""
    leaf: str = ""
    sliced: tuple[DeviceSlices, ...] = ()
    # Host CPU (milli-cores) and memory (MiB) the node has left for grants.
    cpu_free: int = 0
    memory_free: int = 0
    # The MIG instances the node's devices are cut into ahead of time, profile -> instances
    # across the node. Empty: devices are cut as requests come.
    mig_layout: dict[str, int] = field(default_factory=dict)
    # The node's devices of this SKU, healthy or not (a fixed layout is spread over all of them);
    # 0: the devices listed here.
    device_count: int = 0


@dataclass(frozen=True, slots=True)
class NodeClaim:
    node_id: str
    expected_generation: int
    device_ids: tuple[str, ...]
    slices: tuple[SliceSpec, ...] = ()
    # Host CPU (milli-cores) and memory (MiB) taken on the node with them, in all.
    cpu_milli: int = 0
    memory_mib: int = 0


@dataclass(slots=True)
class _Sliced:
    kind: str
    cap_compute: int
    cap_memory: int
    used_compute: int = 0
    used_memory: int = 0
    by_grant: dict[str, list[SliceSpec]] = field(default_factory=dict)

    def fits(self, spec: SliceSpec) -> bool:
        return (
            spec.kind == self.kind
            and self.used_compute + spec.compute <= self.cap_compute
            and self.used_memory + spec.memory <= self.cap_memory
        )

    def add(self, grant_id: str, spec: SliceSpec) -> None:
        self.used_compute += spec.compute
        self.used_memory += spec.memory
        self.by_grant.setdefault(grant_id, []).append(spec)

    def remove(self, grant_id: str) -> list[SliceSpec]:
        specs = self.by_grant.pop(grant_id, [])
        for spec in specs:
            self.used_compute -= spec.compute
            self.used_memory -= spec.memory
        return specs


@dataclass(slots=True)
class _Node:
    sku: str
    generation: int
    free: list[str]
    # Devices this process took; returned to `free` on release.
    held: dict[str, str]
    nvlink: str = ""
    leaf: str = ""
    # Devices carrying slices (then not in `free`), by device id.
    sliced: dict[str, _Sliced] = field(default_factory=dict)
    cpu_free: int = 0
    memory_free: int = 0
    # Host resources this process took, per grant; given back on release. What grants held when
    # inventory reported the node comes back with inventory's next report of it.
    host_of: dict[str, tuple[int, int]] = field(default_factory=dict)
    # A fixed MIG layout (profile -> instances on the node); empty for a free-form node. With
    # `per_device` (a uniform layout), each device holds at most that many of each profile.
    layout: dict[str, int] = field(default_factory=dict)
    per_device: dict[str, int] = field(default_factory=dict)
    # With a layout: MIG slices held on the node now, by profile (kept by `count_slices`).
    in_use: Counter[str] = field(default_factory=Counter)

    def count_slices(self, specs: Iterable[SliceSpec], sign: int) -> None:
        """Counts slices into (`sign` 1) or out of (-1) `in_use`; free-form nodes keep no count."""
        if self.layout:
            for spec in specs:
                if spec.kind == "mig":
                    self.in_use[spec.profile] += sign

    def in_use_on(self, device_id: str, profile: str) -> int:
        """MIG slices of `profile` held on one device now."""
        state = self.sliced.get(device_id)
        if state is None:
            return 0
        return sum(
            1 for specs in state.by_grant.values() for spec in specs if spec.kind == "mig" and spec.profile == profile
        )


class Snapshot:
    """Mutable, single-task state: only the inventory writer touches it, between awaits."""

    def __init__(self) -> None:
        self._nodes: dict[str, _Node] = {}
        # sku -> free count -> node ids, for best-fit lookups without scanning every node.
        self._buckets: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.loaded_skus: dict[str, int] = {}  # sku -> ms of the last full refresh
        self._nodes_of_grant: dict[str, set[str]] = defaultdict(set)
        # (SKU, "nvlink" | "leaf", domain) -> free whole devices there, and the nodes there.
        self._group_free: dict[tuple[str, str, str], int] = defaultdict(int)
        self._group_nodes: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        # (SKU, slice kind) -> a device's (compute, memory) capacity in that kind's units.
        self.slice_capacity: dict[tuple[str, str], tuple[int, int]] = {}
        # Per SKU: the packing engine that places single-node requests, mirroring the nodes here.
        self._engines: dict[str, PackingEngine] = {}
        # SKU -> nodes with a fixed MIG layout (in `_nodes`, and in none of the structures above).
        self._fixed: dict[str, set[str]] = defaultdict(set)

    def engine(self, sku: str) -> PackingEngine:
        engine = self._engines.get(sku)
        if engine is None:
            engine = self._engines[sku] = PackingEngine(lambda kind: self.capacity_of(sku, kind))
        return engine

    def _sync(self, node_id: str) -> None:
        """Shows the engine the node's free devices, slices and host resources as they are now."""
        node = self._nodes[node_id]
        if node.layout:
            return  # the engine never places on a fixed layout
        devices: dict[str, Dev] = dict.fromkeys(node.free, FREE)
        for device_id, state in node.sliced.items():
            devices[device_id] = (
                state.kind,
                state.cap_compute - state.used_compute,
                state.cap_memory - state.used_memory,
            )
        self.engine(node.sku).set_node(node_id, node.cpu_free, node.memory_free, devices)

    # -- loading -------------------------------------------------------------------------------
    def replace_sku(self, sku: str, nodes: Iterable[NodeView], now_ms: int) -> None:
        for node_id in [n for n, node in self._nodes.items() if node.sku == sku]:
            self._drop(node_id)
        for view in nodes:
            self.put_node(view)
        self.loaded_skus[sku] = now_ms

    def replace_all(self, nodes: Iterable[NodeView], now_ms: int) -> None:
        """The whole facility at once (a watch snapshot): every SKU counts as freshly loaded."""
        for node_id in list(self._nodes):
            self._drop(node_id)
        skus: set[str] = set()
        for view in nodes:
            self.put_node(view)
            skus.add(view.sku)
        self.loaded_skus = dict.fromkeys(skus, now_ms)

    def put_node(self, view: NodeView) -> None:
        """The node as inventory now reports it (replacing what was known); unschedulable nodes
        are kept out of placement."""
        known = self._nodes.get(view.node_id)
        if known is not None:
            if view.generation < known.generation:
                return  # older than what this process already knows (its own claim's answer)
            self._drop(view.node_id)
        if not view.schedulable:
            return
        node = _Node(
            view.sku,
            view.generation,
            sorted(view.free_devices),
            dict(view.held),
            view.nvlink_domain or view.node_id,
            view.leaf or view.node_id,
            cpu_free=view.cpu_free,
            memory_free=view.memory_free,
            layout=dict(view.mig_layout),
        )
        if view.mig_layout:
            devices = view.device_count or len({*view.free_devices, *view.held, *(d.device_id for d in view.sliced)})
            node.per_device = _per_device(view.mig_layout, devices)
        for device in view.sliced:
            capacity = device.capacity if any(device.capacity) else self.capacity_of(view.sku, device.kind)
            state = node.sliced[device.device_id] = _Sliced(device.kind, *capacity)
            for grant_id, spec in device.held:
                state.add(grant_id, spec)
            node.count_slices((spec for _, spec in device.held), 1)
        self._put(view.node_id, node)

    def drop_node(self, node_id: str) -> None:
        if node_id in self._nodes:
            self._drop(node_id)

    def _put(self, node_id: str, node: _Node) -> None:
        self._nodes[node_id] = node
        for holder in node.held.values():
            self._nodes_of_grant[holder].add(node_id)
        for state in node.sliced.values():
            for holder in state.by_grant:
                self._nodes_of_grant[holder].add(node_id)
        if node.layout:
            self._fixed[node.sku].add(node_id)
            return
        for group in self._groups_of(node):
            self._group_free[group] += len(node.free)
            self._group_nodes[group].add(node_id)
        self._buckets[node.sku][len(node.free)].add(node_id)
        self._sync(node_id)

    def _drop(self, node_id: str) -> None:
        node = self._nodes.pop(node_id)
        for holder in node.held.values():
            self._nodes_of_grant[holder].discard(node_id)
        if node.layout:
            self._fixed[node.sku].discard(node_id)
            return
        self.engine(node.sku).drop_node(node_id)
        for group in self._groups_of(node):
            self._group_free[group] -= len(node.free)
            self._group_nodes[group].discard(node_id)
            if not self._group_nodes[group]:
                del self._group_nodes[group], self._group_free[group]
        self._buckets[node.sku][len(node.free)].discard(node_id)

    def _set_free(self, node_id: str, node: _Node, free: list[str]) -> None:
        if node.layout:
            node.free = free  # counted in no whole-device structure
            return
        self._buckets[node.sku][len(node.free)].discard(node_id)
        change = len(free) - len(node.free)
        node.free = free
        self._buckets[node.sku][len(free)].add(node_id)
        for group in self._groups_of(node):
            self._group_free[group] += change

    @staticmethod
    def _groups_of(node: _Node) -> tuple[tuple[str, str, str], ...]:
        return ((node.sku, "nvlink", node.nvlink), (node.sku, "leaf", node.leaf))

    # -- queries -------------------------------------------------------------------------------
    def free_count(self, sku: str) -> int:
        return sum(n * len(ids) for n, ids in self._buckets[sku].items())

    def generation(self, node_id: str) -> int | None:
        node = self._nodes.get(node_id)
        return node.generation if node else None

    # -- placement -----------------------------------------------------------------------------
    def place(
        self, sku: str, count: int, topology: Topology = ANYWHERE, host: HostResources = NO_HOST
    ) -> list[NodeClaim] | None:
        """Chooses `count` free devices of `sku` within `topology`, or None when they are not there.

        A gang is all or nothing: the answer covers every device or is None. A constrained gang
        takes the smallest subtree that fits — one node, else one NVLink domain, else one leaf
        switch — and among subtrees of one level the one it fills best, so larger free subtrees
        stay whole for larger gangs. A preferred constraint that cannot be met falls back to none.
        With `host`, each device also needs that much host CPU and memory left on its node.

        A request that may go on one node (no constraint, or same node) goes where the SKU's
        packing engine puts it when one node can take it all; only the rest is placed as above.

        With `topology.devices_per_member` (the unit) above one, every node's share is a multiple
        of the unit: a node counts only the whole members its free devices hold, and spread puts
        one member on each node. A single node taking all of it satisfies any unit.
        """
        unit = topology.unit
        if topology.constraint in (Constraint.NONE, Constraint.SAME_NODE):
            one = self._pack_whole(sku, count, host)
            if one is not None or (topology.constraint is Constraint.SAME_NODE and topology.required):
                return one
        if host:
            return self._place_with_host(sku, count, topology, host)
        if topology.constraint is Constraint.NONE:
            return self._place_anywhere(sku, count, unit)
        if topology.constraint is Constraint.SPREAD:
            claims = self._place_spread(sku, count, unit)
        else:
            claims = None
            for level in _LEVELS[topology.constraint]:
                claims = self._place_within(sku, count, level, unit)
                if claims is not None:
                    break
        if claims is None and not topology.required:
            return self._place_anywhere(sku, count, unit)
        return claims

    def _place_within(self, sku: str, count: int, level: str, unit: int = 1) -> list[NodeClaim] | None:
        if level == "node":
            return self._place_on_one_node(sku, count)
        # Free devices per subtree are kept up to date as devices come and go, so choosing the
        # subtree costs one pass over the subtrees, not over the nodes. With a unit, what a
        # subtree can hold in whole members is counted over its nodes, only for the subtrees whose
        # free devices would be enough (it never exceeds them).
        best: tuple[int, str] | None = None
        for (group_sku, group_level, key), free in self._group_free.items():
            if group_sku != sku or group_level != level or free < count:
                continue
            if unit > 1:
                free = sum(_whole(len(self._nodes[n].free), unit) for n in self._group_nodes[(sku, level, key)])
            if free >= count and (best is None or (free, key) < best):
                best = (free, key)
        if best is None:
            return None
        # Inside the chosen subtree: fewest nodes, fullest first among equals.
        usable = {n: _whole(len(self._nodes[n].free), unit) for n in self._group_nodes[(sku, level, best[1])]}
        chosen: list[NodeClaim] = []
        remaining = count
        for node_id in sorted(usable, key=lambda n: (-usable[n], n)):
            take = min(usable[node_id], remaining)
            if take == 0:
                break
            chosen.append(self._claim_on(node_id, take))
            remaining -= take
            if remaining == 0:
                return chosen
        return None  # pragma: no cover - the subtree was checked to have enough

    def _place_on_one_node(self, sku: str, count: int) -> list[NodeClaim] | None:
        buckets = self._buckets[sku]
        for size in sorted(k for k, ids in buckets.items() if ids and k >= count):
            return [self._claim_on(min(buckets[size]), count)]
        return None

    def _place_spread(self, sku: str, count: int, unit: int = 1) -> list[NodeClaim] | None:
        """One member (`unit` devices, one by default) on each of `count // unit` nodes, taking
        from the nodes with the fewest free devices that still hold a member first, so nodes with
        the most free stay whole longest."""
        buckets = self._buckets[sku]
        sizes = sorted(k for k, ids in buckets.items() if ids and k >= unit)
        nodes = [n for size in sizes for n in sorted(buckets[size])]
        if len(nodes) < count // unit:
            return None
        return [self._claim_on(node_id, unit) for node_id in nodes[: count // unit]]

    def _place_anywhere(self, sku: str, count: int, unit: int = 1) -> list[NodeClaim] | None:
        """Chooses `count` free devices of `sku`, or None if there are not that many.

        Best fit first: the fullest node that still has `count` free, so whole nodes stay whole
        for large requests. Failing that, the request spans the nodes with the most free devices
        (fewest nodes), each taking whole members of `unit` devices. Ties break on node id, so the
        choice is deterministic.
        """
        buckets = self._buckets[sku]
        sizes = sorted(k for k, ids in buckets.items() if ids and k >= unit)
        for size in sizes:
            if size >= count:
                node_id = min(buckets[size])
                return [self._claim_on(node_id, count)]
        if sum(_whole(k, unit) * len(buckets[k]) for k in sizes) < count:
            return None
        chosen: list[NodeClaim] = []
        remaining = count
        # Sizes with the same whole members (5 and 4 free, in twos) are one rank: node id decides.
        for node_id, usable in sorted(
            ((n, _whole(k, unit)) for k in sizes for n in buckets[k]), key=lambda item: (-item[1], item[0])
        ):
            if remaining == 0:
                break
            take = min(usable, remaining)
            chosen.append(self._claim_on(node_id, take))
            remaining -= take
        return chosen

    # -- placement with host resources ----------------------------------------------------------
    # The same choices as above, on each node's *usable* devices: its free devices, capped by how
    # many slices' host resources it has left. It costs one pass over the SKU's nodes (the
    # free-count buckets above know nothing of CPU or memory), which only requests that ask for
    # host resources pay.
    def _usable(self, sku: str, host: HostResources, unit: int = 1) -> dict[str, int]:
        """Per node, the devices a request may take there: free, with host resources for each,
        rounded down to whole members of `unit`; nodes with none are left out."""
        usable = {}
        for node_id, node in self._nodes.items():
            if node.sku == sku and node.free and not node.layout:
                n = _whole(min(len(node.free), host.fits(node.cpu_free, node.memory_free)), unit)
                if n > 0:
                    usable[node_id] = n
        return usable

    def _place_with_host(self, sku: str, count: int, topology: Topology, host: HostResources) -> list[NodeClaim] | None:
        unit = topology.unit
        usable = self._usable(sku, host, unit)
        claims: list[NodeClaim] | None = None
        if topology.constraint is Constraint.NONE:
            return self._host_anywhere(usable, count, host)
        if topology.constraint is Constraint.SPREAD:
            nodes = sorted(usable, key=lambda n: (len(self._nodes[n].free), n))
            if len(nodes) >= count // unit:
                claims = [self._host_claim(n, unit, host) for n in nodes[: count // unit]]
        else:
            for level in _LEVELS[topology.constraint]:
                claims = self._host_within(usable, count, level, host)
                if claims is not None:
                    break
        if claims is None and not topology.required:
            return self._host_anywhere(usable, count, host)
        return claims

    def _host_anywhere(self, usable: dict[str, int], count: int, host: HostResources) -> list[NodeClaim] | None:
        fits = [(n, node_id) for node_id, n in usable.items() if n >= count]
        if fits:
            return [self._host_claim(min(fits)[1], count, host)]
        return self._host_spanning(usable, sorted(usable), count, host)

    def _host_within(
        self, usable: dict[str, int], count: int, level: str, host: HostResources
    ) -> list[NodeClaim] | None:
        if level == "node":
            fits = [(n, node_id) for node_id, n in usable.items() if n >= count]
            return [self._host_claim(min(fits)[1], count, host)] if fits else None
        groups: dict[str, list[str]] = defaultdict(list)
        for node_id in usable:
            node = self._nodes[node_id]
            groups[node.nvlink if level == "nvlink" else node.leaf].append(node_id)
        sized = [(sum(usable[n] for n in members), key) for key, members in groups.items()]
        best = min((s for s in sized if s[0] >= count), default=None)
        return None if best is None else self._host_spanning(usable, groups[best[1]], count, host)

    def _host_spanning(
        self, usable: dict[str, int], members: Iterable[str], count: int, host: HostResources
    ) -> list[NodeClaim] | None:
        """`count` devices over the fewest of `members`: the most usable first, ties by node id."""
        chosen: list[NodeClaim] = []
        remaining = count
        for node_id in sorted(members, key=lambda n: (-usable[n], n)):
            take = min(usable[node_id], remaining)
            chosen.append(self._host_claim(node_id, take, host))
            remaining -= take
            if remaining == 0:
                return chosen
        return None

    def _host_claim(self, node_id: str, count: int, host: HostResources) -> NodeClaim:
        node = self._nodes[node_id]
        cpu, memory = host.times(count)
        return NodeClaim(node_id, node.generation, tuple(node.free[:count]), cpu_milli=cpu, memory_mib=memory)

    def _pack_whole(self, sku: str, count: int, host: HostResources) -> list[NodeClaim] | None:
        cpu, memory = host.times(count)
        placed = self.engine(sku).decide(Demand(cpu, memory, WHOLE, count))
        if placed is None:
            return None
        node = self._nodes[placed.node]
        return [NodeClaim(placed.node, node.generation, placed.devices, cpu_milli=cpu, memory_mib=memory)]

    def place_host(self, sku: str, host: HostResources) -> list[NodeClaim] | None:
        """Host CPU and memory alone on one node of `sku` (no device), where the packing engine
        strands the fewest devices. The broker never asks this (a grant holds devices); the trace
        benchmark does, for its CPU-only tasks."""
        placed = self.engine(sku).decide(Demand(host.cpu_milli, host.memory_mib, HOST_ONLY, 0))
        if placed is None:
            return None
        node = self._nodes[placed.node]
        return [NodeClaim(placed.node, node.generation, (), cpu_milli=host.cpu_milli, memory_mib=host.memory_mib)]

    def place_slices(
        self,
        sku: str,
        spec: SliceSpec,
        count: int,
        same_node: bool = False,
        host: HostResources = NO_HOST,
        unit: int = 1,
    ) -> list[NodeClaim] | None:
        """Chooses `count` slices shaped like `spec` (its device id is ignored), all or none.

        The slices go in groups that must share a node: all of them with `same_node`, each run of
        `unit` (a member's) otherwise, else one by one. A MIG group goes on a node with a fixed
        layout when one can take it all (see `_pick_fixed`): those nodes serve nothing else.
        Otherwise each slice goes where the SKU's packing engine puts it: a device already cut
        the same way with room, or a free whole device, on a node with `host` CPU and memory left
        for it, where it raises the expected fragmentation least (ties: the fullest node, then the
        lowest ids); a group's later slices go on the node of its first. The slices are decided
        one after another, each seeing the ones before. Nothing here changes: the engine's what-if
        state is put back before returning.
        """
        engine = self.engine(sku)
        demand = Demand(host.cpu_milli, host.memory_mib, spec.kind, 1, spec.compute, spec.memory)
        fixed = spec.kind == "mig" and bool(self._fixed.get(sku))
        saved: dict[str, NodeState] = {}
        # Fixed-layout nodes and the engine's nodes are disjoint, so one map holds both choices.
        by_node: dict[str, list[SliceSpec]] = defaultdict(list)
        placed_count = 0
        try:
            while placed_count < count:
                need = count - placed_count if same_node else min(unit, count - placed_count)
                on_fixed = self._pick_fixed(sku, spec, host, need, by_node) if fixed else None
                if on_fixed is not None:
                    node_id, devices = on_fixed
                    by_node[node_id] += [_on(spec, d) for d in devices]
                    placed_count += need
                    continue
                pinned: str | None = None  # a new group may go anywhere
                for _ in range(need):
                    placed = engine.decide(demand, only=pinned)
                    if placed is None:
                        return None
                    before = engine.apply(placed, demand)
                    saved.setdefault(placed.node, before)
                    by_node[placed.node] += [_on(spec, d) for d in placed.devices]
                    if same_node or unit > 1:
                        pinned = placed.node
                placed_count += need
        finally:
            for node_id, state in saved.items():
                engine.set_node(node_id, state.cpu, state.memory, state.devices)
        return [
            NodeClaim(node_id, self._nodes[node_id].generation, (), tuple(specs), *host.times(len(specs)))
            for node_id, specs in sorted(by_node.items())
        ]

    # -- fixed MIG layouts ----------------------------------------------------------------------
    # A fixed node's instances exist already: a slice takes one of its profile's instances, so the
    # node takes at most layout[profile] of them; which device holds it is bounded by the device's
    # partition counters and, for a uniform layout, by the device's share of the instances. What
    # one request has chosen so far (`planned`) counts as taken.
    def _pick_fixed(
        self, sku: str, spec: SliceSpec, host: HostResources, need: int, planned: dict[str, list[SliceSpec]]
    ) -> tuple[str, list[str]] | None:
        """A fixed-layout node of `sku` for `need` MIG slices like `spec`, and a device for each;
        None when none can take them all. Best fit: the node with the fewest instances of the
        profile left that still takes them, ties by node id, so emptier nodes stay for larger
        groups."""
        ranked = []
        for node_id in self._fixed.get(sku, ()):
            node = self._nodes[node_id]
            if spec.profile in node.layout:
                left = node.layout[spec.profile] - node.in_use[spec.profile] - len(planned.get(node_id, ()))
                if left >= need:
                    ranked.append((left, node_id))
        for _, node_id in sorted(ranked):
            slots = self._fixed_slots(self._nodes[node_id], spec, host, planned.get(node_id, ()))
            if len(slots) >= need:
                return node_id, slots[:need]
        return None

    def _fixed_slots(
        self, node: _Node, spec: SliceSpec, host: HostResources, planned: Sequence[SliceSpec]
    ) -> list[str]:
        """The devices of a fixed-layout node that the next slices like `spec` would go on, one
        entry per slice the node still takes: the fullest device first (ties by id), so
        partly used devices fill before whole ones are cut into."""
        left = node.layout.get(spec.profile, 0) - node.in_use[spec.profile] - len(planned)
        if host:
            cpu, memory = host.times(len(planned))
            left = min(left, host.fits(node.cpu_free - cpu, node.memory_free - memory))
        if left <= 0:
            return []
        limit = node.per_device.get(spec.profile)
        mine = Counter(s.device_id for s in planned)
        options: list[tuple[int, str, int]] = []
        for device_id in [*node.free, *node.sliced]:
            state = node.sliced.get(device_id)
            if state is not None and state.kind != "mig":
                continue
            cap_c, cap_m = (state.cap_compute, state.cap_memory) if state else self.capacity_of(node.sku, "mig")
            free_c = cap_c - (state.used_compute if state else 0) - mine[device_id] * spec.compute
            free_m = cap_m - (state.used_memory if state else 0) - mine[device_id] * spec.memory
            n = min(_per(free_c, spec.compute), _per(free_m, spec.memory), left)
            if limit is not None:
                n = min(n, limit - node.in_use_on(device_id, spec.profile) - mine[device_id])
            if n > 0:
                options.append((free_c, device_id, n))
        return [device_id for _, device_id, n in sorted(options) for _ in range(n)][:left]

    def observe(self, sku: str, count: int, spec: SliceSpec | None, host: HostResources) -> None:
        """Counts a request into the SKU's workload mix, once per request and before placing it:
        `count` whole devices (`spec` None) or `count` slices shaped like `spec`."""
        if spec is None and not count:
            demand = Demand(host.cpu_milli, host.memory_mib, HOST_ONLY, 0)
        elif spec is None:
            demand = Demand(*host.times(count), WHOLE, count)
        else:
            demand = Demand(host.cpu_milli, host.memory_mib, spec.kind, 1, spec.compute, spec.memory)
        self.engine(sku).observe(demand)

    def _claim_on(self, node_id: str, count: int) -> NodeClaim:
        node = self._nodes[node_id]
        return NodeClaim(node_id, node.generation, tuple(node.free[:count]))

    # -- applying outcomes ---------------------------------------------------------------------
    def take(self, grant_id: str, claims: Iterable[NodeClaim]) -> None:
        """Marks devices as taken before the claim is sent, so the next placement avoids them.
        Inventory bumps a node's generation once per claim, so the picture does too."""
        for claim in claims:
            node = self._nodes.get(claim.node_id)
            if node is None:
                continue
            taken = set(claim.device_ids) | {s.device_id for s in claim.slices if s.device_id not in node.sliced}
            for spec in claim.slices:
                state = node.sliced.get(spec.device_id)
                if state is None:
                    state = node.sliced[spec.device_id] = _Sliced(spec.kind, *self.capacity_of(node.sku, spec.kind))
                state.add(grant_id, spec)
            node.count_slices(claim.slices, 1)
            self._set_free(claim.node_id, node, [d for d in node.free if d not in taken])
            node.held.update(dict.fromkeys(claim.device_ids, grant_id))
            if claim.cpu_milli or claim.memory_mib:
                node.cpu_free -= claim.cpu_milli
                node.memory_free -= claim.memory_mib
                cpu, memory = node.host_of.get(grant_id, (0, 0))
                node.host_of[grant_id] = (cpu + claim.cpu_milli, memory + claim.memory_mib)
            node.generation += 1
            self._nodes_of_grant[grant_id].add(claim.node_id)
            self._sync(claim.node_id)

    def untake(self, grant_id: str, claims: Iterable[NodeClaim]) -> None:
        """Undoes `take` for a claim inventory refused (the generation is refreshed separately)."""
        for claim in claims:
            node = self._nodes.get(claim.node_id)
            if node is None:
                continue
            back = [d for d in claim.device_ids if node.held.get(d) == grant_id]
            for device in back:
                del node.held[device]
            back += self._drop_slices(node, grant_id, {s.device_id for s in claim.slices})
            self._set_free(claim.node_id, node, sorted([*node.free, *back]))
            if claim.cpu_milli or claim.memory_mib:
                node.cpu_free += claim.cpu_milli
                node.memory_free += claim.memory_mib
                cpu, memory = node.host_of.pop(grant_id, (0, 0))
                if (cpu, memory) != (claim.cpu_milli, claim.memory_mib):
                    node.host_of[grant_id] = (cpu - claim.cpu_milli, memory - claim.memory_mib)
            self._sync(claim.node_id)

    def set_generation(self, node_id: str, generation: int) -> None:
        node = self._nodes.get(node_id)
        if node is not None:
            node.generation = generation

    def release(self, grant_ids: Iterable[str]) -> set[str]:
        """Frees the devices the given grants hold; returns the nodes touched."""
        touched: set[str] = set()
        for grant_id in grant_ids:
            for node_id in self._nodes_of_grant.pop(grant_id, ()):
                node = self._nodes.get(node_id)
                if node is None:
                    continue
                back = [d for d, holder in node.held.items() if holder == grant_id]
                for device in back:
                    del node.held[device]
                back += self._drop_slices(node, grant_id, set(node.sliced))
                self._set_free(node_id, node, sorted([*node.free, *back]))
                cpu, memory = node.host_of.pop(grant_id, (0, 0))
                node.cpu_free += cpu
                node.memory_free += memory
                self._sync(node_id)
                touched.add(node_id)
        return touched

    @staticmethod
    def _drop_slices(node: _Node, grant_id: str, devices: set[str]) -> list[str]:
        """Removes a grant's slices from the given devices; returns devices left with no slices."""
        emptied = []
        for device_id in sorted(devices):
            state = node.sliced.get(device_id)
            if state is None or grant_id not in state.by_grant:
                continue
            node.count_slices(state.remove(grant_id), -1)
            if not state.by_grant:
                del node.sliced[device_id]
                emptied.append(device_id)
        return emptied

    def capacity_of(self, sku: str, kind: str) -> tuple[int, int]:
        """A device's room for slices of `kind`: milli-units for shares; for partitions the
        compute and memory counters of the SKU's geometry (from the catalogue)."""
        if kind == "share":
            return (1000, 1000)
        return self.slice_capacity.get((sku, kind), (0, 0))


def _on(spec: SliceSpec, device_id: str) -> SliceSpec:
    return SliceSpec(device_id, spec.kind, spec.profile, spec.compute, spec.memory)


def _per_device(layout: dict[str, int], devices: int) -> dict[str, int]:
    """Each device's share of a layout's instances, when every profile's count divides evenly by
    the devices (a uniform layout, as the instances really are); else none (empty)."""
    if devices <= 0 or any(n % devices for n in layout.values()):
        return {}
    return {profile: n // devices for profile, n in layout.items()}


def _per(free: int, size: int) -> int:
    """How many partitions of `size` counters `free` counters hold (any number when size is 0)."""
    return max(free, 0) // size if size > 0 else _UNBOUNDED


def _whole(free: int, unit: int) -> int:
    """The devices of `free` that make whole members of `unit` devices."""
    return free - free % unit
