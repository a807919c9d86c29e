"""Inventory at national-centre scale: registering a generated 18,000-GPU facility and a
100,000-device one through LoadFacility, Watch fan-out lag to 10 readers under ~1,000 changes/s,
and the memory of the broker's Snapshot (services/slicebroker/broker/domain/snapshot.py, built
here exactly as the broker builds it from ListNodes) for 100,000 devices.

Redis, the inventory (its own process, as deployed) and this load generator share the machine's
cores, so the figures are a floor for bigger machines and noisy on a shared one.
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import grpc
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.console import Console

from slicebroker.broker.domain.snapshot import NodeView, Snapshot
from slicebroker.core.facility_generator import generate_yaml
from slicebroker.core.ids import new_grant_id
from slicebroker.runtime.redis_server import RedisServer, free_port
from slicebroker.v1 import inventory_pb2 as pb
from slicebroker.v1 import inventory_pb2_grpc as pb_grpc

GPUS_18K = {"H100-SXM-80GB": 12_000, "H200-SXM-141GB": 6_000}
DEVICES_100K = {
    "H100-SXM-80GB": 48_000,
    "H200-SXM-141GB": 16_000,
    "B200-SXM-180GB": 8_000,
    "RNGD": 20_000,
    "ATOM": 8_000,
}
WATCHERS = 10
CHANGES_PER_S = 1_000
# Events per Watch message the readers ask for (WatchRequest.max_batch); 1 is one event a message.
WATCH_MAX_BATCH = 256
# Nodes one batched Claim (or Release) changes, as the broker's claim writer sends them.
CLAIM_BATCH = 50
BIG = 64 * 1024 * 1024
OPTIONS = [("grpc.max_receive_message_length", BIG), ("grpc.max_send_message_length", BIG)]


def _start_inventory(redis_url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        SLICEBROKER_INVENTORY_REDIS_URL=redis_url,
        SLICEBROKER_INVENTORY_LISTEN=f"127.0.0.1:{port}",
        SLICEBROKER_INVENTORY_WATCH_BLOCK_MS="200",
        SLICEBROKER_INVENTORY_ALLOW_PLAINTEXT="true",
    )
    code = "from slicebroker.inventory.main import main; main()"
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=out, stderr=subprocess.STDOUT)


async def _wait_serving(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            reply = await health.Check(
                health_pb2.HealthCheckRequest(service="slicebroker.v1.InventoryService"), timeout=1
            )
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the inventory did not become ready")


async def _register(stub: Any, redis: aioredis.Redis, devices: dict[str, int]) -> tuple[float, dict[str, Any]]:
    await redis.flushall()
    text = generate_yaml(devices)
    before = int((await redis.info("memory"))["used_memory"])
    start = time.perf_counter()
    reply = await stub.LoadFacility(pb.LoadFacilityRequest(yaml=text), timeout=120)
    elapsed = time.perf_counter() - start
    after = int((await redis.info("memory"))["used_memory"])
    return elapsed, {
        "nodes": reply.nodes_registered,
        "devices": reply.devices,
        "yaml_kb": round(len(text) / 1024, 1),
        "redis_mb": round((after - before) / 2**20, 1),
    }


async def _list_nodes(stub: Any) -> list[Any]:
    nodes: list[Any] = []
    token = ""
    while True:
        page = await stub.ListNodes(pb.ListNodesRequest(page_size=1000, page_token=token), timeout=60)
        nodes += page.nodes
        token = page.next_page_token
        if not token:
            return nodes


async def _broker_cache_mb(stub: Any) -> tuple[float, dict[str, Any]]:
    """The broker's Snapshot for every node, built from ListNodes the way its refresh does."""
    listed = await _list_nodes(stub)
    gc.collect()
    tracemalloc.start()
    snapshot = Snapshot()
    by_sku: dict[str, list[NodeView]] = {}
    for node in listed:
        free = tuple(d.id for d in node.devices if d.healthy and not d.holder and not d.slices)
        held = {d.id: d.holder for d in node.devices if d.holder}
        by_sku.setdefault(node.sku, []).append(
            NodeView(node.id, node.sku, node.generation, node.schedulable, free, held)
        )
    now = int(time.time() * 1000)
    for sku, views in by_sku.items():
        snapshot.replace_sku(sku, views, now)
    del by_sku
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    devices = sum(len(n.devices) for n in listed)
    assert sum(snapshot.free_count(sku) for sku in snapshot.loaded_skus) == devices
    return current / 2**20, {"devices": devices, "nodes": len(listed), "peak_mb": round(peak / 2**20, 1)}


