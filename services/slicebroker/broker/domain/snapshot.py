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
            if view.schedulable:
                self._put(view.node_id, _Node(view.sku, view.generation, sorted(view.free_devices), dict(view.held)))
        self.loaded_skus[sku] = now_ms

    def _put(self, node_id: str, node: _Node) -> None:
        self._nodes[node_id] = node
        for holder in node.held.values():
            self._nodes_of_grant[holder].add(node_id)
        self._buckets[node.sku][len(node.free)].add(node_id)

    def _drop(self, node_id: str) -> None:
        node = self._nodes.pop(node_id)
        self._buckets[node.sku][len(node.free)].discard(node_id)

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
    def place(self, sku: str, count: int) -> list[NodeClaim] | None:
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
