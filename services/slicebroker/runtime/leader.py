"""A lease-based leader lock in Redis, for work that must run once per mesh (relay, reaper, reconciler).

The holder renews before the lease lapses; a crashed holder's lease simply expires and another
replica takes over. Renewal and release compare the owner token so a late replica cannot steal or
drop a lock it lost.
"""

from __future__ import annotations

import secrets

import redis.asyncio as aioredis

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class LeaderLock:
    def __init__(self, client: aioredis.Redis, key: str, ttl_ms: int = 5000) -> None:
        self._client = client
        self._key = key
        self._ttl_ms = ttl_ms
        self._token = secrets.token_hex(8)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self.held = False

    async def acquire_or_renew(self) -> bool:
        """True while this process is the leader. Call at least every ttl/3."""
        if self.held and await self._renew(keys=[self._key], args=[self._token, self._ttl_ms]):
            return True
        self.held = bool(await self._client.set(self._key, self._token, nx=True, px=self._ttl_ms))
        return self.held

    async def release(self) -> None:
        if self.held:
            await self._release(keys=[self._key], args=[self._token])
            self.held = False
