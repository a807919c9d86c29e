"""Redis access: one client per service and Lua scripts loaded once from the service's package.

Scripts live as `.lua` files beside the storage adapter. `register_script` re-sends a script if
Redis lost its cache (restart, SCRIPT FLUSH), so callers never see NOSCRIPT.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript


def connect(url: str, *, max_connections: int = 64, wait_s: float = 10.0) -> aioredis.Redis:
    """A client whose pool makes callers wait for a connection instead of failing when all are busy:
    bursts of concurrent requests queue here rather than erroring."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, decode_responses=True, max_connections=max_connections, timeout=wait_s
    )
    return aioredis.Redis(connection_pool=pool)


class Scripts:
    """The Lua scripts of one package directory, by file stem."""

    def __init__(self, client: aioredis.Redis, package: str, names: Sequence[str]) -> None:
        self._client = client
        self._scripts: dict[str, AsyncScript] = {}
        self._sources: dict[str, str] = {}
        for name in names:
            source = resources.files(package).joinpath(f"{name}.lua").read_text(encoding="utf-8")
            self._sources[name] = source
            self._scripts[name] = client.register_script(source)

    async def load(self) -> None:
        """Sends every script to Redis now, so the first real call does not pay for it."""
        for name, source in self._sources.items():
            self._scripts[name].sha = await self._client.script_load(source)

    async def __call__(self, name: str, keys: Sequence[str], args: Sequence[Any], client: Any = None) -> Any:
        return await self._scripts[name](keys=list(keys), args=list(args), client=client)

    async def on(self, pipe: Any, name: str, keys: Sequence[str], args: Sequence[Any]) -> None:
        """Queues a script call on a pipeline (EVALSHA; the pipeline reloads it on NOSCRIPT)."""
        await self._scripts[name](keys=list(keys), args=list(args), client=pipe)
