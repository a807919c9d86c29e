"""What fsync before acknowledgement costs on the grant path: the same mesh and load with Redis
`appendfsync always` (every acknowledged grant and ledger entry is on disk: survives kill -9 of
Redis and a power cut) and `appendfsync everysec` (up to a second of acknowledged writes lost to a
crash of the machine; a kill -9 of Redis alone loses nothing the kernel already holds).

Each run: a fresh Redis and process mesh (mTLS, tokens), the small demo facility, `concurrency`
clients doing RequestGrant + ReleaseGrant cycles for `seconds`. Everything shares this machine's
cores, and the disk is whatever backs /tmp: the figures are noisy and disk-specific.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path

import grpc
from google.protobuf.duration_pb2 import Duration
from rich.console import Console

from slicebroker.mesh.launcher import Mesh
from slicebroker.runtime.redis_server import RedisServer
from slicebroker.v1 import broker_pb2, broker_pb2_grpc
from tests.mesh_fixtures import H100_PROJECTS, load_small_demo

CONCURRENCY = 16


async def _cycles(mesh: Mesh, seconds: float) -> tuple[int, list[float], Counter[str]]:
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    stop = time.monotonic() + seconds
    projects = H100_PROJECTS

    async def client(n: int) -> None:
        async with mesh.aio_channel("broker") as channel:
            broker = broker_pb2_grpc.BrokerServiceStub(channel)
            i = 0
            while time.monotonic() < stop:
                i += 1
                start = time.perf_counter()
                try:
                    grant = await broker.RequestGrant(
                        broker_pb2.RequestGrantRequest(
                            project=projects[n % len(projects)],
                            sku="H100-SXM-80GB",
                            count=1,
                            lease=Duration(seconds=60),
                            idempotency_key=f"d-{n}-{i}",
                        ),
                        metadata=mesh.metadata,
                        timeout=10,
                    )
                    latencies.append((time.perf_counter() - start) * 1000)
                    await broker.ReleaseGrant(
                        broker_pb2.ReleaseGrantRequest(id=grant.id), metadata=mesh.metadata, timeout=10
                    )
                except grpc.aio.AioRpcError as err:
                    errors[err.code().name] += 1

    await asyncio.gather(*(client(n) for n in range(CONCURRENCY)))
    return len(latencies), latencies, errors


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values) or [0.0]
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _one(fsync: str, seconds: float, codes: dict[str, object]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(data_dir=Path(tmp) / "redis", fsync=fsync).start()
        mesh = Mesh(run_dir=Path(tmp) / "run", redis_url=redis.url).start()
        try:
            mesh.wait_serving()
            await load_small_demo(mesh.aio_channel, mesh.metadata)
            await _cycles(mesh, 2.0)  # warm-up
            n, latencies, errors = await _cycles(mesh, seconds)
        finally:
            mesh.stop()
            redis.stop()
    codes[fsync] = dict(errors)
    return {
        "cycles_per_s": n / seconds,
        "grant_p50_ms": _p(latencies, 0.5),
        "grant_p99_ms": _p(latencies, 0.99),
        "errors": float(sum(errors.values())),
    }


def run(seconds: float, console: Console) -> tuple[dict[str, float], dict[str, object]]:
    seconds = max(seconds, 8.0)
    metrics: dict[str, float] = {}
    codes: dict[str, object] = {}
    for fsync in ("everysec", "always"):
        console.print(f"appendfsync {fsync}: {seconds:g} s of grant + release cycles")
        for key, value in asyncio.run(_one(fsync, seconds, codes)).items():
            metrics[f"{fsync}_{key}"] = value
    if metrics["everysec_cycles_per_s"]:
        metrics["always_throughput_ratio"] = metrics["always_cycles_per_s"] / metrics["everysec_cycles_per_s"]
    details = {
        "seconds": seconds,
        "concurrency": CONCURRENCY,
        "error_codes": codes,
        "note": "one process mesh (mTLS) and Redis on this machine, /tmp's disk; noisy, shared cores",
    }
    return metrics, details
