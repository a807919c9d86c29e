"""Grant + release cycles per second through the full mesh, and grant latency, against the bare chain.

Everything runs on this machine: Redis, the four services (one process each), the bare chain's two
servers and this load generator share the cores, so the figures are a floor for bigger machines.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from rich.console import Console

from bench import chain
from bench.load import LoadResult, closed_loop, open_loop
from slicebroker.core.ids import new_grant_id
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
CONCURRENCIES = (1, 8, 32, 64, 128, 256)
_MISSING_GRANT = new_grant_id(0)  # well-formed, never granted
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


class CpuMeter:
    """CPU each process of the mesh spends, to say where a cycle's time goes."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = {"load generator": os.getpid(), **pids}
        self._start: dict[str, float] = {}
        self.used: dict[str, float] = {}  # CPU seconds per process, once the block has ended

    def __enter__(self) -> CpuMeter:
        self._start = {name: _cpu_seconds(pid) for name, pid in self._pids.items()}
        return self

    def __exit__(self, *exc: object) -> None:
        self.used = {name: _cpu_seconds(pid) - self._start[name] for name, pid in self._pids.items()}

    def ms_per(self, operations: int) -> dict[str, float]:
        return {name: 1000 * cpu / max(operations, 1) for name, cpu in self.used.items()}


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


def _pids(mesh: Mesh, redis: RedisServer) -> dict[str, int]:
    assert redis.process is not None
    return {"redis": redis.process.pid, **{name: p.pid for name, p in mesh.processes.items()}}


async def _mesh_runs(
    mesh: Mesh, pids: dict[str, int], seconds: float, console: Console
) -> tuple[list[LoadResult], LoadResult, dict[str, float], dict[str, float]]:
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

        async def no_op(i: int) -> float:
            """The cheapest call the broker serves (a lookup of a grant that does not exist): the
            floor any RPC pays for TLS, HTTP/2, auth, policy and the event loop."""
            start = time.perf_counter()
            try:
                await broker.GetGrant(broker_pb2.GetGrantRequest(id=_MISSING_GRANT), metadata=md, timeout=10)
            except grpc.aio.AioRpcError as err:
                if err.code() != grpc.StatusCode.NOT_FOUND:
                    raise
            return (time.perf_counter() - start) * 1000

        await closed_loop(cycle, 8, 1.0)  # warm up: connections, caches, the broker's snapshot
        closed: list[LoadResult] = []
        cpu: dict[str, float] = {}
        for concurrency in CONCURRENCIES:
            with CpuMeter(pids) as meter:
                result = await closed_loop(cycle, concurrency, seconds)
            console.print(
                f"  mesh  c={concurrency:<4} {result.rate:8.1f} cycles/s   grant p50 {result.percentile(50):6.2f} ms"
                f"  p99 {result.percentile(99):6.2f} ms  errors {result.errors}"
            )
            if not closed or result.rate > max(r.rate for r in closed):
                cpu = meter.ms_per(result.operations)
            closed.append(result)
        best = max(r.rate for r in closed)
        half = await open_loop(cycle, best / 2, seconds)
        console.print(f"  mesh  open loop at {best / 2:.0f}/s: grant p99 {half.percentile(99):.2f} ms")
        with CpuMeter(pids) as meter:
            floor = await closed_loop(no_op, 64, seconds)
        floor_cpu = meter.ms_per(floor.operations)
        console.print(
            "  CPU ms per cycle at best: "
            + ", ".join(f"{name} {ms:.2f}" for name, ms in sorted(cpu.items(), key=lambda kv: -kv[1]))
        )
        console.print(
            f"  one no-op RPC: broker {floor_cpu['broker']:.2f} ms CPU,"
            f" load generator {floor_cpu['load generator']:.2f} ms"
        )
        return closed, half, cpu, floor_cpu


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
                closed, half, cpu, floor_cpu = asyncio.run(_mesh_runs(mesh, _pids(mesh, redis), seconds, console))
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
    # Where a cycle's time goes, and the most cycles two cores could ever give: a cycle is at least
    # two RPCs into the broker, each costing the broker and the load generator the no-op floor.
    for name, ms in cpu.items():
        metrics[f"cpu_ms_per_cycle_{name.replace(' ', '_')}"] = ms
    metrics["cpu_ms_per_cycle_total"] = sum(cpu.values())
    metrics["broker_cpu_ms_per_noop_rpc"] = floor_cpu["broker"]
    metrics["load_generator_cpu_ms_per_rpc"] = floor_cpu["load generator"]
    floor_per_cycle = 2 * (floor_cpu["broker"] + floor_cpu["load generator"])
    metrics["ceiling_cycles_per_s_two_noop_rpcs"] = (os.cpu_count() or 1) * 1000 / floor_per_cycle
    details = {
        "seconds_per_level": seconds,
        "facility": f"{NODES} nodes x 8 H100-SXM-80GB",
        "cycle": "RequestGrant(count=1) then ReleaseGrant, through the broker",
        "note": "Redis, four services, bare chain and load generator share this machine's cores",
        "cpu": "cpu_ms_per_cycle_* is each process's CPU time per cycle at the best concurrency; "
        "ceiling_cycles_per_s_two_noop_rpcs is cores / (2 x the CPU of one no-op broker RPC on both ends), "
        "what the machine could do if the grant path itself cost nothing",
    }
    return metrics, details
