"""Quota: reservations per second and their latency through `QuotaService` over a real Redis (the
whole tenant-tree check in one Lua call per batch), on one project and spread over 1,000, and
the fair-share ordering of 10,000 pending requests over 200 institutions.

The quota service is driven in-process (no gRPC hop): the figure is what the quota logic and its
script sustain; a gRPC hop adds the ~0.4 ms of server CPU measured by mesh_throughput's bare chain.
Fair-share ordering is also timed as the broker sees it: the FairShareOrder RPC of a real quota
server in this process (10,000 requests converted, the tree read, ordered, answered).
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

import grpc
from rich.console import Console

from bench.load import LoadResult, closed_loop
from slicebroker.core.ids import new_grant_id
from slicebroker.quota.domain.amount import Amount
from slicebroker.quota.domain.model import NodeKind, NodeSpec, ReservationRequest
from slicebroker.quota.domain.service import QuotaService, pending_request
from slicebroker.quota.domain.tree import QuotaEntry
from slicebroker.quota.main import build
from slicebroker.quota.settings import QuotaSettings
from slicebroker.quota.storage.redis_store import RedisQuotaStore
from slicebroker.runtime.redis import connect
from slicebroker.runtime.redis_server import RedisServer
from slicebroker.runtime.server import start_server
from slicebroker.v1 import quota_pb2, quota_pb2_grpc

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


async def _fair_share(
    service: QuotaService, store: RedisQuotaStore, url: str, console: Console
) -> tuple[float, float, float]:
    """(ordering on a snapshot, ms; whole call including the snapshot read, ms; the FairShareOrder
    RPC of a quota server over the same Redis, ms), medians of 5."""
    rng = random.Random(7)
    for i in range(INSTITUTIONS):
        await service.upsert_node(NodeSpec(f"fs-{i}", NodeKind.INSTITUTION, weight=1 + i % 3))
        for j in range(3):
            await service.upsert_node(NodeSpec(f"fs-{i}-{j}", NodeKind.PROJECT, f"fs-{i}"))
    specs = [
        (f"r{n}", f"fs-{rng.randrange(INSTITUTIONS)}-{rng.randrange(3)}", rng.choice(SKUS)) for n in range(PENDING)
    ]
    pending = [pending_request(rid, project, sku, "", 1) for rid, project, sku in specs]
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
    request = quota_pb2.FairShareOrderRequest(
        requests=[quota_pb2.PendingRequest(id=rid, project=project, sku=sku, count=1) for rid, project, sku in specs]
    )
    settings = QuotaSettings(redis_url=url, listen="127.0.0.1:0", key_prefix="sb:quota-bench", allow_plaintext=True)
    server = await start_server(await build(settings), settings)
    rpc: list[float] = []
    try:
        await server.wait_ready()
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = quota_pb2_grpc.QuotaServiceStub(channel)
            for _ in range(6):
                t = time.perf_counter()
                answer = await stub.FairShareOrder(request, timeout=30)
                rpc.append((time.perf_counter() - t) * 1000)
            assert len(answer.ids) == PENDING
    finally:
        await server.stop(0.5)
    rpc = rpc[1:]  # the first call warms the channel
    console.print(
        f"  fair share {PENDING} requests / {INSTITUTIONS} institutions: {statistics.median(pure):.1f} ms ordering, "
        f"{statistics.median(whole):.1f} ms with the tree read, {statistics.median(rpc):.1f} ms over gRPC"
    )
    return statistics.median(pure), statistics.median(whole), statistics.median(rpc)


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
        order_ms, order_total_ms, order_rpc_ms = await _fair_share(service, store, url, console)
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
        "fairshare_order_10k_rpc_ms": order_rpc_ms,
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
