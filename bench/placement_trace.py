"""Placement quality on Alibaba's GPU cluster trace v2023, by the protocol of shared/data/.../BENCHMARK.md.

The broker's own packing engine (slicebroker.broker.domain.packing) runs in-process: for each variant
and seed 42–51, tasks arrive one at a time until 130 % of the cluster's GPU capacity has been asked
for; refused tasks are dropped. The headline is the GPU allocation ratio averaged over the tasks at
which 100 % of capacity had arrived, next to the published FGD column.
"""

from __future__ import annotations

import csv
import os
import random
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from slicebroker.broker.domain.packing import Demand, Packer, PackNode

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


def load_nodes() -> list[PackNode]:
    with (DATA / "openb_node_list_gpu_node.csv").open() as f:
        return [
            PackNode(r["sn"], r["model"], int(r["cpu_milli"]), int(r["memory_mib"]), int(r["gpu"]))
            for r in csv.DictReader(f)
        ]


def load_tasks(variant: str) -> list[tuple[str, Demand]]:
    with (DATA / f"openb_pod_list_{variant}.csv").open() as f:
        rows = list(csv.DictReader(f))
    tasks = []
    for r in rows:
        gpus = int(r["num_gpu"])
        spec = (r.get("gpu_spec") or "").strip()
        tasks.append(
            (
                r["name"],
                Demand(
                    cpu_milli=int(r["cpu_milli"]),
                    memory_mib=int(r["memory_mib"]),
                    gpus=gpus,
                    gpu_milli=int(r["gpu_milli"]) if gpus else 0,
                    models=frozenset(spec.split("|")) if spec else frozenset(),
                ),
            )
        )
    return tasks


def workload(tasks: list[tuple[str, Demand]], seed: int, capacity_milli: int) -> list[Demand]:
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


def run_one(variant: str, seed: int) -> dict[str, float]:
    nodes = load_nodes()
    packer = Packer(nodes)
    capacity = packer.total_gpu_milli
    arrived = 0
    at_100: list[float] = []
    refused = 0
    start = time.perf_counter()
    for demand in workload(load_tasks(variant), seed, capacity):
        arrived += demand.gpu_total_milli
        if packer.place(demand) is None:
            refused += 1
        ratio = 100 * packer.used_gpu_milli / capacity
        if round(100 * arrived / capacity) == 100:
            at_100.append(ratio)
    assert packer.used_gpu_milli == packer.recount_used_gpu_milli()
    return {
        "alloc_at_100": statistics.fmean(at_100) if at_100 else float("nan"),
        "alloc_at_130": 100 * packer.used_gpu_milli / capacity,
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
        "engine": "slicebroker.broker.domain.packing",
    }
    return metrics, details
