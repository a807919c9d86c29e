"""Fragmentation-aware packing of whole and fractional GPUs onto nodes with CPU and memory.

The idea comes from Fragmentation Gradient Descent (FGD, USENIX ATC'23): a node's *fragmentation*
for a kind of task is the free GPU capacity on it that such a task could not use — all of it when the
task does not fit the node at all (too little CPU, memory, or no GPU with room), otherwise the GPUs
too full to take it. Weighted by how common each kind of task is, that is the node's expected waste;
each placement goes where it raises the expected waste least.

What this module does beyond FGD:

- The workload mix is *learned online* from the requests actually seen (a sliding window), not
  given up front, so the same engine serves a live broker whose mix drifts.
- Ties, which are common (many empty nodes look alike), break towards consolidation: the node left
  with the least free GPU, then the one with the least free CPU, then the lowest index — a stable,
  deterministic order, so the same state and input always give the same answer.
- CPU-only tasks are steered by the same measure: the CPU they take on a GPU node strands that node's
  GPUs for GPU tasks, and the fragmentation of those tasks says so.

Nodes with identical free resources share one signature; each signature's fragmentation vector (one
entry per known kind of task) is computed once with numpy and reused, so a decision costs one pass
over the distinct signatures, not over the nodes.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MILLI = 1000

Signature = tuple[str, int, int, tuple[int, ...]]  # model, free cpu, free memory, sorted free GPU milli
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Demand:
    """What one task asks of one node."""

    cpu_milli: int
    memory_mib: int
    gpus: int  # how many GPUs; 0 for a CPU-only task
    gpu_milli: int  # per GPU: 1000 for whole GPUs, less for a share of one GPU
    models: frozenset[str] = frozenset()  # GPU models allowed; empty for any

    def __post_init__(self) -> None:
        if self.gpus < 0 or self.cpu_milli < 0 or self.memory_mib < 0:
            raise ValueError("demands are not negative")
        if self.gpus and not 0 < self.gpu_milli <= MILLI:
            raise ValueError("gpu_milli must be in 1..1000 when gpus > 0")
        if self.gpus > 1 and self.gpu_milli != MILLI:
            raise ValueError("a task on several GPUs takes them whole")

    @property
    def gpu_total_milli(self) -> int:
        return self.gpus * self.gpu_milli if self.gpus else 0


@dataclass(frozen=True, slots=True)
class PackNode:
    id: str
    model: str
    cpu_milli: int
    memory_mib: int
    gpus: int


@dataclass(frozen=True, slots=True)
class Placement:
    node: str
    # (GPU index on the node, milli taken from it)
    gpus: tuple[tuple[int, int], ...]


class WorkloadModel:
    """The mix of task kinds seen in the last `window` requests."""

    def __init__(self, window: int = 2000) -> None:
        self._window: deque[int] = deque(maxlen=window)
        self._counts: Counter[int] = Counter()
        self.kinds: list[Demand] = []
        self._index: dict[Demand, int] = {}
        # Per-kind parameters as arrays, grown as new kinds appear.
        self.cpu = np.zeros(0)
        self.mem = np.zeros(0)
        self.gpus = np.zeros(0)
        self.gpu_milli = np.zeros(0)

    def observe(self, demand: Demand) -> None:
        kind = self._index.get(demand)
        if kind is None:
            kind = self._index[demand] = len(self.kinds)
            self.kinds.append(demand)
            self.cpu = np.append(self.cpu, demand.cpu_milli)
            self.mem = np.append(self.mem, demand.memory_mib)
            self.gpus = np.append(self.gpus, demand.gpus)
            self.gpu_milli = np.append(self.gpu_milli, demand.gpu_milli)
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

    def allowed_on(self, model: str) -> npt.NDArray[np.bool_]:
        return np.array([not d.models or model in d.models for d in self.kinds], dtype=bool)


class Packer:
    """Places demands on nodes, keeping each node's free CPU, memory and per-GPU milli."""

    def __init__(
        self, nodes: Sequence[PackNode], *, window: int = 25, refresh_every: int = 5, tie_milli: float = 1e-6
    ) -> None:
        self.nodes = list(nodes)
        self._by_id = {n.id: i for i, n in enumerate(self.nodes)}
        self.cpu = [n.cpu_milli for n in self.nodes]
        self.mem = [n.memory_mib for n in self.nodes]
        self.gpu = [[MILLI] * n.gpus for n in self.nodes]
        self._used_milli = 0
        self.workload = WorkloadModel(window)
        self._refresh_every = refresh_every
        # Expected-waste differences below this many GPU milli count as ties (then: consolidate).
        self._tie_milli = tie_milli
        self._since_refresh = refresh_every
        self._weights = np.zeros(0)
        self._groups: dict[Signature, set[int]] = {}
        self._signature: list[Signature] = []
        for i in range(len(self.nodes)):
            sig = self._sig_of(i)
            self._signature.append(sig)
            self._groups.setdefault(sig, set()).add(i)
        self._frag_vectors: dict[Signature, FloatArray] = {}
        self._expected: dict[Signature, float] = {}
        self._allowed: dict[str, npt.NDArray[np.bool_]] = {}

    # -- state ---------------------------------------------------------------------------------
    def _sig_of(self, i: int) -> Signature:
        return (self.nodes[i].model, self.cpu[i], self.mem[i], tuple(sorted(self.gpu[i])))

    def _move(self, i: int) -> None:
        old = self._signature[i]
        group = self._groups[old]
        group.discard(i)
        if not group:
            del self._groups[old]
        new = self._sig_of(i)
        self._signature[i] = new
        self._groups.setdefault(new, set()).add(i)

    @property
    def used_gpu_milli(self) -> int:
        """GPU milli held now (kept as placements are applied and released)."""
        return self._used_milli

    def recount_used_gpu_milli(self) -> int:
        """The same figure recounted from every GPU, to check the running one."""
        return sum(len(g) * MILLI - sum(g) for g in self.gpu)

    @property
    def total_gpu_milli(self) -> int:
        return sum(len(g) for g in self.gpu) * MILLI

    # -- fragmentation ---------------------------------------------------------------------------
    def _frag_vector(self, sig: Signature) -> FloatArray:
        """Free GPU milli on a node in state `sig` that each known kind of task could not use."""
        vec = self._frag_vectors.get(sig)
        w = self.workload
        if vec is not None and len(vec) == len(w.kinds):
            return vec
        model, cpu, mem, free = sig
        total = float(sum(free))
        if total == 0:
            vec = np.zeros(len(w.kinds))
        else:
            allowed = self._allowed.get(model)
            if allowed is None or len(allowed) != len(w.kinds):
                allowed = self._allowed[model] = w.allowed_on(model)
            gpus = np.asarray(free, dtype=float)
            prefix = np.concatenate(([0.0], np.cumsum(gpus)))
            fits_host = (cpu >= w.cpu) & (mem >= w.mem) & allowed
            # A share of one GPU: the GPUs with less free than the share are waste for it.
            below = prefix[np.searchsorted(gpus, w.gpu_milli, side="left")]
            share = np.where(gpus[-1] >= w.gpu_milli, below, total)
            # Whole GPUs: partly used GPUs are waste; all is waste if too few are whole.
            whole_free = float(np.count_nonzero(gpus == MILLI))
            whole = np.where(whole_free >= w.gpus, total - MILLI * whole_free, total)
            gpu_frag = np.where(fits_host, np.where(w.gpu_milli < MILLI, share, whole), total)
            vec = np.where(w.gpus == 0, 0.0, gpu_frag)
        self._frag_vectors[sig] = vec
        return vec

    def _expected_frag(self, sig: Signature) -> float:
        value = self._expected.get(sig)
        if value is None:
            value = self._expected[sig] = float(self._frag_vector(sig) @ self._weights)
        return value

    def _refresh(self) -> None:
        self._weights = self.workload.weights()
        self._expected.clear()
        self._since_refresh = 0

    # -- decisions -------------------------------------------------------------------------------
    def place(self, demand: Demand) -> Placement | None:
        """Chooses where `demand` goes and takes it there; None if it fits nowhere."""
        placement = self.decide(demand)
        if placement is not None:
            self.apply(placement, demand)
        return placement

    def decide(self, demand: Demand) -> Placement | None:
        self.workload.observe(demand)
        self._since_refresh += 1
        if self._since_refresh >= self._refresh_every or len(self._weights) != len(self.workload.kinds):
            self._refresh()
        best_key: tuple[int, int, int, int] | None = None
        best: tuple[int, tuple[tuple[int, int], ...]] | None = None
        for sig, group in self._groups.items():
            model, cpu, mem, free = sig
            if cpu < demand.cpu_milli or mem < demand.memory_mib:
                continue
            if demand.gpus and demand.models and model not in demand.models:
                continue
            before = self._expected_frag(sig)
            for after_free, taken in _options(free, demand):
                after = (model, cpu - demand.cpu_milli, mem - demand.memory_mib, after_free)
                delta = round((self._expected_frag(after) - before) / self._tie_milli)
                key = (delta, sum(after_free), cpu - demand.cpu_milli, 0)
                if best_key is not None and key[:3] > best_key[:3]:
                    continue
                node = min(group)
                key = (*key[:3], node)
                if best_key is None or key < best_key:
                    best_key, best = key, (node, taken)
        if best is None:
            return None
        node, taken_levels = best
        return Placement(self.nodes[node].id, _pick_gpus(self.gpu[node], taken_levels))

    def apply(self, placement: Placement, demand: Demand) -> None:
        i = self._by_id[placement.node]
        if self.cpu[i] < demand.cpu_milli or self.mem[i] < demand.memory_mib:
            raise ValueError(f"{placement.node} lacks the CPU or memory")
        for index, milli in placement.gpus:
            if self.gpu[i][index] < milli:
                raise ValueError(f"{placement.node} GPU {index} has {self.gpu[i][index]} milli free, not {milli}")
        self.cpu[i] -= demand.cpu_milli
        self.mem[i] -= demand.memory_mib
        for index, milli in placement.gpus:
            self.gpu[i][index] -= milli
            self._used_milli += milli
        self._move(i)

    def release(self, placement: Placement, demand: Demand) -> None:
        i = self._by_id[placement.node]
        self.cpu[i] += demand.cpu_milli
        self.mem[i] += demand.memory_mib
        for index, milli in placement.gpus:
            self.gpu[i][index] += milli
            self._used_milli -= milli
        self._move(i)


