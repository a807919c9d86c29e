"""Grant + release cycles per second through the full mesh, and grant latency, against the bare chain.

Everything runs on this machine: Redis, the four services (one process each), the bare chain's two
servers and this load generator share the cores, so the figures are a floor for bigger machines.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from google.protobuf.duration_pb2 import Duration
from rich.console import Console

from bench import chain
from bench.load import LoadResult, closed_loop, open_loop
from slicebroker.mesh.launcher import Mesh
from slicebroker.runtime.redis_server import RedisServer, free_port
from slicebroker.v1 import (
    broker_pb2,
    broker_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
    quota_pb2,
    quota_pb2_grpc,
)

NODES = 128  # x 8 H100 = 1,024 devices, more than the highest concurrency ever holds
PROJECTS = 8
CONCURRENCIES = (1, 8, 32, 64, 128)


def facility() -> str:
    racks = "\n".join(
        f"      - name: r{r:03d}\n        node_groups:\n"
        f"          - {{prefix: h100-r{r:03d}-n, count: 8, sku: H100-SXM-80GB, devices: 8}}"
        for r in range(NODES // 8)
    )
    return f"sites:\n  - name: bench\n    racks:\n{racks}\n"


async def _load(mesh: Mesh, md: list[tuple[str, str]]) -> None:
    async with mesh.aio_channel("inventory") as ch:
        await inventory_pb2_grpc.InventoryServiceStub(ch).LoadFacility(
            inventory_pb2.LoadFacilityRequest(yaml=facility()), metadata=md
        )
    async with mesh.aio_channel("quota") as ch:
        q = quota_pb2_grpc.QuotaServiceStub(ch)
        await q.UpsertInstitution(quota_pb2.UpsertInstitutionRequest(id="bench"), metadata=md)
        for p in range(PROJECTS):
            await q.UpsertProject(
                quota_pb2.UpsertProjectRequest(
                    id=f"bench-{p}", institution="bench", device_caps={"H100-SXM-80GB": 1024}
                ),
                metadata=md,
            )


async def _mesh_runs(mesh: Mesh, seconds: float, console: Console) -> tuple[list[LoadResult], LoadResult]:
    md = mesh.metadata
    await _load(mesh, md)
    run_id = str(int(time.time()))
    async with mesh.aio_channel("broker") as channel:
        broker = broker_pb2_grpc.BrokerServiceStub(channel)

        async def cycle(i: int) -> float:
            request = broker_pb2.RequestGrantRequest(
                project=f"bench-{i % PROJECTS}",
                sku="H100-SXM-80GB",
                count=1,
                lease=Duration(seconds=300),
                idempotency_key=f"{run_id}-{i}-{time.perf_counter_ns()}",
            )
            start = time.perf_counter()
            grant = await broker.RequestGrant(request, metadata=md, timeout=10)
            latency = (time.perf_counter() - start) * 1000
            await broker.ReleaseGrant(broker_pb2.ReleaseGrantRequest(id=grant.id), metadata=md, timeout=10)
            return latency

        await closed_loop(cycle, 8, 1.0)  # warm up: connections, caches, the broker's snapshot
        closed: list[LoadResult] = []
        for concurrency in CONCURRENCIES:
            result = await closed_loop(cycle, concurrency, seconds)
            console.print(
                f"  mesh  c={concurrency:<4} {result.rate:8.1f} cycles/s   grant p50 {result.percentile(50):6.2f} ms"
                f"  p99 {result.percentile(99):6.2f} ms  errors {result.errors}"
            )
            closed.append(result)
        best = max(r.rate for r in closed)
        half = await open_loop(cycle, best / 2, seconds)
        console.print(f"  mesh  open loop at {best / 2:.0f}/s: grant p99 {half.percentile(99):.2f} ms")
        return closed, half


async def _chain_run(target: str, seconds: float, console: Console) -> LoadResult:
    channel, call = chain.stub(target)
    async with channel:

        async def one(i: int) -> float:
            start = time.perf_counter()
            await call(f"d{i % 1024}".encode(), timeout=5)  # type: ignore[operator]
            return (time.perf_counter() - start) * 1000

        await closed_loop(one, 8, 1.0)
        result = await closed_loop(one, 64, seconds)
        console.print(f"  chain c=64   {result.rate:8.1f} requests/s  p99 {result.percentile(99):6.2f} ms")
        return result


def run(seconds: float = 4.0, console: Console | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    console = console or Console()
    with tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp:
        redis = RedisServer(data_dir=Path(tmp) / "redis").start()
        try:
            # 1. The bare chain, alone on the machine.
            a_port, b_port = free_port(), free_port()
            procs = [
                subprocess.Popen([sys.executable, "-m", "bench.chain", "b", str(b_port), redis.url]),
                subprocess.Popen([sys.executable, "-m", "bench.chain", "a", str(a_port), str(b_port)]),
            ]
            try:
                time.sleep(1.5)
                chain_result = asyncio.run(_chain_run(f"127.0.0.1:{a_port}", seconds, console))
            finally:
                for p in procs:
                    p.terminate()
                    p.wait()
            # 2. The mesh.
            mesh = Mesh(run_dir=Path(tmp) / "run", redis_url=redis.url).start()
            try:
                mesh.wait_serving()
                closed, half = asyncio.run(_mesh_runs(mesh, seconds, console))
            finally:
                mesh.stop()
        finally:
            redis.stop()
    best = max(closed, key=lambda r: r.rate)
    metrics = {
        "cycles_per_s": best.rate,
        "best_concurrency": float(best.concurrency),
        "grant_p50_ms_at_best": best.percentile(50),
        "grant_p99_ms_at_best": best.percentile(99),
        "grant_p50_ms_at_half_load": half.percentile(50),
        "grant_p99_ms_at_half_load": half.percentile(99),
        "half_load_cycles_per_s": half.rate,
        "errors": float(sum(r.errors for r in closed) + half.errors),
        "bare_chain_requests_per_s": chain_result.rate,
        "bare_chain_p99_ms": chain_result.percentile(99),
        "ratio_to_bare_chain": best.rate / chain_result.rate,
    }
    for r in closed:
        metrics[f"cycles_per_s_c{r.concurrency}"] = r.rate
        metrics[f"grant_p99_ms_c{r.concurrency}"] = r.percentile(99)
    details = {
        "seconds_per_level": seconds,
        "facility": f"{NODES} nodes x 8 H100-SXM-80GB",
        "cycle": "RequestGrant(count=1) then ReleaseGrant, through the broker",
        "note": "Redis, four services, bare chain and load generator share this machine's cores",
    }
    return metrics, details
