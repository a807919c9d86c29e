"""Fair share: weighted dominant-resource fairness with decayed history, as pure functions.

A node's share is its dominant share now (the largest fraction of any resource's capacity its
subtree holds) plus its part of its siblings' decayed burn history (each burn halves in weight
every `half_life`), times `history_weight`, divided by its weight. Institutions are compared with
institutions, and projects with the other projects of their institution.

`order` is progressive filling (DRF): the pending request that goes next is the one of the
institution with the lowest share and, inside it, of the project with the lowest share; each
request taken adds its own dominant share to both before the next pick. Equal shares keep
arrival order. O(n log n) over n pending requests.
"""

from __future__ import annotations

import heapq
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ShareNode:
    id: str
    parent: str
    weight: float
    # Units held now per resource (subtree), and decayed burn history (mh) as of `now`.
    usage: Mapping[str, int]
    history: float


@dataclass(frozen=True, slots=True)
class Pending:
    """A request waiting for capacity: its project and the units it would charge."""

    id: str
    project: str
    charges: Mapping[str, int]


def decayed(value: float, at_ms: int, now_ms: int, half_life_ms: int) -> float:
    if value <= 0 or now_ms <= at_ms:
        return max(value, 0.0)
    return float(value * 0.5 ** ((now_ms - at_ms) / half_life_ms))


def dominant(charges: Mapping[str, int], capacity: Mapping[str, int]) -> float:
    return max((units / capacity[r] for r, units in charges.items() if capacity.get(r)), default=0.0)


def shares(nodes: Sequence[ShareNode], capacity: Mapping[str, int], history_weight: float = 1.0) -> dict[str, float]:
    """Each node's share among its siblings (lower goes first)."""
    history_by_parent: dict[str, float] = defaultdict(float)
    for n in nodes:
        history_by_parent[n.parent] += n.history
    out: dict[str, float] = {}
    for n in nodes:
        total = history_by_parent[n.parent]
        past = n.history / total if total > 0 else 0.0
        out[n.id] = (dominant(n.usage, capacity) + history_weight * past) / n.weight
    return out


def order(
    pending: Sequence[Pending],
    institution_of: Mapping[str, str],
    share: Mapping[str, float],
    weight: Mapping[str, float],
    capacity: Mapping[str, int],
) -> list[str]:
    """Pending request ids in the order they should be served."""
    # Per institution: per project, its queue of (index, increment) in arrival order.
    queues: dict[str, dict[str, deque[tuple[int, float]]]] = defaultdict(dict)
    # Requests of one shape usually share one charges mapping (`resources.shared_charges`): its
    # dominant share is computed once. Keyed by identity, valid while `pending` holds the mappings.
    increments: dict[int, float] = {}
    for i, p in enumerate(pending):
        institution = institution_of.get(p.project, "")
        increment = increments.get(id(p.charges))
        if increment is None:
            increment = increments[id(p.charges)] = dominant(p.charges, capacity)
        queues[institution].setdefault(p.project, deque()).append((i, increment))
    project_heaps: dict[str, list[tuple[float, int, str]]] = {}
    institutions: list[tuple[float, int, str]] = []
    for institution, projects in queues.items():
        heap = [(share.get(pid, 0.0), q[0][0], pid) for pid, q in projects.items()]
        heapq.heapify(heap)
        project_heaps[institution] = heap
        institutions.append((share.get(institution, 0.0), heap[0][1], institution))
    heapq.heapify(institutions)
    out: list[str] = []
    while institutions:
        inst_share, _, institution = heapq.heappop(institutions)
        heap = project_heaps[institution]
        project_share, _, pid = heapq.heappop(heap)
        queue = queues[institution][pid]
        index, increment = queue.popleft()
        out.append(pending[index].id)
        if queue:
            heapq.heappush(heap, (project_share + increment / weight.get(pid, 1.0), queue[0][0], pid))
        if heap:
            heapq.heappush(
                institutions, (inst_share + increment / weight.get(institution, 1.0), heap[0][1], institution)
            )
    return out
