"""Quota: reservations per second and their latency through `QuotaService` over a real Redis (the
whole tenant-tree check in one Lua call per batch), on one project and spread over 1,000, and
the fair-share ordering of 10,000 pending requests over 200 institutions.

The quota service is driven in-process (no gRPC hop): the figure is what the quota logic and its
script sustain; a gRPC hop adds the ~0.4 ms of server CPU measured by mesh_throughput's bare chain.
Redis and the load generator share this machine's cores.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.load import LoadResult, closed_loop
from slicebroker.core.ids import new_grant_id
from slicebroker.quota.domain.amount import Amount
from slicebroker.quota.domain.model import NodeKind, NodeSpec, ReservationRequest
from slicebroker.quota.domain.service import QuotaService, pending_request
from slicebroker.quota.domain.tree import QuotaEntry
from slicebroker.quota.storage.redis_store import RedisQuotaStore
from slicebroker.runtime.redis import connect
from slicebroker.runtime.redis_server import RedisServer

H100 = "H100-SXM-80GB"
SKUS = (H100, "H200-SXM-141GB", "RNGD", "ATOM")
PROJECTS = 1000
INSTITUTIONS = 200
PENDING = 10_000
CONCURRENCY = 64


async def _tree(service: QuotaService) -> None:
    """cohort → 10 institutions (nominal per SKU, may borrow) → 1,000 projects (private device caps
    on H100), so every reservation walks three levels and several resources."""
    await service.upsert_node(NodeSpec("all", NodeKind.COHORT))
    big = QuotaEntry(nominal=Amount.of(100_000))
    for i in range(10):
        await service.upsert_node(NodeSpec(f"inst-{i}", NodeKind.INSTITUTION, "all"))
        await service.set_quota(f"inst-{i}", {sku: big for sku in SKUS} | {"accel": big}, None)
    for p in range(PROJECTS):
        await service.upsert_node(NodeSpec(f"proj-{p}", NodeKind.PROJECT, f"inst-{p % 10}"))


async def _reserve_run(service: QuotaService, projects: list[str], seconds: float) -> LoadResult:
    held: list[str] = []

    async def one(_: int) -> float:
        item = ReservationRequest(new_grant_id(), random.choice(projects), H100, 1, 60, shape="1g.10gb")
        start = time.perf_counter()
        (result,) = await service.reserve([item], int(time.time() * 1000))
        if result.error is not None:
            raise result.error
        held.append(item.grant_id)
        return (time.perf_counter() - start) * 1000

    await closed_loop(one, 8, 0.5)
    result = await closed_loop(one, CONCURRENCY, seconds)
    # Give everything back so the next run starts from the same usage.
    for start in range(0, len(held), 5000):
        await service.cancel(held[start : start + 5000], int(time.time() * 1000))
    return result


async def _fair_share(service: QuotaService, store: RedisQuotaStore, console: Console) -> tuple[float, float]:
    """(ordering on a snapshot, ms; whole call including the snapshot read, ms), medians of 5."""
    rng = random.Random(7)
    for i in range(INSTITUTIONS):
        await service.upsert_node(NodeSpec(f"fs-{i}", NodeKind.INSTITUTION, weight=1 + i % 3))
        for j in range(3):
            await service.upsert_node(NodeSpec(f"fs-{i}-{j}", NodeKind.PROJECT, f"fs-{i}"))
    pending = [
        pending_request(f"r{n}", f"fs-{rng.randrange(INSTITUTIONS)}-{rng.randrange(3)}", rng.choice(SKUS), "", 1)
        for n in range(PENDING)
    ]
    now = int(time.time() * 1000)
    nodes = await store.list_nodes()
    pure: list[float] = []
    whole: list[float] = []
    for _ in range(5):
        t = time.perf_counter()
        order = service.order_on(nodes, pending, now)
        pure.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        await service.fair_share_order(pending, now)
        whole.append((time.perf_counter() - t) * 1000)
    assert len(order) == PENDING
    console.print(f"  fair share {PENDING} requests / {INSTITUTIONS} institutions: {statistics.median(pure):.1f} ms")
    return statistics.median(pure), statistics.median(whole)


async def _main(url: str, seconds: float, console: Console) -> dict[str, float]:
    client = connect(url, max_connections=64)
    try:
        store = RedisQuotaStore(client, "sb:quota-bench", calls_in_flight=4)
        await store.scripts.load()
        service = QuotaService(store)
        await _tree(service)
        single = await _reserve_run(service, ["proj-0"], seconds)
        console.print(f"  one project  {single.rate:8.0f} reserves/s  p99 {single.percentile(99):6.2f} ms")
        spread = await _reserve_run(service, [f"proj-{p}" for p in range(PROJECTS)], seconds)
        console.print(f"  1000 projects {spread.rate:7.0f} reserves/s  p99 {spread.percentile(99):6.2f} ms")
        order_ms, order_total_ms = await _fair_share(service, store, console)
    finally:
        await client.aclose()
    return {
        "reserve_per_s": single.rate,
        "reserve_p99_ms": single.percentile(99),
        "reserve_p50_ms": single.percentile(50),
        "reserve_per_s_spread_1000": spread.rate,
        "reserve_p99_ms_spread_1000": spread.percentile(99),
        "fairshare_order_10k_ms": order_ms,
        "fairshare_order_10k_with_snapshot_read_ms": order_total_ms,
        "errors": float(single.errors + spread.errors),
    }


def run(seconds: float = 4.0, console: Console | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    console = console or Console()
    with tempfile.TemporaryDirectory(prefix="sb-bench-quota-") as tmp:
        redis = RedisServer(data_dir=Path(tmp) / "redis").start()
        try:
            metrics = asyncio.run(_main(redis.url, seconds, console))
        finally:
            redis.stop()
    details = {
        "seconds_per_run": seconds,
        "concurrency": CONCURRENCY,
        "reservation": "one 1g.10gb slice of H100 (4 resources charged) through cohort → institution → project",
        "fair_share": f"{PENDING} pending over {INSTITUTIONS} institutions x 3 projects, weights 1-3",
        "note": "in-process QuotaService (no gRPC hop); Redis and load generator share this machine's cores",
    }
    return metrics, details
