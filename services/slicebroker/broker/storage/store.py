"""The broker's grant store over Redis: grants, their indexes, the outbox and the change stream.

Each state change is one Lua script, so a grant and its event are written together or not at all
(the outbox pattern). Batches of activations are pipelined: one round trip, one script per grant.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from slicebroker.broker.domain.model import ChangeType, EndReason, Grant, GrantChange, GrantEvent, GrantState
from slicebroker.broker.storage.codec import (
    activation_fields,
    change_from_entry,
    event_from_json,
    event_json,
    grant_fields,
    grant_from_fields,
)
from slicebroker.broker.storage.keys import BrokerKeys
from slicebroker.runtime.redis import Scripts

SCRIPTS = (
    "begin",
    "activate",
    "abandon",
    "fail",
    "end",
    "renew",
    "enqueue",
    "dequeue",
    "cancel_queued",
    "notice",
    "promote",
)


def _flat(fields: dict[str, str]) -> list[str]:
    return [v for pair in fields.items() for v in pair]


class RedisGrantStore:
    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        *,
        change_cap: int = 100_000,
        watch_client: aioredis.Redis | None = None,
    ) -> None:
        self._r = client
        self._k = BrokerKeys(prefix)
        self.scripts = Scripts(client, "slicebroker.broker.storage.lua", SCRIPTS)
        # Every state change is appended to the change stream, trimmed (approximately) to this many.
        self._cap = change_cap
        # Blocking reads of the change stream hold a connection each: they get their own pool so
        # that watchers never starve the grant path of connections.
        self._watch = watch_client or client

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
                [self._k.grant(grant.id), self._k.pending, self._k.expiry, self._k.outbox, self._k.changes],
                [
                    grant.id,
                    grant.expires_ms,
                    event_json(event),
                    event.at_ms,
                    self._cap,
                    *_flat(activation_fields(grant)),
                ],
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

    async def fail(self, grant_id: str, now_ms: int, why: str = "") -> bool:
        grant = await self.get(grant_id)
        if grant is None:
            return False
        keys = [self._k.grant(grant_id), self._idem_key(grant), self._k.pending, self._k.changes]
        return bool(await self.scripts("fail", keys, [grant_id, now_ms, self._cap, why]))

    async def end(self, items: Sequence[tuple[Grant, GrantEvent, int]]) -> list[bool]:
        calls = [
            (
                "end",
                [
                    self._k.grant(grant.id),
                    self._k.expiry,
                    self._k.ending,
                    self._k.outbox,
                    self._k.preempting,
                    self._k.changes,
                ],
                [
                    grant.id,
                    event.at_ms,
                    event.reason,
                    event_json(event),
                    expired_by_ms,
                    # A preemption ends only a grant whose notice ran out (an owner's release wins).
                    event.at_ms if event.reason == EndReason.PREEMPTED else 0,
                    ChangeType.of_end(event.reason).value,
                    self._cap,
                ],
            )
            for grant, event, expired_by_ms in items
        ]
        return [bool(r) for r in await self.scripts.many(calls)]

    async def enqueue(self, grant: Grant, reason: str, *, announce: bool, now_ms: int) -> bool:
        keys = [self._k.grant(grant.id), self._k.pending, self._k.queue, self._k.scheduled, self._k.changes]
        args = [grant.id, grant.queue_score, reason, "1" if announce else "0", now_ms, self._cap, grant.start_after_ms]
        return bool(await self.scripts("enqueue", keys, args))

    async def dequeue(self, grant_id: str, now_ms: int) -> bool:
        keys = [self._k.grant(grant_id), self._k.pending, self._k.queue]
        return bool(await self.scripts("dequeue", keys, [grant_id, now_ms]))

    async def cancel_queued(self, grant_id: str, now_ms: int) -> bool:
        keys = [self._k.grant(grant_id), self._k.queue, self._k.scheduled, self._k.changes]
        return bool(await self.scripts("cancel_queued", keys, [grant_id, now_ms, self._cap]))

    # -- requests that start later ---------------------------------------------------------------
    async def scheduled_due(self, now_ms: int, limit: int) -> list[str]:
        ids: list[str] = await self._r.zrangebyscore(self._k.scheduled, "-inf", now_ms, start=0, num=limit)
        return ids

    async def promote(self, grant_id: str) -> bool:
        keys = [self._k.grant(grant_id), self._k.scheduled, self._k.queue]
        return bool(await self.scripts("promote", keys, [grant_id]))

    async def next_scheduled(self) -> int | None:
        first = await self._r.zrange(self._k.scheduled, 0, 0, withscores=True)
        return int(first[0][1]) if first else None

    # -- preemption --------------------------------------------------------------------------------
    async def notice(self, grant_id: str, now_ms: int, deadline_ms: int, reason: str) -> bool:
        keys = [self._k.grant(grant_id), self._k.preempting, self._k.changes]
        return bool(await self.scripts("notice", keys, [grant_id, now_ms, deadline_ms, reason, self._cap]))

    async def under_notice(self, limit: int) -> list[tuple[str, int]]:
        """Grants under a preemption notice, soonest deadline first: (id, deadline ms)."""
        pairs = await self._r.zrange(self._k.preempting, 0, limit - 1, withscores=True)
        return [(gid, int(score)) for gid, score in pairs]

    async def preemption_due(self, now_ms: int, limit: int) -> list[str]:
        ids: list[str] = await self._r.zrangebyscore(self._k.preempting, "-inf", now_ms, start=0, num=limit)
        return ids

    # -- the change stream -------------------------------------------------------------------------
    async def live_ids(self) -> list[str]:
        """Every grant that is pending, queued (now or later) or active."""
        pipe = self._r.pipeline(transaction=False)
        for index in (self._k.pending, self._k.queue, self._k.scheduled, self._k.expiry):
            pipe.zrange(index, 0, -1)
        ids: set[str] = set()
        for part in await pipe.execute():
            ids.update(part)
        return sorted(ids)

    async def change_bounds(self) -> tuple[str, str]:
        """(last id written, the id below which entries may have been trimmed away); "0-0" for
        either when there is none. Trimming (XADD MAXLEN) does not record what it removed, so
        once anything was trimmed, everything below the first entry left counts as trimmed."""
        try:
            info = await self._r.xinfo_stream(self._k.changes)
        except ResponseError:  # no stream yet
            return "0-0", "0-0"
        last = str(info["last-generated-id"])
        if int(info["entries-added"]) <= int(info["length"]) or not info.get("first-entry"):
            return last, "0-0"
        ms, seq = (int(part) for part in str(info["first-entry"][0]).split("-"))
        return last, f"{ms}-{seq - 1}" if seq else f"{ms - 1}-{2**64 - 1}"

    async def changes_after(self, after: str, block_ms: int, count: int) -> list[GrantChange]:
        """Changes after `after`, waiting up to `block_ms` for the first (0: do not wait)."""
        reply = await self._watch.xread({self._k.changes: after}, count=count, block=block_ms or None)
        if not reply:
            return []
        _, entries = reply[0]
        return [change_from_entry(entry_id, fields) for entry_id, fields in entries]

    async def changes_between(self, after: str, until: str, count: int | None = None) -> list[GrantChange]:
        """Changes after `after` up to and including `until` ("+": the end), oldest first."""
        entries = await self._r.xrange(self._k.changes, f"({after}", until, count=count)
        return [change_from_entry(entry_id, fields) for entry_id, fields in entries]

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
            "renew",
            [self._k.grant(grant_id), self._k.expiry, self._k.changes],
            [grant_id, now_ms, expires_ms, self._cap],
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
