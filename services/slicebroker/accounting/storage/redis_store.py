"""`RedisUsageStore`: accounting's `UsageStore` over Redis.

Ingestion is one `ingest.lua` call per batch (see its header for the atomicity argument). Durability
is the Redis deployment's: the service relies on AOF (`appendonly yes`) and does not WAIT, so with
`appendfsync always` an acknowledged batch is on disk, with `everysec` up to a second of acknowledged
batches can be lost in a power cut. Which policy the ledger gets is decided where Redis is deployed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import redis.asyncio as aioredis

from slicebroker.accounting.domain.model import (
    EventType,
    GrantEvent,
    IngestResult,
    LedgerRecord,
    RowTotals,
    UsageFilter,
)
from slicebroker.accounting.storage.keys import METRICS, AccountingKeys, row_name, split_row, usage_fields
from slicebroker.runtime.redis import Scripts

SCRIPTS = ("ingest",)
# Joins one event's fields into the single script argument ingest.lua splits; validation keeps
# control characters out of every field.
SEP = "\x1f"
LUA_PACKAGE = "slicebroker.accounting.storage.lua"


class RedisUsageStore:
    def __init__(self, client: aioredis.Redis, scripts: Scripts, keys: AccountingKeys) -> None:
        self._client = client
        self._scripts = scripts
        self._keys = keys

    async def ingest(self, events: Sequence[GrantEvent]) -> IngestResult:
        keys = self._keys
        script_keys = [keys.applied, keys.usage, keys.rows, keys.ledger]
        args: list[str] = []
        granted = EventType.GRANTED
        for e in events:
            script_keys.append(keys.grant(e.grant_id))
            # count * at is computed here, exactly; in Lua it would be a double.
            extra = str(e.count * e.at_ms) if e.type is granted else e.reason
            args.append(
                f"{e.type.value}{SEP}{e.event_id}{SEP}{e.grant_id}{SEP}{e.institution}{SEP}{e.project}"
                f"{SEP}{e.sku}{SEP}{e.count}{SEP}{e.at_ms}{SEP}{extra}"
            )
        applied, duplicates = await self._scripts("ingest", script_keys, args)
        return IngestResult(applied=int(applied), duplicates=int(duplicates))

    async def totals(self, usage_filter: UsageFilter) -> list[RowTotals]:
        f = usage_filter
        if f.institution and f.project and f.sku:
            rows = [row_name(f.institution, f.project, f.sku)]
        else:
            members = cast("set[str]", await self._client.smembers(self._keys.rows))
            rows = [row for row in members if _matches(split_row(row), f)]
        if not rows:
            return []
        fields = [field for row in rows for field in usage_fields(row)]
        # One HMGET reads every row's totals at one instant, so rows are consistent with each other.
        values = cast("list[str | None]", await self._client.hmget(self._keys.usage, fields))
        width = len(METRICS)
        out: list[RowTotals] = []
        for i, row in enumerate(rows):
            chunk = values[i * width : (i + 1) * width]
            if all(v is None for v in chunk):
                continue  # an exact-match filter naming a row that never had usage
            dm, n, rn, rc, rs = (int(v) if v is not None else 0 for v in chunk)
            institution, project, sku = split_row(row)
            out.append(RowTotals(institution, project, sku, dm, n, rn, rc, rs))
        return out

    async def ledger(self, after: str = "", limit: int = 1000) -> list[LedgerRecord]:
        start = f"({after}" if after else "-"
        entries = cast(
            "list[tuple[str, dict[str, str]]]",
            await self._client.xrange(self._keys.ledger, min=start, max="+", count=limit),
        )
        return [
            LedgerRecord(
                position=position,
                grant_id=f["grant"],
                institution=f["institution"],
                project=f["project"],
                sku=f["sku"],
                count=int(f["count"]),
                start_ms=int(f["start"]),
                end_ms=int(f["end"]),
                device_ms=int(f["device_ms"]),
                end_reason=f["reason"],
            )
            for position, f in entries
        ]


def _matches(row: tuple[str, str, str], f: UsageFilter) -> bool:
    institution, project, sku = row
    return (
        (not f.institution or institution == f.institution)
        and (not f.project or project == f.project)
        and (not f.sku or sku == f.sku)
    )