async def _watch_lag(
    stub: Any, target: str, seconds: float, max_batch: int = WATCH_MAX_BATCH, writer: str = "heartbeats"
) -> tuple[float, dict[str, Any]]:
    """10 readers follow Watch while a writer changes node after node at ~1,000 changes/s; lag = a
    reader's receipt minus the write's start. Readers ask for up to `max_batch` events per message,
    as a cache that must keep up does. The writer sends either one heartbeat per change (flipping a
    device's health: a node agent's traffic, one RPC per change) or, as the broker does, claims in
    batches (one RPC changes CLAIM_BATCH nodes)."""
    listed = await _list_nodes(stub)
    nodes = [n.id for n in listed]
    sent: dict[tuple[str, int], float] = {}
    lags: list[float] = []
    seen = [0] * WATCHERS
    ready = asyncio.Event()
    started = [0]

    async def reader(i: int, watch_stub: Any) -> None:
        call = watch_stub.Watch(pb.WatchRequest(from_revision=0, max_batch=max_batch))
        async for message in call:
            received = time.perf_counter()
            events = message.events if message.type == pb.WATCH_EVENT_TYPE_BATCH else (message,)
            for event in events:
                if event.type == pb.WATCH_EVENT_TYPE_SNAPSHOT_END:
                    started[0] += 1
                    if started[0] == WATCHERS:
                        ready.set()
                elif event.type == pb.WATCH_EVENT_TYPE_UPSERT and ready.is_set():
                    at = sent.get((event.node.id, event.node.generation))
                    if at is not None:
                        lags.append(received - at)
                        seen[i] += 1

    # One connection per reader, as ten broker replicas would have.
    channels = [
        grpc.aio.insecure_channel(target, options=[*OPTIONS, ("grpc.use_local_subchannel_pool", 1)])
        for _ in range(WATCHERS)
    ]
    readers = [asyncio.create_task(reader(i, pb_grpc.InventoryServiceStub(channels[i]))) for i in range(WATCHERS)]
    await asyncio.wait_for(ready.wait(), 120)
    # Where each node stands now (an earlier run may have flipped some), so every write is a change.
    healthy = {n.id: next(d.healthy for d in n.devices if d.id.endswith("/gpu0")) for n in listed}
    generations = {n.id: n.generation for n in listed}
    writes: list[asyncio.Task[None]] = []

    # At most this many writes in flight: an open loop with no bound piles up RPCs once the
    # machine cannot keep the rate, which measures the pile, not the watch.
    in_flight = asyncio.Semaphore(32)

    async def write(node_id: str) -> None:
        async with in_flight:
            await _write(node_id)

    async def _write(node_id: str) -> None:
        flip = not healthy[node_id]
        healthy[node_id] = flip
        start = time.perf_counter()
        # The generation this write will produce: writes to one node are never concurrent here.
        generations[node_id] += 1
        sent[(node_id, generations[node_id])] = start
        await stub.Heartbeat(
            pb.HeartbeatRequest(node_id=node_id, devices=[pb.DeviceHealth(device="gpu0", healthy=flip)]), timeout=10
        )

    devices = {n.id: sorted(d.id for d in n.devices) for n in listed}

    async def claim(first: int) -> None:
        """Claims one device on each of the next CLAIM_BATCH nodes, one grant each: device k of every
        node on the k-th pass over the facility, so a node changes again only a pass later (a
        reader that gets there sees every change, none coalesced with the next)."""
        async with in_flight:
            start = time.perf_counter()
            claims = []
            for i in range(first, first + CLAIM_BATCH):
                node_id = nodes[i % len(nodes)]
                # From the last device down: the heartbeat runs flip gpu0's health.
                device = devices[node_id][-1 - (i // len(nodes)) % len(devices[node_id])]
                node_claim = pb.NodeClaim(
                    node_id=node_id, expected_generation=generations[node_id], device_ids=[device]
                )
                claims.append(pb.DeviceClaim(grant_id=new_grant_id(), nodes=[node_claim]))
                generations[node_id] += 1
                sent[(node_id, generations[node_id])] = start
            await stub.Claim(pb.ClaimRequest(claims=claims), timeout=10)

    begin = time.perf_counter()
    count = 0
    if writer == "heartbeats":
        interval = 1 / CHANGES_PER_S
        while time.perf_counter() - begin < seconds:
            writes.append(asyncio.create_task(write(nodes[count % len(nodes)])))
            count += 1
            await asyncio.sleep(max(0.0, begin + count * interval - time.perf_counter()))
    else:
        interval = CLAIM_BATCH / CHANGES_PER_S
        while time.perf_counter() - begin < seconds:
            writes.append(asyncio.create_task(claim(count)))
            count += CLAIM_BATCH
            await asyncio.sleep(max(0.0, begin + count / CLAIM_BATCH * interval - time.perf_counter()))
    await asyncio.gather(*writes)
    rate = count / (time.perf_counter() - begin)
    deadline = time.perf_counter() + 10
    while min(seen) < count and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    for channel in channels:
        await channel.close()
    lags.sort()
    p = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))] * 1000 if lags else float("nan")  # noqa: E731
    return p(0.99), {
        "changes": count,
        "changes_per_s": round(rate, 1),
        "watchers": WATCHERS,
        "max_batch": max_batch,
        "writer": writer,
        "delivered_min_fraction": round(min(seen) / count, 4) if count else 0,
        "lag_p50_ms": round(p(0.5), 2),
        "lag_max_ms": round(lags[-1] * 1000, 2) if lags else None,
    }


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return round(int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) / 1024, 1)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def _run(seconds: float, console: Console) -> tuple[dict[str, float], dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(data_dir=Path(tmp) / "redis").start()
        port = free_port()
        log = Path(tmp) / "inventory.log"
        process = _start_inventory(server.url, port, log)
        redis = aioredis.Redis.from_url(server.url)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=OPTIONS) as channel:
                await _wait_serving(channel)
                stub = pb_grpc.InventoryServiceStub(channel)
                metrics: dict[str, float] = {}
                details: dict[str, object] = {}
                console.print("registering 18,000 GPUs ...")
                metrics["register_18k_gpus_s"], details["register_18k"] = await _register(stub, redis, GPUS_18K)
                console.print("watch fan-out ...")
                metrics["watch_lag_p99_ms"], watch = await _watch_lag(stub, f"127.0.0.1:{port}", seconds)
                details["watch"] = watch
                metrics["watch_changes_per_s"] = watch["changes_per_s"]
                console.print("watch fan-out, changes from batched claims ...")
                metrics["watch_lag_p99_ms_claims"], claims = await _watch_lag(
                    stub, f"127.0.0.1:{port}", seconds, writer="claims"
                )
                details["watch_claims"] = claims
                metrics["watch_changes_per_s_claims"] = claims["changes_per_s"]
                console.print("watch fan-out, one event per message ...")
                metrics["watch_lag_p99_ms_unbatched"], details["watch_unbatched"] = await _watch_lag(
                    stub, f"127.0.0.1:{port}", seconds, max_batch=1
                )
                console.print("registering 100,000 devices ...")
                metrics["register_100k_devices_s"], details["register_100k"] = await _register(
                    stub, redis, DEVICES_100K
                )
                details["inventory_rss_mb"] = _rss_mb(process.pid)
                console.print("broker cache for 100,000 devices ...")
                metrics["broker_cache_mb_100k"], details["broker_cache_100k"] = await _broker_cache_mb(stub)
                details["note"] = "shared machine: Redis, the inventory process and the load generator share its cores"
                return metrics, details
        except Exception:
            console.print(_tail(log))
            raise
        finally:
            await redis.aclose()
            process.terminate()
            process.wait(timeout=10)
            server.stop()


def run(seconds: float, console: Console) -> tuple[dict[str, float], dict[str, object]]:
    return asyncio.run(_run(seconds, console))
