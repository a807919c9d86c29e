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
from redis.exceptions import NoScriptError


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

    async def many(self, calls: Sequence[tuple[str, Sequence[str], Sequence[Any]]]) -> list[Any]:
        """Runs several script calls in one round trip, answering each in order.

        EVALSHA only: redis-py's pipeline would first ask SCRIPT EXISTS on every execution, a
        second round trip. If Redis lost its script cache, the calls refused with NOSCRIPT did
        not run, so they alone are sent again once the scripts are reloaded.
        """
        if not calls:
            return []
        results = await self._evalsha_all(calls)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:
            await self.load()
            for i, result in zip(missing, await self._evalsha_all([calls[i] for i in missing]), strict=True):
                results[i] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    async def _evalsha_all(self, calls: Sequence[tuple[str, Sequence[str], Sequence[Any]]]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for name, keys, args in calls:
            pipe.evalsha(self._scripts[name].sha, len(keys), *keys, *args)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        return results
