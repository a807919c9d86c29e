"""Fixtures of the inventory storage tests: the Redis store (scripts loaded) and the domain
service over it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from slicebroker.inventory.domain.service import InventoryService
from slicebroker.inventory.storage.store import RedisInventoryStore
from slicebroker.runtime.redis import connect

from .support import PREFIX


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    # The service's own client: its pool makes callers wait rather than fail, and the concurrency
    # tests run 200+ operations at once over its 64 connections.
    c = connect(redis_url)
    yield c
    await c.aclose()


@pytest.fixture
async def store(client: aioredis.Redis) -> RedisInventoryStore:
    s = RedisInventoryStore(client, PREFIX)
    await s.load_scripts()
    return s


@pytest.fixture
def service(store: RedisInventoryStore) -> InventoryService:
    return InventoryService(store)
