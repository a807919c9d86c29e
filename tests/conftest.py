"""Fixtures shared by the whole suite: a real Redis server per test session (flushed between tests)
and in-process servers on loopback ports."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from slicebroker.runtime.redis_server import RedisServer
from slicebroker.runtime.server import RunningServer, ServiceSpec, start_server
from slicebroker.runtime.settings import ServiceSettings

ROOT = Path(__file__).resolve().parent.parent

# Servers started in this process by the tests serve plaintext, and say so explicitly; meshes of
# processes (slicebroker.mesh) run mTLS with their own CA.
for _service in ("INVENTORY", "QUOTA", "BROKER", "ACCOUNTING"):
    os.environ.setdefault(f"SLICEBROKER_{_service}_ALLOW_PLAINTEXT", "true")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    # fsync every second, like production; tests that need per-write fsync ask for it.
    server = RedisServer(data_dir=tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
async def redis_url(redis_server: RedisServer) -> AsyncIterator[str]:
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushall()
    await client.script_flush()
    await client.aclose()
    yield redis_server.url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


StartService = Callable[[Callable[[Any], Awaitable[ServiceSpec]], ServiceSettings], Awaitable[RunningServer]]


@pytest.fixture
async def start_service() -> AsyncIterator[StartService]:
    """Starts a service in this process on a free loopback port; stops it after the test."""
    started: list[RunningServer] = []

    async def start(build: Callable[[Any], Awaitable[ServiceSpec]], settings: ServiceSettings) -> RunningServer:
        running = await start_server(await build(settings), settings)
        started.append(running)
        await running.wait_ready()
        return running

    yield start
    for running in reversed(started):
        await running.stop(0.2)


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return ROOT / "examples"


def pytest_report_header() -> str:
    from slicebroker.runtime.redis_server import find_server_binary

    override = os.environ.get("SLICEBROKER_REDIS_SERVER", "")
    return f"redis server binary: {find_server_binary()}" + (
        f" (from SLICEBROKER_REDIS_SERVER={override})" if override else ""
    )
