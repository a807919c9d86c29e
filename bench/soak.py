"""The soak of `make soak`: faults, fuzzing, isolation probes, a long steady load and a burst.

1. Faults: a mesh of real processes over its own Redis (AOF, fsync always); kill -9 of each service
   and Redis at random moments under a steady load of grants, renewals and releases; then the
   DESIGN.md invariants (tests/fault/harness.py).
2. Soak: on the same mesh, tenants of two institutions (hashed tokens) drive grants, renewals,
   releases and reads for SLICEBROKER_SOAK_MINUTES (default 10); every second a health probe of each
   service; every few seconds cross-tenant probes (another tenant's grants, projects, usage, bills);
   RSS of each service process after warm-up and at the end.
3. Burst: 10,000 simultaneous requests; health must stay SERVING.
4. Fuzz: every RPC of every service against in-process servers (tests/security/fuzzing.py).

Writes bench/results/soak.json. Everything shares this machine's cores: figures are noisy.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from slicebroker.mesh.launcher import SERVICES
from slicebroker.runtime.redis_server import RedisServer, free_port
from slicebroker.runtime.server import RunningServer, start_server
from slicebroker.v1 import (
    accounting_pb2,
    accounting_pb2_grpc,
    broker_pb2,
    broker_pb2_grpc,
    quota_pb2,
    quota_pb2_grpc,
)
from tests.fault.harness import FaultMesh, Stats, converged_violations, fault_run, replay_violations, steady_load
from tests.mesh_fixtures import H100_PROJECTS, PROJECTS
from tests.security.fuzzing import run_fuzz
from tests.security.secure_mesh import start_secure_mesh

BURST = int(os.environ.get("SLICEBROKER_SOAK_BURST", "10000"))


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _p(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Tenants:
    """A token per tenant identity, issued into the running mesh's (hashed) token file."""

    def __init__(self, fm: FaultMesh) -> None:
        mesh = fm.mesh
        self.tokens = {
            "uni-a": mesh.issue_token("uni-a-admin", "institution-admin", "uni-a"),
            "lab-b": mesh.issue_token("lab-b-admin", "institution-admin", "lab-b"),
            "uni-a-llm": mesh.issue_token("ana", "project-member", "uni-a", ("uni-a-llm",)),
            "lab-b-bio": mesh.issue_token("bo", "project-member", "lab-b", ("lab-b-bio",)),
        }
        self.projects = {
            "uni-a": [p for p in H100_PROJECTS if PROJECTS[p][0] == "uni-a"],
            "lab-b": [p for p in H100_PROJECTS if PROJECTS[p][0] == "lab-b"],
            "uni-a-llm": ["uni-a-llm"],
            "lab-b-bio": ["lab-b-bio"],
        }
        self.institution = {"uni-a": "uni-a", "lab-b": "lab-b", "uni-a-llm": "uni-a", "lab-b-bio": "lab-b"}

    def md(self, who: str) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.tokens[who]}")]


async def tenant_load(fm: FaultMesh, tenants: Tenants, stop: asyncio.Event, stats: Stats, workers: int) -> None:
    async def worker(n: int) -> None:
        rng = random.Random(n)
        who = list(tenants.tokens)[n % len(tenants.tokens)]
        md, held, seq = tenants.md(who), [], 0
        async with fm.mesh.aio_channel("broker") as ch, fm.mesh.aio_channel("accounting") as ach:
            broker, acc = broker_pb2_grpc.BrokerServiceStub(ch), accounting_pb2_grpc.AccountingServiceStub(ach)
            while not stop.is_set():
                start = time.perf_counter()
                roll = rng.random()
                try:
                    if roll < 0.4 or not held:
                        seq += 1
                        request = broker_pb2.RequestGrantRequest(
                            project=rng.choice(tenants.projects[who]),
                            sku="H100-SXM-80GB",
                            count=rng.randint(1, 2),
                            lease=Duration(seconds=rng.choice([3, 10, 30])),
                            idempotency_key=f"soak-{n}-{seq}",
                        )
                        stats.requests += 1
                        grant = await broker.RequestGrant(request, metadata=md, timeout=10)
                        stats.answered[request.idempotency_key] = (request, grant.id)
                        stats.granted += 1
                        held.append(grant.id)
                    elif roll < 0.6:
                        await broker.RenewGrant(
                            broker_pb2.RenewGrantRequest(id=rng.choice(held), lease=Duration(seconds=30)),
                            metadata=md,
                            timeout=10,
                        )
                        stats.renewed += 1
                    elif roll < 0.85:
                        await broker.ReleaseGrant(
                            broker_pb2.ReleaseGrantRequest(id=held.pop(rng.randrange(len(held)))),
                            metadata=md,
                            timeout=10,
                        )
                        stats.released += 1
                    else:
                        await acc.GetUsage(accounting_pb2.GetUsageRequest(), metadata=md, timeout=10)
                    stats.latencies_ms.append((time.perf_counter() - start) * 1000)
                except grpc.aio.AioRpcError as err:
                    stats.errors[err.code().name] += 1
                    if err.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                        held.clear()
                    elif err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                        await asyncio.sleep(0.05)

    await asyncio.gather(*(worker(n) for n in range(workers)))


