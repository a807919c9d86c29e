"""Fragmentation-aware packing of one SKU's devices: whole devices, shares and partitions, with host
CPU and memory, on single nodes. The broker's snapshot keeps one engine per SKU and places every
single-node request through it; the trace benchmark drives the same snapshot, so what the benchmark
measures is what the broker does.

The idea comes from Fragmentation Gradient Descent (FGD, USENIX ATC'23): a node's *fragmentation*
for a kind of request is the free device capacity on it that such a request could not use — all of
it when the request does not fit the node at all (too little CPU or memory, no device with room),
otherwise the devices that cannot take it (too full, or cut into another kind of slice). Weighted
by how common each kind of request is, that is the node's expected waste; each placement goes where
it raises the expected waste least.

What this module does beyond FGD:

- The workload mix is *learned online* from the requests actually seen (a sliding window), not
  given up front, so the same engine serves a live broker whose mix drifts.
- Ties, which are common (many empty nodes look alike), break towards consolidation: the node left
  with the least free device capacity, then the one with the least free CPU, then the lowest node
  id, and on that node the fullest device that fits — a stable, deterministic order, so the same
  state and requests always give the same answers.
- Requests for host resources only (no device) are steered by the same measure: the CPU they take
  on a node strands its devices for device requests, and the fragmentation of those says so.
- Devices are two-dimensional (compute and memory, in the slice kind's own units: milli-units for
  shares, partition counters for MIG and NPU partitions), and a device cut into one kind of slice
  takes no other kind until it is whole again.

Nodes with identical free resources share one signature; each signature's fragmentation vector (one
entry per known kind of request) is computed once with numpy and reused, so a decision costs one
pass over the distinct signatures, not over the nodes.
"""

from __future__ import annotations

import bisect
import copy
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MILLI = 1000
WHOLE = "whole"
HOST_ONLY = ""

# A device's free state: (slice kind, free compute, free memory) in that kind's units; a whole free
# device is FREE. Devices with no free compute are left out of signatures (nothing can use them).
Dev = tuple[str, int, int]
FREE: Dev = ("", 0, 0)
Signature = tuple[int, int, tuple[Dev, ...]]  # free cpu, free memory, sorted free devices
FloatArray = npt.NDArray[np.float64]
Capacity = Callable[[str], tuple[int, int]]
# Caches of fragmentation vectors are memos only; past this many signatures they start over.
_MAX_CACHED = 200_000


@dataclass(frozen=True, slots=True)
class Demand:
    """What one placement asks of one node: host CPU (milli-cores) and memory (MiB), and either
    `count` whole devices (kind WHOLE), one slice of `kind` of `compute` x `memory` in that kind's
    units, or no device at all (kind HOST_ONLY)."""

    cpu_milli: int
    memory_mib: int
    kind: str = WHOLE
    count: int = 1
    compute: int = 0
    memory: int = 0

    def __post_init__(self) -> None:
        if self.cpu_milli < 0 or self.memory_mib < 0:
            raise ValueError("host resources are not negative")
        if self.kind == HOST_ONLY:
            if self.count or self.compute or self.memory:
                raise ValueError("a host-only demand takes no device")
        elif self.kind == WHOLE:
            if self.count < 1 or self.compute or self.memory:
                raise ValueError("whole devices come in counts of at least 1")
        elif self.count != 1 or self.compute < 1 or self.memory < 0:
            raise ValueError("a slice is one slice with compute of at least 1")


@dataclass(frozen=True, slots=True)
class Placement:
    node: str
    # Device ids taken on the node (empty for a host-only demand).
    devices: tuple[str, ...]


class WorkloadModel:
    """The mix of demand kinds seen in the last `window` requests."""

    def __init__(self, window: int) -> None:
        self._window: deque[int] = deque(maxlen=window)
        self._counts: Counter[int] = Counter()
        self.kinds: list[Demand] = []
        self._index: dict[Demand, int] = {}

    def observe(self, demand: Demand) -> None:
        kind = self._index.get(demand)
        if kind is None:
            kind = self._index[demand] = len(self.kinds)
            self.kinds.append(demand)
        if len(self._window) == self._window.maxlen:
            self._counts[self._window[0]] -= 1
        self._window.append(kind)
        self._counts[kind] += 1

    def weights(self) -> FloatArray:
        w = np.zeros(len(self.kinds))
        for kind, count in self._counts.items():
            w[kind] = count
        total = w.sum()
        return w / total if total else w


