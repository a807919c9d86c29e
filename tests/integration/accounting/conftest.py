"""Fixtures of accounting's storage tests: the Redis store over the session's real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from slicebroker.accounting.storage.keys import AccountingKeys
from slicebroker.accounting.storage.redis_store import LUA_PACKAGE, SCRIPTS, RedisUsageStore
from slicebroker.runtime.redis import Scripts, connect

PREFIX = "sb:accounting"


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    # The service's own client factory, so tests see the same decoding and pool the service uses.
    c = connect(redis_url, max_connections=256)
    yield c
    await c.aclose()


@pytest.fixture
def keys() -> AccountingKeys:
    return AccountingKeys(PREFIX)


@pytest.fixture
async def store(client: aioredis.Redis, keys: AccountingKeys) -> RedisUsageStore:
    scripts = Scripts(client, LUA_PACKAGE, SCRIPTS)
    await scripts.load()
    return RedisUsageStore(client, scripts, keys)
