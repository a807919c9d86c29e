"""How long one placement decision takes on the broker's snapshot of a large facility.

The broker decides on an in-memory snapshot (slicebroker.broker.domain.snapshot) and only then
claims; this measures the decision alone — the live placer's own call, placer.place: the request
counted into the workload mix, then the packing engine for what fits one node and the topology
placer for gangs — with the snapshot kept busy by a churn of grants and releases so that free
capacity is scattered the way it is in a running centre.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from rich.console import Console

from slicebroker.broker.domain.model import Shape, SliceKind
from slicebroker.broker.domain.placer import PlaceJob, place
from slicebroker.broker.domain.snapshot import ANYWHERE, Constraint, NodeView, Snapshot, Topology

SKU = "H100-SXM-80GB"


def facility(devices: int, per_node: int = 8, nodes_per_leaf: int = 64) -> Snapshot:
    snap = Snapshot()
    views = [
        NodeView(
            f"n{i:06d}",
            SKU,
            1,
            True,
            tuple(f"n{i:06d}/gpu{d}" for d in range(per_node)),
            nvlink_domain=f"n{i:06d}",
            leaf=f"leaf{i // nodes_per_leaf:04d}",
        )
        for i in range(devices // per_node)
    ]
    snap.replace_sku(SKU, views, now_ms=0)
    return snap


def measure(
    devices: int, count: int, decisions: int, fill: float, rng: random.Random, topology: Topology | None = None
) -> list[float]:
    snap = facility(devices)
    held: list[str] = []
    serial = 0
    # Fill to `fill` with a mix of request sizes, then churn: each decision is followed by a release.
    while snap.free_count(SKU) > devices * (1 - fill):
        claims = snap.place(SKU, rng.choice((1, 1, 2, 4, 8)))
        if claims is None:
            break
        serial += 1
        snap.take(f"gr_{serial}", claims)
        held.append(f"gr_{serial}")
    latencies = []
    for _ in range(decisions):
        job = PlaceJob(f"gr_{serial + 1}", SKU, count, topology or ANYWHERE)
        start = time.perf_counter()
        claims = place(snap, job)
        latencies.append((time.perf_counter() - start) * 1000)
        if claims is not None:
            serial += 1
            snap.take(f"gr_{serial}", claims)
            held.append(f"gr_{serial}")
        snap.release([held.pop(rng.randrange(len(held)))])
    return latencies


SHARES = (250, 470, 500, 810)


def measure_shares(devices: int, decisions: int, fill: float, rng: random.Random) -> list[float]:
    """Shares of one device among whole-device requests: the packing engine's hard case (many
    distinct node states). Filled to `fill` of the devices' capacity, then churned as above."""
    snap = facility(devices)
    held: list[str] = []
    used = 0

    def job(serial: int) -> tuple[PlaceJob, int]:
        if rng.random() < 0.5:
            milli = rng.choice(SHARES)
            return PlaceJob(f"gr_{serial}", SKU, 1, shape=Shape(SliceKind.SHARE, "", milli, milli)), milli
        count = rng.choice((1, 1, 2, 4, 8))
        return PlaceJob(f"gr_{serial}", SKU, count, Topology(Constraint.SAME_NODE)), 1000 * count

    serial = misses = 0
    while used < fill * devices * 1000 and misses < 100:
        serial += 1
        request, milli = job(serial)
        claims = place(snap, request)
        if claims is None:
            misses += 1
            continue
        snap.take(request.grant_id, claims)
        held.append(request.grant_id)
        used += milli
    latencies = []
    for _ in range(decisions):
        serial += 1
        milli = rng.choice(SHARES)
        request = PlaceJob(f"gr_{serial}", SKU, 1, shape=Shape(SliceKind.SHARE, "", milli, milli))
        start = time.perf_counter()
        claims = place(snap, request)
        latencies.append((time.perf_counter() - start) * 1000)
        if claims is not None:
            snap.take(request.grant_id, claims)
            held.append(request.grant_id)
        snap.release([held.pop(rng.randrange(len(held)))])
    return latencies


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def run(seconds: float = 0.0, console: Console | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    console = console or Console()
    rng = random.Random(7)
    metrics: dict[str, float] = {}
    for label, devices in (("18k", 18_000), ("100k", 100_000)):
        single = measure(devices, 1, 5000, 0.85, rng)
        spanning = measure(devices, 512, 300, 0.5, rng)
        gang = measure(devices, 512, 1000, 0.3, rng, Topology(Constraint.SAME_LEAF, required=True))
        shares = measure_shares(devices, 2000, 0.85, rng)
        metrics[f"share_p50_ms_{label}"] = statistics.median(shares)
        metrics[f"share_p99_ms_{label}"] = p99(shares)
        metrics[f"single_node_p50_ms_{label}"] = statistics.median(single)
        metrics[f"single_node_p99_ms_{label}"] = p99(single)
        metrics[f"span512_p99_ms_{label}"] = p99(spanning)
        metrics[f"gang512_p50_ms_{label}"] = statistics.median(gang)
        metrics[f"gang512_p99_ms_{label}"] = p99(gang)
        console.print(
            f"  {devices:>7,} devices: 1 GPU p99 {p99(single):.3f} ms; 512 GPUs anywhere p99 {p99(spanning):.3f} ms;"
            f" 512 GPUs under one leaf p99 {p99(gang):.3f} ms; a share among shares p99 {p99(shares):.3f} ms"
        )
    details = {
        "snapshot": "whole devices, 8 per node, 85 % full with churn (single), 50 % full (512)",
        "decision": "placer.place (workload mix + packing engine for one node, topology placer for gangs)",
        "share": "one share (250/470/500/810 milli) on a facility 85 % full of shares and whole 1-8 GPU requests",
        "gang": "512 GPUs required under one InfiniBand leaf (64 nodes x 8 GPUs per leaf), facility 30 % full",
        "anywhere": "512 GPUs with no topology constraint, facility 50 % full",
    }
    return metrics, details