async def cross_tenant_probes(fm: FaultMesh, tenants: Tenants, counts: Counter[str]) -> None:
    """One round: each tenant tries to read or act on the other institution's things. A denial is
    PERMISSION_DENIED; anything else answered is an allowed cross-tenant access, counted per RPC."""
    admin = fm.mesh.metadata
    async with (
        fm.mesh.aio_channel("broker") as bch,
        fm.mesh.aio_channel("quota") as qch,
        fm.mesh.aio_channel("accounting") as ach,
    ):
        broker = broker_pb2_grpc.BrokerServiceStub(bch)
        quota = quota_pb2_grpc.QuotaServiceStub(qch)
        acc = accounting_pb2_grpc.AccountingServiceStub(ach)
        live = await broker.ListGrants(
            broker_pb2.ListGrantsRequest(state=broker_pb2.GRANT_STATE_ACTIVE, page_size=200), metadata=admin
        )
        for who, institution in tenants.institution.items():
            md = tenants.md(who)
            other = "lab-b" if institution == "uni-a" else "uni-a"
            foreign = [g for g in live.grants if g.institution == other]
            other_project = next(p for p in H100_PROJECTS if PROJECTS[p][0] == other)
            probes: list[tuple[str, Any]] = [
                ("quota.GetProject", quota.GetProject(quota_pb2.GetProjectRequest(id=other_project), metadata=md)),
                (
                    "quota.ListProjects",
                    quota.ListProjects(quota_pb2.ListProjectsRequest(institution=other), metadata=md),
                ),
                ("accounting.GetUsage", acc.GetUsage(accounting_pb2.GetUsageRequest(institution=other), metadata=md)),
                (
                    "accounting.QueryLedger",
                    acc.QueryLedger(
                        accounting_pb2.QueryLedgerRequest(
                            institution=other, start={"seconds": 1}, end={"seconds": int(time.time()) + 60}
                        ),
                        metadata=md,
                    ),
                ),
                (
                    "broker.ListGrants",
                    broker.ListGrants(broker_pb2.ListGrantsRequest(project=other_project), metadata=md),
                ),
            ]
            if foreign:
                g = foreign[0]
                probes.append(("broker.GetGrant", broker.GetGrant(broker_pb2.GetGrantRequest(id=g.id), metadata=md)))
                probes.append(
                    (
                        "broker.RenewGrant",
                        broker.RenewGrant(
                            broker_pb2.RenewGrantRequest(id=g.id, lease=Duration(seconds=1)), metadata=md
                        ),
                    )
                )
            for name, call in probes:
                try:
                    await call
                    counts[f"allowed:{name}"] += 1
                except grpc.aio.AioRpcError as err:
                    if err.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
                        counts[f"denied:{name}"] += 1
                    else:
                        counts[f"other:{name}:{err.code().name}"] += 1


async def health_probe(fm: FaultMesh, stop: asyncio.Event, counts: Counter[str]) -> None:
    while not stop.is_set():
        for name in SERVICES:
            async with fm.mesh.aio_channel(name) as ch:
                try:
                    r = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=2)
                    counts["serving" if r.status == health_pb2.HealthCheckResponse.SERVING else "not_serving"] += 1
                except grpc.aio.AioRpcError:
                    counts["no_answer"] += 1
        await asyncio.sleep(1)


