"""`RedisQuotaStore`: the `QuotaStore` port over Redis.

Every write is one Lua script call (atomic in Redis); batch verbs send the whole batch in that one
call, so the cost per item is a few Redis commands and no extra round trip. Reads that gather
several keys use a MULTI pipeline: one round trip and a consistent snapshot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import redis.asyncio as aioredis

from slicebroker.quota.domain.model import (
    HeldReservation,
    Institution,
    InstitutionSpec,
    Project,
    ProjectSpec,
    ReservationRequest,
)
from slicebroker.quota.domain.store import CommitStatus, ReserveOutcome, ReserveStatus
from slicebroker.quota.domain.validation import KNOWN_SKUS, MAX_BATCH
from slicebroker.quota.storage.coalesce import Coalescer
from slicebroker.quota.storage.keys import (
    CAP_FIELD_PREFIX,
    QuotaKeys,
    cap_field,
    in_use_field,
    split_in_use_field,
)
from slicebroker.quota.storage.records import decode_reservation
from slicebroker.runtime.redis import Scripts

SCRIPTS = ("reserve", "commit", "cancel", "sweep", "upsert_institution", "upsert_project")
# Lapsed marks outlive the longest TTL, so a Commit that comes as late as a reservation could ever
# have lived still learns that it expired rather than that it never existed.
LAPSED_RETENTION_MS = 3_600_000

_CAP_FIELDS = [cap_field(sku) for sku in KNOWN_SKUS]

T = TypeVar("T")
R = TypeVar("R")
_Batch = Callable[[Sequence[T], int], Awaitable[list[R]]]


class RedisQuotaStore:
    """`calls_in_flight` bounds the concurrent Lua calls of each batch verb (reserve, commit,
    cancel); concurrent callers beyond it are merged into the next call (see `coalesce`). 0 sends
    every call on its own."""

    def __init__(self, client: aioredis.Redis, key_prefix: str, *, calls_in_flight: int = 4) -> None:
        self._client = client
        self._keys = QuotaKeys(key_prefix)
        self.scripts = Scripts(client, "slicebroker.quota.storage.lua", SCRIPTS)
        self._reserve_calls: _Batch[ReservationRequest, ReserveOutcome] = _merged(self._reserve, calls_in_flight)
        self._commit_calls: _Batch[str, CommitStatus] = _merged(self._commit, calls_in_flight)
        self._cancel_calls: _Batch[str, int] = _merged(self._cancel, calls_in_flight)
        self._share_sweeps = calls_in_flight > 0
        self._sweeping: asyncio.Future[list[str]] | None = None

    # -- tenants ---------------------------------------------------------------------------------

    async def upsert_institution(self, spec: InstitutionSpec) -> Institution:
        generation = await self.scripts(
            "upsert_institution",
            [self._keys.institution(spec.id), self._keys.institutions],
            [spec.id, spec.display_name],
        )
        return Institution(id=spec.id, display_name=spec.display_name, generation=int(generation))

    async def list_institutions(self) -> list[Institution]:
        ids = await self._members(self._keys.institutions)
        rows = await self._read_all([("hgetall", self._keys.institution(i)) for i in ids])
        return [
            Institution(id=i, display_name=row.get("display_name", ""), generation=int(row["generation"]))
            for i, row in zip(ids, rows, strict=True)
            if row
        ]

    async def institution_exists(self, institution_id: str) -> bool:
        return bool(await self._client.exists(self._keys.institution(institution_id)))

    async def upsert_project(self, spec: ProjectSpec) -> Project | None:
        caps: list[str] = []
        for sku, field in zip(KNOWN_SKUS, _CAP_FIELDS, strict=True):
            cap = spec.device_caps.get(sku)
            caps += [field, "" if cap is None else str(cap)]
        generation = int(
            await self.scripts(
                "upsert_project",
                [self._keys.project(spec.id), self._keys.projects, self._keys.institution(spec.institution)],
                [spec.id, spec.institution, spec.display_name, *caps],
            )
        )
        if generation < 0:
            return None
        (project,) = await self.get_projects([spec.id])
        return project

    async def get_projects(self, project_ids: Sequence[str]) -> list[Project | None]:
        if not project_ids:
            return []
        commands: list[tuple[str, ...]] = []
        for pid in project_ids:
            commands.append(("hgetall", self._keys.project(pid)))
            commands.append(("hmget", self._keys.in_use, *(in_use_field(pid, sku) for sku in KNOWN_SKUS)))
        rows = await self._read_all(commands)
        return [
            _project(pid, rows[2 * n], rows[2 * n + 1]) if rows[2 * n] else None for n, pid in enumerate(project_ids)
        ]

    async def list_projects(self) -> list[Project]:
        ids = await self._members(self._keys.projects)
        return [p for p in await self.get_projects(ids) if p is not None]

    # -- reservations ----------------------------------------------------------------------------

    async def reserve(self, items: Sequence[ReservationRequest], now_ms: int) -> list[ReserveOutcome]:
        return await self._reserve_calls(items, now_ms)

    async def commit(self, grant_ids: Sequence[str], now_ms: int) -> list[CommitStatus]:
        return await self._commit_calls(grant_ids, now_ms)

    async def cancel(self, grant_ids: Sequence[str], now_ms: int) -> list[int]:
        return await self._cancel_calls(grant_ids, now_ms)

    async def _reserve(self, items: Sequence[ReservationRequest], now_ms: int) -> list[ReserveOutcome]:
        keys = self._keys.ledger
        args: list[Any] = [now_ms]
        for item in items:
            keys.append(self._keys.project(item.project))
            args += [
                item.grant_id,
                in_use_field(item.project, item.sku),
                cap_field(item.sku),
                item.count,
                item.ttl_seconds * 1000,
            ]
        rows: list[list[Any]] = await self.scripts("reserve", keys, args)
        return [_reserve_outcome(row) for row in rows]

    async def _commit(self, grant_ids: Sequence[str], now_ms: int) -> list[CommitStatus]:
        rows: list[str] = await self.scripts("commit", self._keys.ledger, [now_ms, *grant_ids])
        return [CommitStatus(row) for row in rows]

    async def _cancel(self, grant_ids: Sequence[str], now_ms: int) -> list[int]:
        rows: list[int] = await self.scripts("cancel", self._keys.ledger, [now_ms, *grant_ids])
        return rows

    async def sweep(self, now_ms: int, limit: int) -> list[str]:
        """With merging on, callers arriving while a sweep runs share its result instead of each
        starting one: a burst of refused reservations then costs one sweep, not one each."""
        if not self._share_sweeps:
            return await self._sweep(now_ms, limit)
        if self._sweeping is None or self._sweeping.done():
            self._sweeping = asyncio.ensure_future(self._sweep(now_ms, limit))
            # Every waiter may have given up; the outcome is still retrieved, so a failure is not
            # reported as "never retrieved" (the background loop logs sweep failures it sees).
            self._sweeping.add_done_callback(lambda f: f.cancelled() or f.exception())
        # Shielded: a caller that gives up does not cancel the sweep others are waiting for.
        return await asyncio.shield(self._sweeping)

    async def _sweep(self, now_ms: int, limit: int) -> list[str]:
        released: list[str] = await self.scripts("sweep", self._keys.ledger, [now_ms, limit, LAPSED_RETENTION_MS])
        return released

    async def list_reservations(self) -> list[HeldReservation]:
        records = await self._hash(self._keys.reservations)
        held = [decode_reservation(grant_id, record) for grant_id, record in records.items()]
        # Grant ids sort by creation time; a stable order makes reconciler runs comparable.
        held.sort(key=lambda r: r.grant_id)
        return held

    async def in_use(self, project: str, sku: str) -> int:
        """Devices of `sku` the project holds now (for tests and diagnostics)."""
        value = await self._client.hget(self._keys.in_use, in_use_field(project, sku))
        return int(value or 0)

    async def in_use_all(self) -> dict[tuple[str, str], int]:
        """Every non-zero in-use counter, by (project, SKU)."""
        raw = await self._hash(self._keys.in_use)
        return {split_in_use_field(field): int(value) for field, value in raw.items()}

    # The client decodes replies (decode_responses=True), so members and fields are str.
    async def _members(self, key: str) -> list[str]:
        members: Any = await self._client.zrange(key, 0, -1)
        return list(members)

    async def _hash(self, key: str) -> dict[str, str]:
        fields: Any = await self._client.hgetall(key)
        return dict(fields)

    async def _read_all(self, commands: Sequence[tuple[str, ...]]) -> list[Any]:
        if not commands:
            return []
        async with self._client.pipeline(transaction=True) as pipe:
            for name, *args in commands:
                getattr(pipe, name)(*args)
            rows: list[Any] = await pipe.execute()
        return rows


def _merged(run: _Batch[T, R], calls_in_flight: int) -> _Batch[T, R]:
    if calls_in_flight <= 0:
        return run
    return Coalescer(run, max_batch=MAX_BATCH, max_in_flight=calls_in_flight)


def _project(project_id: str, row: dict[str, str], in_use: list[str | None]) -> Project:
    caps = {
        field.removeprefix(CAP_FIELD_PREFIX): int(value)
        for field, value in row.items()
        if field.startswith(CAP_FIELD_PREFIX)
    }
    used = {sku: int(n) for sku, n in zip(KNOWN_SKUS, in_use, strict=True) if n and int(n) > 0}
    return Project(
        id=project_id,
        institution=row["institution"],
        display_name=row.get("display_name", ""),
        device_caps=caps,
        devices_in_use=used,
        generation=int(row["generation"]),
    )


def _reserve_outcome(row: list[Any]) -> ReserveOutcome:
    status = ReserveStatus(row[0])
    if status is ReserveStatus.OK:
        return ReserveOutcome(status, institution=row[1])
    if status is ReserveStatus.QUOTA_EXCEEDED:
        return ReserveOutcome(status, cap=int(row[1]), in_use=int(row[2]))
    if status is ReserveStatus.MISMATCH:
        project, sku = split_in_use_field(row[1])
        return ReserveOutcome(status, held_project=project, held_sku=sku, held_count=int(row[2]))
    return ReserveOutcome(status)
