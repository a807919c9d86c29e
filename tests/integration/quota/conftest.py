"""Fixtures of the quota storage tests: the Redis store (scripts loaded) and a service over it,
with one institution and a project "p" capped at 8 H100 and 64 RNGD.

`store` sends every call as its own Lua call over a pool large enough for the concurrency tests,
so they exercise the scripts' atomicity across connections; `merged_store` merges concurrent
calls the way the service does in production."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from slicebroker.quota.domain.model import InstitutionSpec, ProjectSpec
from slicebroker.quota.domain.service import QuotaService
from slicebroker.quota.storage.redis_store import RedisQuotaStore
from slicebroker.runtime.redis import connect

from .support import H100, PREFIX


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    c = connect(redis_url, max_connections=512)
    yield c
    await c.aclose()


async def _seeded(store: RedisQuotaStore) -> RedisQuotaStore:
    await store.scripts.load()
    service = QuotaService(store)
    await service.upsert_institution(InstitutionSpec("snu", "Seoul National University"))
    await service.upsert_project(ProjectSpec("p", "snu", "Project P", {H100: 8, "RNGD": 64}))
    return store


@pytest.fixture
async def store(client: aioredis.Redis) -> RedisQuotaStore:
    return await _seeded(RedisQuotaStore(client, PREFIX, calls_in_flight=0))


@pytest.fixture
async def merged_store(redis_url: str) -> AsyncIterator[RedisQuotaStore]:
    # The production pool size: merging must keep a burst of callers within it.
    c = connect(redis_url)
    yield await _seeded(RedisQuotaStore(c, PREFIX, calls_in_flight=2))
    await c.aclose()


@pytest.fixture
def service(store: RedisQuotaStore) -> QuotaService:
    return QuotaService(store, sweep_batch=50)