def _handling_seconds(port: int) -> dict[float, float]:
    """Cumulative counts of the RPC handling-time histogram by bucket bound, over all methods."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    counts: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "slicebroker_rpc_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                counts[bound] = counts.get(bound, 0.0) + sample.value
    return counts


def _bucket_quantile(before: dict[str, dict[float, float]], after: dict[str, dict[float, float]], q: float) -> float:
    """The smallest bucket bound under which a fraction q of the calls between the two scrapes were
    handled (time from the server's interceptor to the answer): an upper bound of the quantile."""
    delta: dict[float, float] = {}
    for name in after:
        for bound, count in after[name].items():
            delta[bound] = delta.get(bound, 0.0) + count - before[name].get(bound, 0.0)
    total = delta.get(math.inf, 0.0)
    for bound in sorted(delta):
        if total and delta[bound] >= q * total:
            return bound
    return math.inf


async def burst(fm: FaultMesh, tenants: Tenants, n: int) -> dict[str, Any]:
    """n requests at once over a few channels: grant requests and reads from every tenant."""
    channels = [fm.mesh.aio_channel("broker") for _ in range(4)] + [fm.mesh.aio_channel("quota") for _ in range(2)]
    codes: Counter[str] = Counter()
    latencies: list[float] = []
    who = list(tenants.tokens)

    async def one(i: int) -> None:
        start = time.perf_counter()
        tenant = who[i % len(who)]
        md = tenants.md(tenant)
        try:
            if i % 3 == 2:
                stub = quota_pb2_grpc.QuotaServiceStub(channels[4 + i % 2])
                await stub.ListProjects(quota_pb2.ListProjectsRequest(), metadata=md, timeout=60)
            else:
                stub = broker_pb2_grpc.BrokerServiceStub(channels[i % 4])
                await stub.RequestGrant(
                    broker_pb2.RequestGrantRequest(
                        project=tenants.projects[tenant][0],
                        sku="H100-SXM-80GB",
                        count=1,
                        lease=Duration(seconds=5),
                        idempotency_key=f"burst-{i}",
                    ),
                    metadata=md,
                    timeout=60,
                )
            codes["OK"] += 1
        except grpc.aio.AioRpcError as err:
            codes[err.code().name] += 1
        latencies.append((time.perf_counter() - start) * 1000)

    start = time.perf_counter()
    health: Counter[str] = Counter()
    stop = asyncio.Event()
    probe = asyncio.create_task(health_probe(fm, stop, health))
    await asyncio.gather(*(one(i) for i in range(n)))
    wall = time.perf_counter() - start
    stop.set()
    await probe
    for ch in channels:
        await ch.close()
    return {
        "requests": n,
        "wall_s": round(wall, 2),
        "codes": dict(codes),
        "p50_ms": round(_p(latencies, 0.5), 1),
        "p99_ms": round(_p(latencies, 0.99), 1),
        "health_during": dict(health),
    }


async def fuzz(examples: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(data_dir=Path(tmp) / "redis").start()
        started: list[RunningServer] = []

        async def start_service(build: Any, settings: Any) -> RunningServer:
            running = await start_server(await build(settings), settings)
            started.append(running)
            await running.wait_ready()
            return running

        os.environ.update({f"SLICEBROKER_{s.upper()}_ALLOW_PLAINTEXT": "true" for s in SERVICES})
        try:
            mesh = await start_secure_mesh(start_service, redis.url, Path(tmp), rate_limit_per_s=0)
            addresses = {name: s.address for name, s in mesh.servers.items()}
            metadata = {w: mesh.md(w) for w in ("admin", "broker", "uni-a", "uni-a-llm")} | {"nobody": []}
            report = await asyncio.to_thread(
                run_fuzz,
                lambda name: grpc.insecure_channel(addresses[name]),
                metadata,
                redis.url,
                examples,
                ("inventory", "quota", "accounting", "broker"),
                False,
            )
        finally:
            for running in reversed(started):
                await running.stop(0.2)
            redis.stop()
    return {"inputs": report.inputs, "by_code": report.by_code, "failures": report.failures[:20]}


async def soak(console: Console) -> tuple[dict[str, float], dict[str, object]]:
    minutes = float(os.environ.get("SLICEBROKER_SOAK_MINUTES", "10"))
    fault_seconds = float(os.environ.get("SLICEBROKER_SOAK_FAULT_SECONDS", str(max(30.0, minutes * 6))))
    faults = int(os.environ.get("SLICEBROKER_SOAK_FAULTS", str(max(5, int(minutes * 2)))))
    examples = int(os.environ.get("SLICEBROKER_SOAK_FUZZ_EXAMPLES", "100"))
    details: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        # Prometheus endpoints on the services that face the burst: its server-side latency.
        metrics_ports = {name: free_port() for name in ("broker", "quota")}
        fm = FaultMesh.start(
            Path(tmp),
            {name: {f"SLICEBROKER_{name.upper()}_METRICS_PORT": str(port)} for name, port in metrics_ports.items()},
        )
        try:
            await fm.load_demo()
            console.print(f"faults: {faults} kills over {fault_seconds:.0f} s")
            fstats, violations = await fault_run(fm, fault_seconds, faults, seed=7)
            details["faults"] = {
                "targets": fstats.faults,
                "requests": fstats.requests,
                "granted": fstats.granted,
                "renewed": fstats.renewed,
                "released": fstats.released,
                "errors": dict(fstats.errors),
                "violations": violations[:20],
            }
            tenants = Tenants(fm)
            await asyncio.sleep(1.5)  # the services re-read the token file within a second
            console.print(f"soak: {minutes:g} min of tenant load")
            stats, stop = Stats(), asyncio.Event()
            health: Counter[str] = Counter()
            cross: Counter[str] = Counter()
            load = asyncio.create_task(tenant_load(fm, tenants, stop, stats, workers=16))
            admin_load = asyncio.create_task(steady_load(fm, stop, Stats(), workers=2, seed=9))
            probe = asyncio.create_task(health_probe(fm, stop, health))
            await asyncio.sleep(min(10.0, minutes * 6))  # warm-up
            rss_start = {n: _rss_mb(p.pid) for n, p in fm.mesh.processes.items()}
            stats.latencies_ms.clear()
            end = time.monotonic() + minutes * 60
            while time.monotonic() < end:
                await cross_tenant_probes(fm, tenants, cross)
                await asyncio.sleep(min(5.0, max(0.0, end - time.monotonic())))
            rss_end = {n: _rss_mb(p.pid) for n, p in fm.mesh.processes.items()}
            stop.set()
            await asyncio.gather(load, admin_load, probe)
            console.print(f"burst: {BURST} simultaneous requests")
            before = {name: _handling_seconds(port) for name, port in metrics_ports.items()}
            burst_result = await burst(fm, tenants, BURST)
            after = {name: _handling_seconds(port) for name, port in metrics_ports.items()}
            burst_result["server_p99_ms_at_most"] = _bucket_quantile(before, after, 0.99) * 1000
            violations_after = await converged_violations(fm)
            violations_after += await replay_violations(fm, stats, seed=3)
        finally:
            fm.stop()
    console.print(f"fuzz: {examples} inputs per RPC")
    fuzz_result = await fuzz(examples)
    denied = sum(v for k, v in cross.items() if k.startswith("denied:"))
    allowed = sum(v for k, v in cross.items() if k.startswith("allowed:"))
    details.update(
        {
            "soak": {
                "requests": stats.requests,
                "granted": stats.granted,
                "renewed": stats.renewed,
                "released": stats.released,
                "errors": dict(stats.errors),
                "rate_per_s": round(len(stats.latencies_ms) / (minutes * 60), 1),
                "p50_ms": round(_p(stats.latencies_ms, 0.5), 2),
                "health": dict(health),
                "rss_start_mb": rss_start,
                "rss_end_mb": rss_end,
                "violations_after": violations_after[:20],
            },
            "cross_tenant": dict(cross),
            "burst": burst_result,
            "fuzz": fuzz_result,
            "note": "client, four services and Redis share this machine's cores; figures are noisy",
        }
    )
    metrics = {
        "faults_injected": float(len(fstats.faults)),
        "invariant_violations": float(len(violations) + len(violations_after)),
        "fuzz_inputs": float(fuzz_result["inputs"]),
        "fuzz_failures": float(len(fuzz_result["failures"])),
        "cross_tenant_denied": float(denied),
        "cross_tenant_allowed": float(allowed),
        "soak_minutes": minutes,
        "soak_p99_ms": _p(stats.latencies_ms, 0.99),
        "rss_growth_mb": max(rss_end[n] - rss_start[n] for n in rss_start),
        "burst_p99_ms": float(burst_result["p99_ms"]),
        "burst_server_p99_ms_at_most": float(burst_result["server_p99_ms_at_most"]),
    }
    return metrics, details


def run(seconds: float, console: Console) -> tuple[dict[str, float], dict[str, object]]:
    del seconds  # the soak's length is SLICEBROKER_SOAK_MINUTES
    return asyncio.run(soak(console))
