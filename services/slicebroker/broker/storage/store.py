"""The broker's grant store over Redis: grants, their indexes, and the outbox stream.

Each state change is one Lua script, so a grant and its event are written together or not at all
(the outbox pattern). Batches of activations are pipelined: one round trip, one script per grant.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from slicebroker.broker.domain.model import Grant, GrantEvent, GrantState
from slicebroker.broker.storage.codec import (
    activation_fields,
    event_from_json,
    event_json,
    grant_fields,
    grant_from_fields,
)
from slicebroker.broker.storage.keys import BrokerKeys
from slicebroker.runtime.redis import Scripts

SCRIPTS = ("begin", "activate", "abandon", "fail", "end", "renew", "enqueue", "dequeue", "cancel_queued")


def _flat(fields: dict[str, str]) -> list[str]:
    return [v for pair in fields.items() for v in pair]


class RedisGrantStore:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._r = client
        self._k = BrokerKeys(prefix)
        self.scripts = Scripts(client, "slicebroker.broker.storage.lua", SCRIPTS)

    def _idem_key(self, grant: Grant) -> str:
        # Lua needs a key in KEYS either way; without an idempotency key a never-written one is passed.
        key = grant.idempotency_key or f"-{grant.id}"
        return self._k.idempotency(grant.project, key)

    async def begin(self, grants: Sequence[Grant]) -> list[str | None]:
        calls = [
            (
                "begin",
                [
                    self._k.grant(grant.id),
                    self._idem_key(grant),
                    self._k.grants,
                    self._k.project_grants(grant.project),
                    self._k.pending,
                ],
                [grant.id, "1" if grant.idempotency_key else "0", grant.created_ms, *_flat(grant_fields(grant))],
            )
            for grant in grants
        ]
        return [existing or None for existing in await self.scripts.many(calls)]

    async def activate(self, grants: Sequence[tuple[Grant, GrantEvent]]) -> list[bool]:
        calls = [
            (
                "activate",
                [self._k.grant(grant.id), self._k.pending, self._k.expiry, self._k.outbox],
                [grant.id, grant.expires_ms, event_json(event), *_flat(activation_fields(grant))],
            )
            for grant, event in grants
        ]
        return [bool(r) for r in await self.scripts.many(calls)]

    async def abandon(self, grant: Grant) -> None:
        await self.scripts(
            "abandon",
            [
                self._k.grant(grant.id),
                self._idem_key(grant),
                self._k.grants,
                self._k.project_grants(grant.project),
                self._k.pending,
            ],
            [grant.id],
        )

    async def fail(self, grant_id: str, now_ms: int) -> bool:
        grant = await self.get(grant_id)
        if grant is None:
            return False
        return bool(
            await self.scripts(
                "fail", [self._k.grant(grant_id), self._idem_key(grant), self._k.pending], [grant_id, now_ms]
            )
        )

    async def end(self, items: Sequence[tuple[Grant, GrantEvent, int]]) -> list[bool]:
        calls = [
            (
                "end",
                [self._k.grant(grant.id), self._k.expiry, self._k.ending, self._k.outbox],
                [grant.id, event.at_ms, event.reason, event_json(event), expired_by_ms],
            )
            for grant, event, expired_by_ms in items
        ]
        return [bool(r) for r in await self.scripts.many(calls)]

    async def enqueue(self, grant: Grant, reason: str) -> bool:
        keys = [self._k.grant(grant.id), self._k.pending, self._k.queue]
        return bool(await self.scripts("enqueue", keys, [grant.id, grant.queue_score, reason]))

    async def dequeue(self, grant_id: str, now_ms: int) -> bool:
        keys = [self._k.grant(grant_id), self._k.pending, self._k.queue]
        return bool(await self.scripts("dequeue", keys, [grant_id, now_ms]))

    async def cancel_queued(self, grant_id: str, now_ms: int) -> bool:
        return bool(await self.scripts("cancel_queued", [self._k.grant(grant_id), self._k.queue], [grant_id, now_ms]))

    async def queued(self, limit: int) -> list[str]:
        ids: list[str] = await self._r.zrange(self._k.queue, 0, limit - 1)
        return ids

    async def note_waiting(self, grant_id: str, reason: str) -> None:
        await self._r.hset(self._k.grant(grant_id), "waiting_reason", reason)

    async def queue_rank(self, grant_id: str) -> int | None:
        rank: int | None = await self._r.zrank(self._k.queue, grant_id)
        return rank

    async def expiring(self, limit: int) -> list[tuple[str, int]]:
        """Active grants, soonest lease end first: (id, lease end ms)."""
        pairs = await self._r.zrange(self._k.expiry, 0, limit - 1, withscores=True)
        return [(gid, int(score)) for gid, score in pairs]

    async def cleaned(self, grant_ids: Sequence[str]) -> None:
        if grant_ids:
            await self._r.zrem(self._k.ending, *grant_ids)

    async def renew(self, grant_id: str, now_ms: int, expires_ms: int) -> str:
        state: str = await self.scripts(
            "renew", [self._k.grant(grant_id), self._k.expiry], [grant_id, now_ms, expires_ms]
        )
        return state

    async def get(self, grant_id: str) -> Grant | None:
        fields = await self._r.hgetall(self._k.grant(grant_id))
        return grant_from_fields(fields) if fields else None

    async def get_many(self, grant_ids: Sequence[str]) -> list[Grant | None]:
        if not grant_ids:
            return []
        pipe = self._r.pipeline(transaction=False)
        for grant_id in grant_ids:
            pipe.hgetall(self._k.grant(grant_id))
        return [grant_from_fields(f) if f else None for f in await pipe.execute()]

    async def page(self, project: str, state: GrantState | None, page_size: int, after: str) -> tuple[list[Grant], str]:
        """Newest first. Filtering by state reads on until the page is full or the index ends."""
        index = self._k.project_grants(project) if project else self._k.grants
        out: list[Grant] = []
        cursor = after
        while True:
            upper = f"({cursor}" if cursor else "+"
            ids: list[str] = await self._r.zrevrangebylex(index, upper, "-", start=0, num=page_size)
            for grant in await self.get_many(ids):
                if grant is not None and (state is None or grant.state is state):
                    out.append(grant)
                    if len(out) == page_size:
                        return out, grant.id
            if len(ids) < page_size:
                return out, ""
            cursor = ids[-1]

    async def expired(self, now_ms: int, limit: int) -> list[str]:
        ids: list[str] = await self._r.zrangebyscore(self._k.expiry, "-inf", now_ms, start=0, num=limit)
        return ids

    async def ending(self, before_ms: int, limit: int) -> list[str]:
        ids: list[str] = await self._r.zrangebyscore(self._k.ending, "-inf", before_ms, start=0, num=limit)
        return ids

    async def pending_before(self, before_ms: int, limit: int) -> list[str]:
        ids: list[str] = await self._r.zrangebyscore(self._k.pending, "-inf", before_ms, start=0, num=limit)
        return ids

    async def outbox_read(self, limit: int) -> list[tuple[str, GrantEvent]]:
        entries = await self._r.xrange(self._k.outbox, "-", "+", count=limit)
        return [(entry_id, event_from_json(fields["e"])) for entry_id, fields in entries]

    async def outbox_ack(self, entry_ids: Sequence[str]) -> None:
        if entry_ids:
            await self._r.xdel(self._k.outbox, *entry_ids)
