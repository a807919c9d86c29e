"""The fault harness: a mesh of real processes over its own Redis (AOF, fsync always), a steady load
of grants, renewals and releases through the broker, kill -9 of services and Redis at random
moments, and the DESIGN.md invariants checked once the mesh has converged.

Shared by tests/fault (a short run in CI) and bench/soak.py (the long run of `make soak`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration

from slicebroker.mesh.launcher import SERVICES, Mesh
from slicebroker.runtime.redis_server import RedisServer
from slicebroker.v1 import (
    accounting_pb2,
    accounting_pb2_grpc,
    broker_pb2,
    broker_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
    quota_pb2,
    quota_pb2_grpc,
)
from tests.mesh_fixtures import H100_PROJECTS, PROJECTS, load_small_demo

FAST_REPAIR = {
    "SLICEBROKER_BROKER_REPAIR_GRACE_S": "1",
    "SLICEBROKER_BROKER_RECONCILE_INTERVAL_S": "0.5",
    "SLICEBROKER_BROKER_LEADER_TTL_S": "1",
    "SLICEBROKER_BROKER_REAPER_INTERVAL_S": "0.2",
}
TARGETS = (*SERVICES, "redis")
# Most seconds between a grant's request and its activation that the ledger may leave out.
PLACEMENT_SLACK_S = 0.5


@dataclass
class Stats:
    requests: int = 0
    granted: int = 0
    renewed: int = 0
    released: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    # idempotency key -> (request, the grant id answered)
    answered: dict[str, tuple[Any, str]] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)


@dataclass
class FaultMesh:
    mesh: Mesh
    redis: RedisServer

    @classmethod
    def start(cls, run_dir: Path, extra_env: dict[str, dict[str, str]] | None = None) -> FaultMesh:
        # fsync before every acknowledgement: a Redis killed with SIGKILL keeps every acknowledged write.
        redis = RedisServer(data_dir=run_dir / "redis", fsync="always").start()
        env = {"broker": dict(FAST_REPAIR)}
        for name, values in (extra_env or {}).items():
            env.setdefault(name, {}).update(values)
        mesh = Mesh(run_dir=run_dir / "mesh", redis_url=redis.url, log_json=True, extra_env=env)
        try:
            mesh.start()
            mesh.wait_serving()
        except Exception:
            mesh.stop()
            redis.stop()
            raise
        return cls(mesh, redis)

    def stop(self) -> None:
        self.mesh.stop()
        self.redis.stop()

    async def load_demo(self) -> None:
        await load_small_demo(self.mesh.aio_channel, self.mesh.metadata)

    def kill(self, target: str) -> None:
        """SIGKILL, then a restart on the same port (Redis: from its AOF)."""
        if target == "redis":
            assert self.redis.process is not None
            self.redis.process.kill()
            self.redis.process.wait()
            self.redis.process = None
            self.redis.start()
        else:
            self.mesh.kill(target)
            self.mesh.start_service(target)

    def wait_serving(self, timeout_s: float = 60.0) -> None:
        self.mesh.wait_serving(timeout_s=timeout_s)


async def steady_load(fm: FaultMesh, stop: asyncio.Event, stats: Stats, workers: int = 8, seed: int = 0) -> None:
    """Workers that each keep a few grants: request (unique idempotency key), renew, release."""
    md = fm.mesh.metadata
    projects = H100_PROJECTS

    async def worker(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        held: list[str] = []
        seq = 0
        grant_id = ""
        channel = fm.mesh.aio_channel("broker")
        broker = broker_pb2_grpc.BrokerServiceStub(channel)
        try:
            while not stop.is_set():
                action = rng.random()
                start = time.perf_counter()
                try:
                    if action < 0.45 or not held:
                        seq += 1
                        key = f"w{seed}-{n}-{seq}"
                        request = broker_pb2.RequestGrantRequest(
                            project=rng.choice(projects),
                            sku="H100-SXM-80GB",
                            count=rng.randint(1, 3),
                            lease=Duration(seconds=rng.choice([2, 5, 30])),
                            idempotency_key=key,
                        )
                        stats.requests += 1
                        grant = await broker.RequestGrant(request, metadata=md, timeout=5)
                        stats.answered[key] = (request, grant.id)
                        if grant.state == broker_pb2.GRANT_STATE_ACTIVE:
                            stats.granted += 1
                            held.append(grant.id)
                    elif action < 0.7:
                        grant_id = rng.choice(held)
                        await broker.RenewGrant(
                            broker_pb2.RenewGrantRequest(id=grant_id, lease=Duration(seconds=30)),
                            metadata=md,
                            timeout=5,
                        )
                        stats.renewed += 1
                    else:
                        grant_id = held.pop(rng.randrange(len(held)))
                        await broker.ReleaseGrant(broker_pb2.ReleaseGrantRequest(id=grant_id), metadata=md, timeout=5)
                        stats.released += 1
                    stats.latencies_ms.append((time.perf_counter() - start) * 1000)
                except grpc.aio.AioRpcError as err:
                    stats.errors[err.code().name] += 1
                    if err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                        await asyncio.sleep(0.05)
                    elif err.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                        # Ended meanwhile (expired, or failed by the reconciler after a crash).
                        held[:] = [g for g in held if g != grant_id]
                    elif err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and held:
                        # Full: give one back so the load keeps moving.
                        gid = held.pop(0)
                        await _quietly(
                            broker.ReleaseGrant(broker_pb2.ReleaseGrantRequest(id=gid), metadata=md, timeout=5)
                        )
        finally:
            await channel.close()

    await asyncio.gather(*(worker(n) for n in range(workers)))


async def _quietly(call: Any) -> None:
    with contextlib.suppress(grpc.aio.AioRpcError):
        await call


async def inject_faults(
    fm: FaultMesh, stop: asyncio.Event, stats: Stats, faults: int, every_s: tuple[float, float], seed: int = 0
) -> None:
    rng = random.Random(seed)
    # Every target once per round, in a random order: five faults kill each service and Redis.
    order: list[str] = []
    for _ in range(faults):
        await asyncio.sleep(rng.uniform(*every_s))
        if stop.is_set():
            return
        if not order:
            order = rng.sample(TARGETS, len(TARGETS))
        target = order.pop()
        stats.faults.append(target)
        await asyncio.to_thread(fm.kill, target)
        await asyncio.to_thread(fm.wait_serving)


async def _all_grants(broker: Any, md: Any) -> list[Any]:
    grants, token = [], ""
    while True:
        page = await broker.ListGrants(
            broker_pb2.ListGrantsRequest(page_size=1000, page_token=token), metadata=md, timeout=10
        )
        grants.extend(page.grants)
        token = page.next_page_token
        if not token:
            return grants


async def _snapshot(fm: FaultMesh) -> dict[str, Any]:
    md = fm.mesh.metadata
    m = fm.mesh
    async with (
        m.aio_channel("broker") as b,
        m.aio_channel("inventory") as i,
        m.aio_channel("quota") as q,
        m.aio_channel("accounting") as a,
    ):
        grants = await _all_grants(broker_pb2_grpc.BrokerServiceStub(b), md)
        inventory = inventory_pb2_grpc.InventoryServiceStub(i)
        nodes, token = [], ""
        while True:
            page = await inventory.ListNodes(
                inventory_pb2.ListNodesRequest(page_size=1000, page_token=token), metadata=md, timeout=10
            )
            nodes.extend(page.nodes)
            token = page.next_page_token
            if not token:
                break
        quota = quota_pb2_grpc.QuotaServiceStub(q)
        projects = {
            p: await quota.GetProject(quota_pb2.GetProjectRequest(id=p), metadata=md, timeout=10) for p in PROJECTS
        }
        reservations = await quota.ListReservations(quota_pb2.ListReservationsRequest(), metadata=md, timeout=10)
        usage = await accounting_pb2_grpc.AccountingServiceStub(a).GetUsage(
            accounting_pb2.GetUsageRequest(), metadata=md, timeout=10
        )
    return {
        "grants": grants,
        "nodes": nodes,
        "projects": projects,
        "reservations": list(reservations.reservations),
        "usage": list(usage.rows),
    }


def violations_of(snap: dict[str, Any]) -> list[str]:
    """The DESIGN.md invariants over one converged snapshot of the four services."""
    out: list[str] = []
    active = [g for g in snap["grants"] if g.state == broker_pb2.GRANT_STATE_ACTIVE]
    ended = [g for g in snap["grants"] if g.state == broker_pb2.GRANT_STATE_ENDED]
    # 1. No device held by two live grants, and inventory agrees with the broker on who holds what.
    owner: dict[str, str] = {}
    for g in active:
        for s in g.slices:
            if s.device_id in owner:
                out.append(f"device {s.device_id} held by {owner[s.device_id]} and {g.id}")
            owner[s.device_id] = g.id
    holders = {d.id: d.holder for n in snap["nodes"] for d in n.devices if d.holder}
    for device, grant_id in owner.items():
        if holders.get(device) != grant_id:
            out.append(f"device {device} of live grant {grant_id} is held by {holders.get(device)!r} in inventory")
    for device, holder in holders.items():
        if owner.get(device) != holder:
            out.append(f"device {device} held by {holder} in inventory, which is not a live grant holding it")
    # 2. No project over its cap: in quota's books, and in the broker's live grants.
    live: dict[str, int] = defaultdict(int)
    for g in active:
        live[g.project] += g.count
    for pid, project in snap["projects"].items():
        cap = project.device_caps.get("H100-SXM-80GB", 0)
        used = project.devices_in_use.get("H100-SXM-80GB", 0)
        if used > cap or live[pid] > cap:
            out.append(f"project {pid} over its cap {cap}: quota says {used}, live grants {live[pid]}")
        if used != live[pid]:
            out.append(f"project {pid}: quota counts {used} devices in use, live grants hold {live[pid]}")
    held = {r.grant_id for r in snap["reservations"]}
    if held - {g.id for g in active}:
        out.append(f"reservations without a live grant: {sorted(held - {g.id for g in active})[:5]}")
    # 3. Every ended grant exactly once in the ledger (count and device-seconds per project).
    # The ledger counts from activation (after placement), the broker's created_at from the request:
    # a grant's ledger seconds are at most its span, and short of it by its placement time only.
    # A duplicated record would double them.
    expected_n: dict[str, int] = defaultdict(int)
    expected_s: dict[str, float] = defaultdict(float)
    slack_s: dict[str, float] = defaultdict(float)
    for g in ended:
        expected_n[g.project] += 1
        seconds = (g.ended_at.ToMilliseconds() - g.created_at.ToMilliseconds()) / 1000
        expected_s[g.project] += g.count * max(seconds, 0.0)
        slack_s[g.project] += g.count * min(max(seconds, 0.0), PLACEMENT_SLACK_S)
    got_n: dict[str, int] = defaultdict(int)
    got_s: dict[str, float] = defaultdict(float)
    for row in snap["usage"]:
        got_n[row.project] += row.grants
        got_s[row.project] += row.device_seconds
    for pid in set(expected_n) | set(got_n):
        if expected_n[pid] != got_n[pid]:
            out.append(f"project {pid}: {expected_n[pid]} ended grants, {got_n[pid]} in the ledger")
        elif not expected_s[pid] - slack_s[pid] - 0.01 <= got_s[pid] <= expected_s[pid] + 0.01:
            out.append(f"project {pid}: {expected_s[pid]:.1f} device-seconds ended, {got_s[pid]:.1f} in the ledger")
    return out


async def converged_violations(fm: FaultMesh, timeout_s: float = 45.0) -> list[str]:
    """Waits for the reconciler, reaper and relay to settle the mesh, then checks the invariants;
    the violations that remain at the deadline are the answer."""
    deadline = time.monotonic() + timeout_s
    found: list[str] = []
    while time.monotonic() < deadline:
        try:
            found = violations_of(await _snapshot(fm))
        except grpc.aio.AioRpcError as err:
            found = [f"snapshot failed: {err.code().name} {err.details()}"]
        if not found:
            return []
        await asyncio.sleep(0.5)
    return found


async def replay_violations(fm: FaultMesh, stats: Stats, sample: int = 50, seed: int = 0) -> list[str]:
    """Replays of answered requests (same idempotency key) must return the same grant."""
    rng = random.Random(seed)
    keys = rng.sample(sorted(stats.answered), min(sample, len(stats.answered)))
    out: list[str] = []
    async with fm.mesh.aio_channel("broker") as channel:
        broker = broker_pb2_grpc.BrokerServiceStub(channel)
        for key in keys:
            request, grant_id = stats.answered[key]
            replayed = await broker.RequestGrant(request, metadata=fm.mesh.metadata, timeout=10)
            if replayed.id != grant_id:
                out.append(f"replay of {key} answered {replayed.id}, first answer was {grant_id}")
    return out


async def fault_run(
    fm: FaultMesh, seconds: float, faults: int, workers: int = 8, seed: int = 0
) -> tuple[Stats, list[str]]:
    """Load for `seconds` with `faults` kills spread over it; then every invariant violation."""
    stats = Stats()
    stop = asyncio.Event()
    spacing = seconds / max(faults, 1)
    load = asyncio.create_task(steady_load(fm, stop, stats, workers, seed))
    chaos = asyncio.create_task(inject_faults(fm, stop, stats, faults, (spacing * 0.5, spacing), seed))
    await asyncio.sleep(seconds)
    await chaos
    stop.set()
    await load
    violations = await converged_violations(fm)
    violations += await replay_violations(fm, stats, seed=seed)
    return stats, violations