def _options(free: tuple[int, ...], demand: Demand) -> Iterable[tuple[tuple[int, ...], tuple[tuple[int, int], ...]]]:
    """Each distinct way to take `demand`'s GPUs from a node with `free` (sorted) per-GPU milli:
    the node's free GPUs after, and (free level of the GPU taken, milli taken) per GPU."""
    if demand.gpus == 0:
        yield free, ()
        return
    if demand.gpu_milli < MILLI:
        seen: set[int] = set()
        for pos, level in enumerate(free):
            if level >= demand.gpu_milli and level not in seen:
                seen.add(level)
                after = list(free)
                after[pos] = level - demand.gpu_milli
                yield tuple(sorted(after)), ((level, demand.gpu_milli),)
        return
    whole = [pos for pos, level in enumerate(free) if level == MILLI]
    if len(whole) >= demand.gpus:
        after = list(free)
        for pos in whole[: demand.gpus]:
            after[pos] = 0
        yield tuple(sorted(after)), tuple((MILLI, MILLI) for _ in range(demand.gpus))


def _pick_gpus(gpus: list[int], taken: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    """Concrete GPU indices for the chosen free levels: the lowest index at each level."""
    chosen: list[tuple[int, int]] = []
    used: set[int] = set()
    for level, milli in taken:
        index = next(i for i, free in enumerate(gpus) if free == level and i not in used)
        used.add(index)
        chosen.append((index, milli))
    return tuple(chosen)
