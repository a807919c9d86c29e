"""The broker's picture of inventory: per SKU, each schedulable node's generation and free devices.

Decisions are made here, never against live state; claims carry the generations read here, and
inventory refuses a claim whose picture is stale. Within one broker process all claims and
releases go through one writer (see `grant_path`), so the picture stays exact between refreshes
and only other replicas' writes cause conflicts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


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


ANYWHERE = Topology()
# The levels a gang is tried at, smallest subtree first (the node itself is always first).
_LEVELS = {
    Constraint.SAME_NODE: ("node",),
    Constraint.SAME_NVLINK_DOMAIN: ("node", "nvlink"),
    Constraint.SAME_LEAF: ("node", "nvlink", "leaf"),
}


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


@dataclass(frozen=True, slots=True)
class NodeClaim:
    node_id: str
    expected_generation: int
    device_ids: tuple[str, ...]


@dataclass(slots=True)
class _Node:
    sku: str
    generation: int
    free: list[str]
    # Devices this process took; returned to `free` on release.
    held: dict[str, str]
    nvlink: str = ""
    leaf: str = ""


class Snapshot:
    """Mutable, single-task state: only the inventory writer touches it, between awaits."""

    def __init__(self) -> None:
        self._nodes: dict[str, _Node] = {}
        # sku -> free count -> node ids, for best-fit lookups without scanning every node.
        self._buckets: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.loaded_skus: dict[str, int] = {}  # sku -> ms of the last full refresh
        self._nodes_of_grant: dict[str, set[str]] = defaultdict(set)

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
        )
        self._put(view.node_id, node)

    def drop_node(self, node_id: str) -> None:
        if node_id in self._nodes:
            self._drop(node_id)

    def _put(self, node_id: str, node: _Node) -> None:
        self._nodes[node_id] = node
        for holder in node.held.values():
            self._nodes_of_grant[holder].add(node_id)
        self._buckets[node.sku][len(node.free)].add(node_id)

    def _drop(self, node_id: str) -> None:
        node = self._nodes.pop(node_id)
        self._buckets[node.sku][len(node.free)].discard(node_id)
        for holder in node.held.values():
            self._nodes_of_grant[holder].discard(node_id)

    def _set_free(self, node_id: str, node: _Node, free: list[str]) -> None:
        self._buckets[node.sku][len(node.free)].discard(node_id)
        node.free = free
        self._buckets[node.sku][len(free)].add(node_id)

    # -- queries -------------------------------------------------------------------------------
    def free_count(self, sku: str) -> int:
        return sum(n * len(ids) for n, ids in self._buckets[sku].items())

    def generation(self, node_id: str) -> int | None:
        node = self._nodes.get(node_id)
        return node.generation if node else None

    # -- placement -----------------------------------------------------------------------------
    def place(self, sku: str, count: int, topology: Topology = ANYWHERE) -> list[NodeClaim] | None:
        """Chooses `count` free devices of `sku` within `topology`, or None when they are not there.

        A gang is all or nothing: the answer covers every device or is None. A constrained gang
        takes the smallest subtree that fits — one node, else one NVLink domain, else one leaf
        switch — and among subtrees of one level the one it fills best, so larger free subtrees
        stay whole for larger gangs. A preferred constraint that cannot be met falls back to none.
        """
        if topology.constraint is Constraint.NONE:
            return self._place_anywhere(sku, count)
        if topology.constraint is Constraint.SPREAD:
            claims = self._place_spread(sku, count)
        else:
            claims = None
            for level in _LEVELS[topology.constraint]:
                claims = self._place_within(sku, count, level)
                if claims is not None:
                    break
        if claims is None and not topology.required:
            return self._place_anywhere(sku, count)
        return claims

    def _place_within(self, sku: str, count: int, level: str) -> list[NodeClaim] | None:
        if level == "node":
            return self._place_on_one_node(sku, count)
        groups: dict[str, list[str]] = defaultdict(list)
        for node_id, node in self._nodes.items():
            if node.sku == sku and node.free:
                groups[node.nvlink if level == "nvlink" else node.leaf].append(node_id)
        best: tuple[int, str] | None = None
        for key, members in groups.items():
            free = sum(len(self._nodes[n].free) for n in members)
            if free >= count and (best is None or (free, key) < best):
                best = (free, key)
        if best is None:
            return None
        # Inside the chosen subtree: fewest nodes, fullest first among equals.
        members = sorted(groups[best[1]], key=lambda n: (-len(self._nodes[n].free), n))
        chosen: list[NodeClaim] = []
        remaining = count
        for node_id in members:
            take = min(len(self._nodes[node_id].free), remaining)
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

    def _place_spread(self, sku: str, count: int) -> list[NodeClaim] | None:
        """One device on each of `count` nodes, taking from the emptiest-but-not-empty nodes last."""
        buckets = self._buckets[sku]
        nodes = [n for size in sorted(k for k, ids in buckets.items() if ids and k > 0) for n in sorted(buckets[size])]
        if len(nodes) < count:
            return None
        return [self._claim_on(node_id, 1) for node_id in nodes[:count]]

    def _place_anywhere(self, sku: str, count: int) -> list[NodeClaim] | None:
        """Chooses `count` free devices of `sku`, or None if there are not that many.

        Best fit first: the fullest node that still has `count` free, so whole nodes stay whole
        for large requests. Failing that, the request spans the nodes with the most free devices
        (fewest nodes). Ties break on node id, so the choice is deterministic.
        """
        buckets = self._buckets[sku]
        sizes = sorted(k for k, ids in buckets.items() if ids and k > 0)
        for size in sizes:
            if size >= count:
                node_id = min(buckets[size])
                return [self._claim_on(node_id, count)]
        if sum(k * len(buckets[k]) for k in sizes) < count:
            return None
        chosen: list[NodeClaim] = []
        remaining = count
        for size in reversed(sizes):
            for node_id in sorted(buckets[size]):
                if remaining == 0:
                    return chosen
                take = min(size, remaining)
                chosen.append(self._claim_on(node_id, take))
                remaining -= take
        return chosen

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
            taken = set(claim.device_ids)
            self._set_free(claim.node_id, node, [d for d in node.free if d not in taken])
            node.held.update(dict.fromkeys(claim.device_ids, grant_id))
            node.generation += 1
            self._nodes_of_grant[grant_id].add(claim.node_id)

    def untake(self, grant_id: str, claims: Iterable[NodeClaim]) -> None:
        """Undoes `take` for a claim inventory refused (the generation is refreshed separately)."""
        for claim in claims:
            node = self._nodes.get(claim.node_id)
            if node is None:
                continue
            back = [d for d in claim.device_ids if node.held.get(d) == grant_id]
            for device in back:
                del node.held[device]
            self._set_free(claim.node_id, node, sorted([*node.free, *back]))

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
                self._set_free(node_id, node, sorted([*node.free, *back]))
                touched.add(node_id)
        return touched
