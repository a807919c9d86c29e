"""Placement quality on Alibaba's GPU cluster trace v2023, by the protocol of shared/data/.../BENCHMARK.md.

The broker's own decision runs in-process, through the very call the live placer makes
(slicebroker.broker.domain.placer.place on a Snapshot: the request counted into its SKU's workload
mix, then the packing engine), each grant taken on the snapshot as the live broker takes a claim:
for each variant and seed 42–51, tasks arrive one at a time until 130 % of the cluster's GPU
capacity has been asked for; refused tasks are dropped. CPU-only tasks, which the broker never
grants, go through the same engine as host-only demands (Snapshot.place_host). The headline is the
GPU allocation ratio averaged over the tasks at which 100 % of capacity had arrived, next to the
published FGD column.
"""

from __future__ import annotations

import csv
import os
import random
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from slicebroker.broker.domain.model import WHOLE, Shape, SliceKind
from slicebroker.broker.domain.placer import PlaceJob, place
from slicebroker.broker.domain.snapshot import Constraint, HostResources, NodeClaim, NodeView, Snapshot, Topology

DATA = Path(
    os.environ.get("SLICEBROKER_TRACE_DIR", Path(__file__).resolve().parents[2] / "shared/data/alibaba-gpu-v2023")
)
VARIANTS = ("default", "gpushare40", "gpushare60", "gpushare80", "gpushare100", "multigpu20", "cpu050", "cpu100")
SEEDS = tuple(range(42, 52))
FGD = {
    "default": 95.23,
    "gpushare40": 93.96,
    "gpushare60": 91.25,
    "gpushare80": 89.08,
    "gpushare100": 86.64,
    "multigpu20": 95.53,
    "cpu050": 95.00,
    "cpu100": 95.21,
}
# The trace's GPUs as one SKU of the broker's catalogue (one that comes in shares). No task of the
# trace restricts its GPU model (load_tasks checks), so one SKU places exactly as the models would.
SKU = "A100-SXM-80GB"
MILLI = 1000
# Multi-GPU tasks of the trace run on one node.
ONE_NODE = Topology(Constraint.SAME_NODE, required=True)


@dataclass(frozen=True, slots=True)
class TraceNode:
    id: str
    cpu_milli: int
    memory_mib: int
    gpus: int


