"""kill -9 of the accounting process while a large event stream is being ingested: after restarts,
the relay-like sender re-sends every batch it did not see acknowledged (and a few it did), and the
ledger and every export come out byte-identical to an uninterrupted run's: nothing lost, nothing
counted twice.

The accounting process is a real child process over its own Redis (AOF, fsync always, as the
ledger is deployed); the uninterrupted run is an in-process server over the session's Redis.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import redis.asyncio as aioredis
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from slicebroker.accounting.main import build
from slicebroker.accounting.settings import AccountingSettings
from slicebroker.accounting.storage.keys import AccountingKeys
from slicebroker.runtime.redis_server import RedisServer
from slicebroker.v1 import accounting_pb2, accounting_pb2_grpc, common_pb2
from tests.api.accounting.test_billing_api import BOOK, HOUR, ms

GRANTED, ENDED = common_pb2.GRANT_EVENT_TYPE_GRANTED, common_pb2.GRANT_EVENT_TYPE_ENDED
GRANTS = 4000
BATCH = 200
FORMATS = ("csv", "jsonl", "focus-csv", "focus-parquet")


def ts(t: int) -> Timestamp:
    return Timestamp(seconds=t // 1000, nanos=(t % 1000) * 1_000_000)


def event_stream(seed: int = 5) -> list[Any]:
    """A month of grants of three institutions, whole devices and slices, each grant's two events
    a little apart in the stream (the relay delivers per grant in order, not globally)."""
    rnd = random.Random(seed)
    opened: list[Any] = []
    stream: list[Any] = []
    for i in range(GRANTS):
        gid = f"gr_{i:026d}"
        start = ms(2025, 11, 1) + rnd.randrange(0, 29 * 24 * 60) * 60_000
        inst = rnd.choice(["kaist", "snu", "samsung"])
        common: dict[str, Any] = {"grant_id": gid, "institution": inst, "project": f"{inst}-p{i % 3}"}
        common |= {"sku": "H100-SXM-80GB", "count": 1 + i % 8}
        extra: dict[str, Any] = {"user": f"u{i % 11}"}
        if i % 5 == 0:
            extra |= {"slice_kind": "mig", "slices": [common_pb2.Slice(node_id="n1", kind="mig", profile="1g.10gb")]}
        if i % 7 == 0:
            extra["priority_class"] = "preemptible"
        stream.append(common_pb2.GrantEvent(event_id=f"{gid}:g", type=GRANTED, at=ts(start), **common, **extra))
        end = start + rnd.randrange(1, 30 * 60) * 60_000 // 10 + HOUR // 4
        opened.append(common_pb2.GrantEvent(event_id=f"{gid}:e", type=ENDED, at=ts(end), reason="released", **common))
        if len(opened) > 20 or i == GRANTS - 1:
            rnd.shuffle(opened)
            stream += opened[: len(opened) // 2] if i < GRANTS - 1 else opened
            opened = opened[len(opened) // 2 :] if i < GRANTS - 1 else []
    return stream


def batches(stream: list[Any]) -> list[list[Any]]:
    return [stream[i : i + BATCH] for i in range(0, len(stream), BATCH)]


async def export_all(stub: Any) -> dict[str, bytes]:
    out = {}
    for fmt in FORMATS:
        request = accounting_pb2.ExportLedgerRequest(period="2025-11", format=fmt)
        out[fmt] = b"".join([c.data async for c in stub.ExportLedger(request, timeout=60)])
    return out


async def ledger_state(stub: Any) -> tuple[Any, ...]:
    usage = await stub.GetUsage(accounting_pb2.GetUsageRequest(), timeout=10)
    rows = tuple((r.institution, r.project, r.sku, r.device_seconds, r.grants, r.running_grants) for r in usage.rows)
    closed = await stub.ClosePeriod(accounting_pb2.ClosePeriodRequest(period="2025-11"), timeout=60)
    return rows, closed.SerializeToString(deterministic=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AccountingProcess:
    def __init__(self, redis_url: str, log: Path) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._env = {
            **os.environ,
            "SLICEBROKER_ACCOUNTING_LISTEN": self.address,
            "SLICEBROKER_ACCOUNTING_REDIS_URL": redis_url,
            "SLICEBROKER_ACCOUNTING_ALLOW_PLAINTEXT": "true",
        }
        self._log = log
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        with self._log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from slicebroker.accounting.main import main; main()"],
                env=self._env,
                stdout=log,
                stderr=log,
            )
        async with grpc.aio.insecure_channel(self.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for _ in range(600):
                assert self.process.poll() is None, self._log.read_text()[-3000:]
                try:
                    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.1)
        raise TimeoutError(f"accounting not serving; see {self._log}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no graceful stop, no flush
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


async def test_kill9_during_ingestion_loses_and_double_counts_nothing(
    tmp_path: Path, redis_url: str, start_service: Any
) -> None:
    stream = event_stream()
    redis = RedisServer(data_dir=tmp_path / "redis", fsync="always").start()
    accounting = AccountingProcess(redis.url, tmp_path / "accounting.log")
    rnd = random.Random(3)
    try:
        await accounting.start()
        async with grpc.aio.insecure_channel(accounting.address) as channel:
            stub = accounting_pb2_grpc.AccountingServiceStub(channel)
            await stub.PublishPriceBook(accounting_pb2.PublishPriceBookRequest(book=BOOK), timeout=10)
        todo = batches(stream)
        acked = 0
        kills = 0
        while acked < len(todo):
            async with grpc.aio.insecure_channel(accounting.address) as channel:
                stub = accounting_pb2_grpc.AccountingServiceStub(channel)
                # Kill mid-call: after a random few batches, with one in flight.
                kill_after = acked + rnd.randrange(3, 12) if kills < 3 else len(todo)
                try:
                    while acked < len(todo):
                        call = stub.IngestEvents(accounting_pb2.IngestEventsRequest(events=todo[acked]), timeout=30)
                        if acked == kill_after:
                            await asyncio.sleep(rnd.random() * 0.02)
                            accounting.kill()
                            kills += 1
                        await call
                        acked += 1
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED), exc
            if accounting.process is not None and accounting.process.poll() is not None:
                await accounting.start()
                # A relay restarting from its own cursor may re-send what was acknowledged, too.
                acked = max(0, acked - rnd.randrange(0, 3))
        assert kills == 3
        async with grpc.aio.insecure_channel(accounting.address) as channel:
            stub = accounting_pb2_grpc.AccountingServiceStub(channel)
            crashed_exports = await export_all(stub)
            crashed_state = await ledger_state(stub)
            ledger_entries = await _ledger_length(redis.url)
    finally:
        accounting.stop()
        redis.stop()

    reference = await start_service(build, AccountingSettings(redis_url=redis_url, listen="127.0.0.1:0"))
    async with grpc.aio.insecure_channel(reference.address) as channel:
        stub = accounting_pb2_grpc.AccountingServiceStub(channel)
        await stub.PublishPriceBook(accounting_pb2.PublishPriceBookRequest(book=BOOK), timeout=10)
        for batch in batches(stream):
            await stub.IngestEvents(accounting_pb2.IngestEventsRequest(events=batch), timeout=30)
        assert await export_all(stub) == crashed_exports
        assert await ledger_state(stub) == crashed_state
    # Every grant closed exactly once.
    assert ledger_entries == GRANTS
    assert all(r[5] == 0 for r in crashed_state[0])
    assert sum(r[4] for r in crashed_state[0]) == GRANTS


async def _ledger_length(url: str) -> int:
    client = aioredis.Redis.from_url(url)
    try:
        return int(await client.xlen(AccountingKeys("sb:accounting").ledger))
    finally:
        await client.aclose()
