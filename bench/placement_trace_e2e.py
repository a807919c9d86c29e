"""One seed of the trace end to end: the same tasks through the real services, grants compared with
the in-process engine's.

Redis and the four services run as child processes (mTLS, as `make run`). Inventory is loaded with
the trace's 1,213 nodes (GPUs, host CPU and memory), quota with one project whose cap exceeds the
facility, and the tasks are sent to the broker one at a time in trace order as RequestGrant calls
(no queueing: a task that fits nowhere is refused and dropped, as the protocol says; nothing is ever
released, as the protocol is arrival-only). Every grant's node and devices are compared with what
`bench.placement_trace.replay` — the broker's placement code in this process — gives for the same
sequence, and the GPU allocation ratio is recomputed from inventory's own record of its devices.

CPU-only tasks are left out of both sequences: the broker grants devices, and a request for host
CPU and memory alone is not something it takes. The ratio here is therefore that of the trace's GPU
tasks alone, not the headline figure (which includes the CPU-only tasks, in-process).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from rich.console import Console

from bench import placement_trace as trace
from slicebroker.broker.domain.placer import PlaceJob
from slicebroker.mesh.launcher import Mesh
from slicebroker.runtime.redis_server import RedisServer
from slicebroker.v1 import broker_pb2, broker_pb2_grpc, inventory_pb2, inventory_pb2_grpc, quota_pb2, quota_pb2_grpc

VARIANT = "default"
SEED = 42
INSTITUTION = "openb"
PROJECT = "openb-trace"
LEASE_S = 24 * 3600  # nothing may expire during the replay


def facility_yaml(nodes: list[trace.TraceNode], per_rack: int = 16) -> str:
    lines = ["sites:", "  - name: openb", "    racks:"]
    for r in range(0, len(nodes), per_rack):
        lines += [f"      - name: r{r // per_rack:04d}", "        nodes:"]
        lines += [
            f"          - {{id: {n.id}, sku: {trace.SKU}, devices: {n.gpus}, cpu_milli: {n.cpu_milli},"
            f" memory_mib: {n.memory_mib}}}"
            for n in nodes[r : r + per_rack]
        ]
    return "\n".join(lines) + "\n"


def request_of(i: int, job: PlaceJob) -> broker_pb2.RequestGrantRequest:
    shape = job.shape
    return broker_pb2.RequestGrantRequest(
        project=PROJECT,
        sku=job.sku,
        count=job.count,
        lease=Duration(seconds=LEASE_S),
        idempotency_key=f"trace-{VARIANT}-{SEED}-{i}",
        topology=broker_pb2.Topology(constraint=broker_pb2.TOPOLOGY_CONSTRAINT_SAME_NODE, required=True),
        shape=None
        if shape.whole
        else broker_pb2.SliceShape(kind=shape.kind.value, compute_milli=shape.compute, memory_milli=shape.memory),
        host_per_slice=broker_pb2.HostResources(cpu_milli=job.host.cpu_milli, memory_mib=job.host.memory_mib),
    )


async def _load(mesh: Mesh, nodes: list[trace.TraceNode]) -> None:
    md = mesh.metadata
    async with mesh.aio_channel("inventory") as ch:
        await inventory_pb2_grpc.InventoryServiceStub(ch).LoadFacility(
            inventory_pb2.LoadFacilityRequest(yaml=facility_yaml(nodes)), metadata=md, timeout=120
        )
    async with mesh.aio_channel("quota") as ch:
        q = quota_pb2_grpc.QuotaServiceStub(ch)
        await q.UpsertInstitution(quota_pb2.UpsertInstitutionRequest(id=INSTITUTION), metadata=md)
        await q.UpsertProject(
            quota_pb2.UpsertProjectRequest(
                id=PROJECT, institution=INSTITUTION, device_caps={trace.SKU: 10 * sum(n.gpus for n in nodes)}
            ),
            metadata=md,
        )


async def _replay(mesh: Mesh, jobs: list[PlaceJob], console: Console) -> tuple[list[trace.Granted | None], int]:
    md = mesh.metadata
    out: list[trace.Granted | None] = []
    async with mesh.aio_channel("broker") as ch:
        broker = broker_pb2_grpc.BrokerServiceStub(ch)
        start = time.perf_counter()
        for i, job in enumerate(jobs):
            try:
                grant = await broker.RequestGrant(request_of(i, job), metadata=md, timeout=60)
            except grpc.aio.AioRpcError as e:
                if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
                out.append(None)
                continue
            nodes = {s.node_id for s in grant.slices}
            assert len(nodes) == 1, f"task {i} spans nodes"
            out.append((nodes.pop(), tuple(sorted(s.device_id for s in grant.slices))))
            if i and i % 1000 == 0:
                console.print(f"  {i:,} of {len(jobs):,} requests, {time.perf_counter() - start:.0f} s")
    # Used GPU milli as inventory records it: whole devices held, plus the compute of every share.
    used = 0
    async with mesh.aio_channel("inventory") as ch:
        inv = inventory_pb2_grpc.InventoryServiceStub(ch)
        token = ""
        while True:
            page = await inv.ListNodes(
                inventory_pb2.ListNodesRequest(sku=trace.SKU, page_size=500, page_token=token), metadata=md
            )
            for node in page.nodes:
                for d in node.devices:
                    used += trace.MILLI if d.holder else sum(s.compute for s in d.slices)
            token = page.next_page_token
            if not token:
                break
    return out, used


def run(seconds: float = 0.0, console: Console | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    console = console or Console()
    nodes = trace.load_nodes()
    capacity = sum(n.gpus for n in nodes) * trace.MILLI
    tasks = [t for t in trace.workload(trace.load_tasks(VARIANT), SEED, capacity) if t.gpus]
    # The first N tasks only (a quicker check); 0 or unset: all of them.
    limit = int(os.environ.get("SLICEBROKER_TRACE_E2E_LIMIT", "0"))
    tasks = tasks[:limit] if limit else tasks
    jobs = [job for i, t in enumerate(tasks) if (job := t.job(f"t{i}")) is not None]
    inprocess = trace.replay(tasks)
    with tempfile.TemporaryDirectory(prefix="sb-trace-") as tmp:
        redis = RedisServer(data_dir=Path(tmp) / "redis").start()
        try:
            mesh = Mesh(run_dir=Path(tmp) / "run", redis_url=redis.url).start()
            try:
                mesh.wait_serving()
                asyncio.run(_load(mesh, nodes))
                start = time.perf_counter()
                e2e, used_inventory = asyncio.run(_replay(mesh, jobs, console))
                elapsed = time.perf_counter() - start
            finally:
                mesh.stop()
        finally:
            redis.stop()
    differ = [i for i, (a, b) in enumerate(zip(e2e, inprocess, strict=True)) if a != b]
    arrived = used = 0
    at_100: list[float] = []
    for task, got in zip(tasks, e2e, strict=True):
        arrived += task.gpu_total_milli
        used += task.gpu_total_milli if got is not None else 0
        if round(100 * arrived / capacity) == 100:
            at_100.append(100 * used / capacity)
    console.print(
        f"  {len(jobs):,} GPU tasks of {VARIANT} seed {SEED} through the mesh in {elapsed:.0f} s;"
        f" {len(differ)} grants differ from in-process; inventory's used {used_inventory:,} milli vs {used:,} granted"
    )
    metrics = {
        "e2e_matches_inprocess": float(not differ and used == used_inventory),
        "e2e_grants_differing": float(len(differ)),
        "e2e_tasks": float(len(jobs)),
        "e2e_refused": float(sum(g is None for g in e2e)),
        "e2e_alloc_at_100_gpu_tasks": sum(at_100) / len(at_100) if at_100 else float("nan"),
        "e2e_alloc_at_130_gpu_tasks": 100 * used_inventory / capacity,
        "e2e_seconds": elapsed,
    }
    details = {
        "e2e_variant": VARIANT,
        "e2e_seed": SEED,
        "e2e_first_differences": differ[:10],
        "e2e_limit": limit,
        "e2e_note": (
            f"All {len(jobs):,} GPU tasks of {VARIANT} seed {SEED} (topped up to 130 %) sent one at a time to the"
            " broker of a real mesh (Redis, inventory with the trace's nodes incl. CPU and memory, quota, accounting);"
            " grants (node + devices per task) compared with bench.placement_trace.replay on the same sequence."
            " CPU-only tasks are left out of both (the broker grants devices only), so e2e_alloc_* are for the GPU"
            " tasks alone, not the headline (which includes CPU-only tasks, in-process)."
        ),
    }
    return metrics, details