@dataclass(frozen=True, slots=True)
class Task:
    """One task of the trace: host CPU and memory in all, and `gpus` whole GPUs or (gpus 1,
    gpu_milli < 1000) a share of one GPU, or no GPU (gpus 0)."""

    cpu_milli: int
    memory_mib: int
    gpus: int
    gpu_milli: int

    @property
    def gpu_total_milli(self) -> int:
        return self.gpus * self.gpu_milli

    def job(self, grant_id: str) -> PlaceJob | None:
        """The broker request for the task (None for a CPU-only task, which the broker never grants):
        host CPU and memory per slice, whole GPUs on one node, or one share of compute and memory."""
        if not self.gpus:
            return None
        host = HostResources(self.cpu_milli // self.gpus, self.memory_mib // self.gpus)
        if self.gpu_milli == MILLI:
            return PlaceJob(grant_id, SKU, self.gpus, ONE_NODE, WHOLE, host)
        return PlaceJob(grant_id, SKU, 1, ONE_NODE, Shape(SliceKind.SHARE, "", self.gpu_milli, self.gpu_milli), host)


def load_nodes() -> list[TraceNode]:
    with (DATA / "openb_node_list_gpu_node.csv").open() as f:
        return [TraceNode(r["sn"], int(r["cpu_milli"]), int(r["memory_mib"]), int(r["gpu"])) for r in csv.DictReader(f)]


def load_tasks(variant: str) -> list[tuple[str, Task]]:
    with (DATA / f"openb_pod_list_{variant}.csv").open() as f:
        rows = list(csv.DictReader(f))
    tasks = []
    for r in rows:
        if (r.get("gpu_spec") or "").strip():
            raise ValueError(f"{r['name']} restricts its GPU model; the benchmark places the trace's GPUs as one SKU")
        gpus = int(r["num_gpu"])
        if gpus and (int(r["cpu_milli"]) % gpus or int(r["memory_mib"]) % gpus):
            raise ValueError(f"{r['name']}: host resources do not split evenly over its GPUs")
        tasks.append(
            (r["name"], Task(int(r["cpu_milli"]), int(r["memory_mib"]), gpus, int(r["gpu_milli"]) if gpus else 0))
        )
    return tasks


def workload(tasks: list[tuple[str, Task]], seed: int, capacity_milli: int) -> list[Task]:
    """Steps 1–2 of the protocol: sort by name, shuffle with the seed, top up to 130 % of capacity."""
    ordered = [d for _, d in sorted(tasks, key=lambda t: t[0])]
    rng = random.Random(seed)
    rng.shuffle(ordered)
    target = 1.3 * capacity_milli
    total = sum(d.gpu_total_milli for d in ordered)
    out = list(ordered)
    while total < target:
        d = ordered[rng.randrange(len(ordered))]
        if total + d.gpu_total_milli > target:
            break
        out.append(d)
        total += d.gpu_total_milli
    return out


def device_ids(node: TraceNode) -> tuple[str, ...]:
    return tuple(f"{node.id}/gpu{i}" for i in range(node.gpus))


def facility(nodes: list[TraceNode]) -> Snapshot:
    """Step 3: every node registered, empty, in the broker's snapshot."""
    snapshot = Snapshot()
    views = [NodeView(n.id, SKU, 1, True, device_ids(n), cpu_free=n.cpu_milli, memory_free=n.memory_mib) for n in nodes]
    snapshot.replace_sku(SKU, views, now_ms=0)
    return snapshot


Granted = tuple[str, tuple[str, ...]]  # node, devices (empty for a CPU-only task)


def submit(snapshot: Snapshot, i: int, task: Task) -> list[NodeClaim] | None:
    """One task through the broker's own decision (placer.place: workload mix, then the packing
    engine), taken on the snapshot as the broker takes a claim."""
    job = task.job(f"t{i}")
    if job is None:
        snapshot.observe(SKU, 0, None, HostResources(task.cpu_milli, task.memory_mib))
        claims = snapshot.place_host(SKU, HostResources(task.cpu_milli, task.memory_mib))
    else:
        claims = place(snapshot, job)
    if claims is not None:
        snapshot.take(f"t{i}", claims)
    return claims


def granted(claims: list[NodeClaim] | None) -> Granted | None:
    if claims is None:
        return None
    (claim,) = claims
    return claim.node_id, tuple(sorted([*claim.device_ids, *(s.device_id for s in claim.slices)]))


def replay(tasks: list[Task]) -> list[Granted | None]:
    """The in-process grants for a sequence of tasks (what the end-to-end replay is compared with)."""
    snapshot = facility(load_nodes())
    return [granted(submit(snapshot, i, task)) for i, task in enumerate(tasks)]


def run_one(variant: str, seed: int) -> dict[str, float]:
    nodes = load_nodes()
    snapshot = facility(nodes)
    capacity = sum(n.gpus for n in nodes) * MILLI
    arrived = used = 0
    at_100: list[float] = []
    refused = 0
    start = time.perf_counter()
    for i, task in enumerate(workload(load_tasks(variant), seed, capacity)):
        arrived += task.gpu_total_milli
        if submit(snapshot, i, task) is None:
            refused += 1
        else:
            used += task.gpu_total_milli
        if round(100 * arrived / capacity) == 100:
            at_100.append(100 * used / capacity)
    # The tally against the snapshot's own state: capacity less what its engine sees free.
    assert used == capacity - snapshot.engine(SKU).free_milli(), "the snapshot disagrees with the tally"
    return {
        "alloc_at_100": statistics.fmean(at_100) if at_100 else float("nan"),
        "alloc_at_130": 100 * used / capacity,
        "refused": float(refused),
        "seconds": time.perf_counter() - start,
    }


def run(seconds: float = 0.0, console: Console | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    console = console or Console()
    variants = [v for v in os.environ.get("SLICEBROKER_TRACE_VARIANTS", ",".join(VARIANTS)).split(",") if v]
    seeds = SEEDS[: int(os.environ.get("SLICEBROKER_TRACE_SEEDS", len(SEEDS)))]
    jobs = [(v, s) for v in variants for s in seeds]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = dict(zip(jobs, pool.map(run_one, *zip(*jobs, strict=True)), strict=True))
    metrics: dict[str, float] = {}
    table = Table(title="GPU allocation ratio (%) at 100 % arrived, Alibaba trace v2023")
    for column in ("variant", "slicebroker mean ± sd", "FGD (published)", "Δ", "at 130 %", "refused"):
        table.add_column(column, justify="right")
    for v in variants:
        values = [results[(v, s)]["alloc_at_100"] for s in seeds]
        mean = statistics.fmean(values)
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        metrics[f"alloc_at_100_{v}_mean"] = mean
        metrics[f"alloc_at_100_{v}_sd"] = sd
        metrics[f"alloc_at_130_{v}_mean"] = statistics.fmean(results[(v, s)]["alloc_at_130"] for s in seeds)
        metrics[f"refused_{v}_mean"] = statistics.fmean(results[(v, s)]["refused"] for s in seeds)
        table.add_row(
            v,
            f"{mean:.2f} ± {sd:.2f}",
            f"{FGD[v]:.2f}",
            f"{mean - FGD[v]:+.2f}",
            f"{metrics[f'alloc_at_130_{v}_mean']:.2f}",
            f"{metrics[f'refused_{v}_mean']:.0f}",
        )
    console.print(table)
    metrics["seconds_per_run_mean"] = statistics.fmean(r["seconds"] for r in results.values())
    details = {
        "seeds": list(seeds),
        "variants": variants,
        "published_fgd": FGD,
        "engine": "slicebroker.broker.domain.placer.place (snapshot + packing engine, as the live broker)",
    }
    return metrics, details
