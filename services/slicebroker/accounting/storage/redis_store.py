"""`RedisUsageStore`: accounting's `UsageStore` over Redis.

Ingestion is one `ingest.lua` call per batch (see its header for the atomicity argument). Durability
is the Redis deployment's: the service relies on AOF (`appendonly yes`) and does not WAIT, so with
`appendfsync always` an acknowledged batch is on disk, with `everysec` up to a second of acknowledged
batches can be lost in a power cut. Which policy the ledger gets is decided where Redis is deployed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc
import redis.asyncio as aioredis

from slicebroker.accounting.domain.columns import LineColumns
from slicebroker.accounting.domain.ledger import AdjustmentLine, LedgerLine
from slicebroker.accounting.domain.model import (
    EventType,
    GrantAttrs,
    GrantEvent,
    IngestResult,
    LedgerRecord,
    RowTotals,
    UsageFilter,
)
from slicebroker.accounting.domain.pricebook import PriceBook
from slicebroker.accounting.domain.statements import Statement
from slicebroker.accounting.domain.usage import grant_size, sized_ms
from slicebroker.accounting.storage import codec
from slicebroker.accounting.storage.keys import (
    ATTR_SEP,
    FIELD_SEP,
    METRICS,
    AccountingKeys,
    lex_range,
    row_name,
    split_row,
    usage_fields,
)
from slicebroker.core.errors import Conflict
from slicebroker.runtime.redis import Scripts

SCRIPTS = ("ingest", "publish_book", "commit_rerate")
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
        script_keys = [keys.applied, keys.usage, keys.rows, keys.ledger, keys.closed, keys.lines]
        args: list[str] = []
        granted = EventType.GRANTED
        for e in events:
            script_keys.append(keys.grant(e.grant_id))
            size = grant_size(e.sku, e.attrs.slice_kind, e.count)
            # size x at is computed here, exactly; in Lua it would be a double.
            extra = str(sized_ms(size, e.at_ms)) if e.type is granted else e.reason
            a = e.attrs
            attrs = ATTR_SEP.join((a.user, a.slice_kind, a.priority_class, a.isolation_class, a.node, a.site))
            args.append(
                f"{e.type.value}{SEP}{e.event_id}{SEP}{e.grant_id}{SEP}{e.institution}{SEP}{e.project}"
                f"{SEP}{e.sku}{SEP}{e.count}{SEP}{e.at_ms}{SEP}{extra}{SEP}{attrs}{SEP}{size}"
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

    async def lines(
        self, billing_period: str, institution: str = "", page: int = 5000
    ) -> AsyncIterator[list[LedgerLine]]:
        low, high = lex_range(billing_period, institution) if institution else lex_range(billing_period)
        client, key = self._client, self._keys.lines
        while True:
            members = cast("list[str]", await client.zrangebylex(key, low, high, start=0, num=page))
            if not members:
                return
            yield [_line(m) for m in members]
            if len(members) < page:
                return
            low = "(" + members[-1]

    async def line_columns(
        self, billing_period: str, institution: str = "", page: int = 20_000
    ) -> AsyncIterator[LineColumns]:
        low, high = lex_range(billing_period, institution) if institution else lex_range(billing_period)
        client, key = self._client, self._keys.lines
        while True:
            members = cast("list[str]", await client.zrangebylex(key, low, high, start=0, num=page))
            if not members:
                return
            yield line_columns_of(members)
            if len(members) < page:
                return
            low = "(" + members[-1]

    async def adjustments(self, billing_period: str, institution: str = "") -> list[AdjustmentLine]:
        low, high = lex_range(billing_period, institution) if institution else lex_range(billing_period)
        members = cast("list[str]", await self._client.zrangebylex(self._keys.adjustments, low, high))
        out = []
        for m in members:
            billing, inst, charge, tag, project, user, sku, kind, tier, lst, billed = m.split(FIELD_SEP)
            out.append(
                AdjustmentLine(billing, inst, charge, project, user, sku, kind, tier, int(lst), int(billed), tag)
            )
        return out

    async def publish_book(self, book: PriceBook, expected_version: int) -> int:
        version = int(
            await self._scripts("publish_book", [self._keys.books], [expected_version, codec.book_json(book)])
        )
        if version < 0:
            raise Conflict(f"the latest price book is not version {expected_version}: read it and publish again")
        return version

    async def price_book(self, version: int = 0) -> PriceBook | None:
        if not version:
            version = int(await self._client.hlen(self._keys.books))
            if not version:
                return None
        raw = cast("str | None", await self._client.hget(self._keys.books, str(version)))
        return codec.book_from_json(raw, version) if raw is not None else None

    async def close_period(self, period: str, book_version: int) -> int:
        # SADD first: ingestion scripts run one at a time, so once it returns no script bills a
        # line in this period any more. HSETNX keeps the first close's version on a repeat.
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.sadd(self._keys.closed, period)
            pipe.hsetnx(self._keys.rated_with, period, book_version)
            pipe.hget(self._keys.rated_with, period)
            _, _, version = await pipe.execute()
        return int(version)

    async def rated_with(self, period: str) -> int | None:
        raw = await self._client.hget(self._keys.rated_with, period)
        return int(raw) if raw is not None else None

    async def statements(self, period: str) -> list[Statement]:
        raw = cast("dict[str, str]", await self._client.hgetall(self._keys.statements(period)))
        return [codec.statement_from_json(raw[k]) for k in sorted(raw)]

    async def save_statements(self, period: str, statements: Sequence[Statement]) -> None:
        key = self._keys.statements(period)
        async with self._client.pipeline(transaction=True) as pipe:
            for st in statements:
                pipe.hsetnx(key, st.institution, codec.statement_json(st))
            await pipe.execute()

    async def commit_rerate(
        self, period: str, from_version: int, to_version: int, adjustments: Sequence[AdjustmentLine]
    ) -> str:
        k = self._keys
        members = [
            FIELD_SEP.join(
                (
                    a.institution,
                    a.charge_period,
                    a.rerate,
                    a.project,
                    a.user,
                    a.sku,
                    a.slice_kind,
                    a.tier,
                    str(a.list_cents),
                    str(a.billed_cents),
                )
            )
            for a in adjustments
        ]
        try:
            billing = await self._scripts(
                "commit_rerate", [k.rated_with, k.closed, k.adjustments], [period, from_version, to_version, *members]
            )
        except aioredis.ResponseError as exc:
            if "CONFLICT" in str(exc):
                raise Conflict(f"period {period} was re-rated meanwhile: re-rate again") from None
            raise
        return str(billing)

    async def burn_cursor(self) -> str:
        return cast("str | None", await self._client.get(self._keys.burn_cursor)) or ""

    async def set_burn_cursor(self, position: str) -> None:
        await self._client.set(self._keys.burn_cursor, position)


def _line(member: str) -> LedgerLine:
    billing, inst, charge, start, gid, project, sku, count, end, reason, attrs = member.split(FIELD_SEP)
    user, kind, priority, isolation, node, site = attrs.split(ATTR_SEP)
    return LedgerLine(
        billing,
        inst,
        charge,
        int(start),
        gid,
        project,
        sku,
        int(count),
        int(end),
        reason,
        GrantAttrs(user, kind, priority, isolation, node, site),
    )


def line_columns_of(members: list[str]) -> LineColumns:
    """`_line` for a page at once: the members split into their fields by pyarrow, in C."""
    parts = pc.split_pattern(pa.array(members, pa.string()), FIELD_SEP)

    def field(i: int) -> pa.Array:
        return pc.list_element(parts, i)

    def ints(i: int) -> Any:
        return pc.cast(field(i), pa.int64()).to_numpy()

    attrs = pc.split_pattern(field(10), ATTR_SEP)

    def attr(i: int) -> pa.Array:
        return pc.list_element(attrs, i)

    return LineColumns(
        billing_period=field(0),
        institution=field(1),
        charge_period=field(2),
        start_ms=ints(3),
        grant_id=field(4),
        project=field(5),
        sku=field(6),
        count=ints(7),
        end_ms=ints(8),
        reason=field(9),
        user=attr(0),
        slice_kind=attr(1),
        priority_class=attr(2),
        isolation_class=attr(3),
        node=attr(4),
        site=attr(5),
    )


def _matches(row: tuple[str, str, str], f: UsageFilter) -> bool:
    institution, project, sku = row
    return (
        (not f.institution or institution == f.institution)
        and (not f.project or project == f.project)
        and (not f.sku or sku == f.sku)
    )