@dataclass(slots=True)
class _Kinds:
    """The known demand kinds as arrays, for vectorised fragmentation."""

    cpu: FloatArray
    mem: FloatArray
    count: FloatArray
    compute: FloatArray
    memory: FloatArray
    code: npt.NDArray[np.int64]  # slice kind code; -1 whole, -2 host only
    fresh: npt.NDArray[np.bool_]  # a slice of it fits a whole free device


@dataclass(frozen=True, slots=True)
class NodeState:
    cpu: int
    memory: int
    devices: Mapping[str, Dev]  # device id -> free state, for devices free or sliced


class PackingEngine:
    """One SKU's nodes by signature, and the decision of where one demand goes.

    The engine mirrors state its owner (the snapshot) keeps: the owner calls `set_node` whenever a
    node's free resources change and `drop_node` when it goes. `decide` reads only (its caches are
    memos); `observe` feeds the workload model and is called once per request, before deciding.
    """

    def __init__(
        self, capacity: Capacity, *, window: int = 25, refresh_every: int = 5, tie_milli: float = 1e-6
    ) -> None:
        self._capacity = capacity
        self.nodes: dict[str, NodeState] = {}
        self._signature: dict[str, Signature] = {}
        self._groups: dict[Signature, list[str]] = {}  # node ids, sorted
        self.workload = WorkloadModel(window)
        self._refresh_every = refresh_every
        # Expected-waste differences below this many milli of a device count as ties (then: consolidate).
        self._tie_milli = tie_milli
        self._since_refresh = refresh_every
        self._weights = np.zeros(0)
        self._kinds: _Kinds | None = None
        self._codes: dict[str, int] = {}
        self._frag_vectors: dict[Signature, FloatArray] = {}
        self._expected: dict[Signature, float] = {}

    def __deepcopy__(self, memo: dict[int, object]) -> PackingEngine:
        """A copy for what-if planning (preemption copies the snapshot): the same nodes and
        workload, without the memo caches, which can be large and are rebuilt on demand. Node
        states are shared: they are never changed in place, only replaced."""
        other = copy.copy(self)
        other.nodes = dict(self.nodes)
        other._signature = dict(self._signature)
        other._groups = {sig: list(ids) for sig, ids in self._groups.items()}
        other.workload = copy.deepcopy(self.workload, memo)
        other._weights = self._weights.copy()
        other._kinds = None
        other._codes = dict(self._codes)
        other._frag_vectors = {}
        other._expected = {}
        return other

    # -- state -----------------------------------------------------------------------------------
    def set_node(self, node_id: str, cpu: int, memory: int, devices: Mapping[str, Dev]) -> None:
        state = NodeState(cpu, memory, devices)
        sig = (cpu, memory, tuple(sorted(d for d in devices.values() if self.milli(d) > 0)))
        old = self._signature.get(node_id)
        self.nodes[node_id] = state
        if old == sig:
            return
        if old is not None:
            self._leave(node_id, old)
        self._signature[node_id] = sig
        bisect.insort(self._groups.setdefault(sig, []), node_id)

    def drop_node(self, node_id: str) -> None:
        old = self._signature.pop(node_id, None)
        self.nodes.pop(node_id, None)
        if old is not None:
            self._leave(node_id, old)

    def _leave(self, node_id: str, sig: Signature) -> None:
        group = self._groups[sig]
        del group[bisect.bisect_left(group, node_id)]
        if not group:
            del self._groups[sig]

    def apply(self, placement: Placement, demand: Demand) -> NodeState:
        """Takes `demand` at `placement` in the engine alone (for a what-if spanning several
        decisions); returns the node's state before, for `set_node` to put back."""
        before = self.nodes[placement.node]
        devices = dict(before.devices)
        for device_id in placement.devices:
            devices[device_id] = self._after(devices[device_id], demand)
        self.set_node(placement.node, before.cpu - demand.cpu_milli, before.memory - demand.memory_mib, devices)
        return before

    def free_milli(self) -> float:
        """Free device capacity on every node, in milli of a device (recounted, not kept)."""
        return sum(self.milli(d) for node in self.nodes.values() for d in node.devices.values())

    def milli(self, dev: Dev) -> float:
        """A device's free compute as milli of the device (a fraction for partition counters: a
        1g slice of a 7-slice device is 142.86 milli, and seven of them make a whole device)."""
        if dev == FREE:
            return MILLI
        if dev[1] <= 0:
            return 0.0
        cap = self._capacity(dev[0])[0]
        return dev[1] * MILLI / cap if cap > 0 else 0.0

    def _after(self, dev: Dev, demand: Demand) -> Dev:
        if demand.kind == WHOLE:
            return (WHOLE, 0, 0)
        c, m = self._capacity(demand.kind) if dev == FREE else dev[1:]
        return (demand.kind, c - demand.compute, m - demand.memory)

    def _fits(self, dev: Dev, demand: Demand) -> bool:
        if dev == FREE:
            c, m = self._capacity(demand.kind)
        elif dev[0] == demand.kind:
            c, m = dev[1], dev[2]
        else:
            return False
        return c >= demand.compute and m >= demand.memory

    # -- fragmentation ---------------------------------------------------------------------------
    def _code(self, kind: str) -> int:
        return self._codes.setdefault(kind, len(self._codes))

    def _kind_arrays(self) -> _Kinds:
        kinds = self.workload.kinds
        if self._kinds is None or len(self._kinds.cpu) != len(kinds):
            self._kinds = _Kinds(
                cpu=np.array([d.cpu_milli for d in kinds], dtype=float),
                mem=np.array([d.memory_mib for d in kinds], dtype=float),
                count=np.array([d.count for d in kinds], dtype=float),
                compute=np.array([d.compute for d in kinds], dtype=float),
                memory=np.array([d.memory for d in kinds], dtype=float),
                code=np.array(
                    [-1 if d.kind == WHOLE else -2 if d.kind == HOST_ONLY else self._code(d.kind) for d in kinds],
                    dtype=np.int64,
                ),
                fresh=np.array([d.kind not in (WHOLE, HOST_ONLY) and self._fits(FREE, d) for d in kinds], dtype=bool),
            )
        return self._kinds

    def _frag_vector(self, sig: Signature) -> FloatArray:
        """Free device milli on a node in state `sig` that each known kind of demand could not use."""
        vec = self._frag_vectors.get(sig)
        n = len(self.workload.kinds)
        if vec is not None and len(vec) == n:
            return vec
        cpu, mem, devs = sig
        milli = np.array([self.milli(d) for d in devs], dtype=float)
        total = float(milli.sum())
        if total == 0:
            vec = np.zeros(n)
        else:
            k = self._kind_arrays()
            is_free = np.array([d == FREE for d in devs], dtype=bool)
            code = np.array([-3 if d == FREE else self._code(d[0]) for d in devs], dtype=np.int64)
            free_c = np.array([d[1] for d in devs], dtype=float)
            free_m = np.array([d[2] for d in devs], dtype=float)
            # A slice: the devices that cannot take it are waste for it (all of them if none can).
            fits = (is_free[:, None] & k.fresh[None, :]) | (
                (code[:, None] == k.code[None, :])
                & (free_c[:, None] >= k.compute[None, :])
                & (free_m[:, None] >= k.memory[None, :])
            )
            slice_waste = milli @ ~fits
            # Whole devices: partly used devices are waste; all is waste if too few are whole.
            whole_free = float(np.count_nonzero(is_free))
            whole_waste = np.where(whole_free >= k.count, total - MILLI * whole_free, total)
            fits_host = (cpu >= k.cpu) & (mem >= k.mem)
            frag = np.where(fits_host, np.where(k.code == -1, whole_waste, slice_waste), total)
            vec = np.where(k.code == -2, 0.0, frag)
        if len(self._frag_vectors) >= _MAX_CACHED:
            self._frag_vectors.clear()
        self._frag_vectors[sig] = vec
        return vec

    def _expected_frag(self, sig: Signature) -> float:
        value = self._expected.get(sig)
        if value is None:
            if len(self._expected) >= _MAX_CACHED:
                self._expected.clear()
            value = self._expected[sig] = float(self._frag_vector(sig) @ self._weights)
        return value

    # -- decisions -------------------------------------------------------------------------------
    def observe(self, demand: Demand) -> None:
        """Counts `demand` into the workload mix (once per request, before deciding on it)."""
        self.workload.observe(demand)
        self._since_refresh += 1
        if self._since_refresh >= self._refresh_every or len(self._weights) != len(self.workload.kinds):
            self._weights = self.workload.weights()
            self._expected.clear()
            self._since_refresh = 0

    def decide(self, demand: Demand, only: str | None = None) -> Placement | None:
        """Where `demand` goes (on node `only` if given), or None if it fits nowhere. Reads only."""
        if only is not None:
            sig_of_only = self._signature.get(only)
            groups: Iterable[tuple[Signature, list[str]]] = [] if sig_of_only is None else [(sig_of_only, [only])]
        else:
            groups = self._groups.items()
        best_key: tuple[int, float, int, str, float] | None = None
        best: tuple[str, tuple[Dev, ...]] | None = None
        for sig, group in groups:
            cpu, mem, devs = sig
            if cpu < demand.cpu_milli or mem < demand.memory_mib:
                continue
            before = self._expected_frag(sig)
            for after_devs, taken in self._options(devs, demand):
                after = (cpu - demand.cpu_milli, mem - demand.memory_mib, after_devs)
                delta = round((self._expected_frag(after) - before) / self._tie_milli)
                # Last, among ways to take it from one node: the fullest device first.
                # Free capacity after is compared to 1e-6 milli, so that partition counters that
                # add up to a whole device (1/7 + 6/7) compare equal to it.
                key = (
                    delta,
                    round(sum(self.milli(d) for d in after_devs), 6),
                    cpu - demand.cpu_milli,
                    group[0],
                    round(sum(self.milli(d) for d in taken), 6),
                )
                if best_key is None or key < best_key:
                    best_key, best = key, (group[0], taken)
        if best is None:
            return None
        node, taken = best
        return Placement(node, self._pick(self.nodes[node].devices, taken))

    def _options(self, devs: tuple[Dev, ...], demand: Demand) -> Iterable[tuple[tuple[Dev, ...], tuple[Dev, ...]]]:
        """Each distinct way to take `demand` from a node with `devs`: the devices after (sorted,
        without exhausted ones), and the states of the devices taken."""
        if demand.kind == HOST_ONLY:
            yield devs, ()
            return
        if demand.kind == WHOLE:
            free = [pos for pos, d in enumerate(devs) if d == FREE]
            if len(free) >= demand.count:
                drop = set(free[: demand.count])
                yield tuple(d for pos, d in enumerate(devs) if pos not in drop), (FREE,) * demand.count
            return
        seen: set[Dev] = set()
        for pos, dev in enumerate(devs):
            if dev in seen or not self._fits(dev, demand):
                continue
            seen.add(dev)
            after = self._after(dev, demand)
            rest = [*devs[:pos], *devs[pos + 1 :]]
            if self.milli(after) > 0:
                bisect.insort(rest, after)
            yield tuple(rest), (dev,)

    @staticmethod
    def _pick(devices: Mapping[str, Dev], taken: tuple[Dev, ...]) -> tuple[str, ...]:
        """Concrete devices for the chosen states: the lowest device id in each state."""
        chosen: list[str] = []
        for state in taken:
            chosen.append(min(d for d, s in devices.items() if s == state and d not in chosen))
        return tuple(chosen)
