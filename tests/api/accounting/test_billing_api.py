"""Billing through the real server: price book, statements, re-rating, ledger queries and exports
(CSV, JSON Lines, FOCUS CSV and Parquet) driven through the generated stub."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pyarrow.parquet as pq
import pytest
import redis.asyncio as aioredis
from google.protobuf.timestamp_pb2 import Timestamp

from slicebroker.accounting.exports.encoders import FOCUS_COLUMNS
from slicebroker.accounting.main import build
from slicebroker.accounting.settings import AccountingSettings
from slicebroker.core.errors import InvalidArgument, PermissionDenied
from slicebroker.core.ids import new_grant_id
from slicebroker.runtime.status import from_rpc_error
from slicebroker.v1 import accounting_pb2, accounting_pb2_grpc, common_pb2

H100, RNGD = "H100-SXM-80GB", "RNGD"
GRANTED, ENDED = common_pb2.GRANT_EVENT_TYPE_GRANTED, common_pb2.GRANT_EVENT_TYPE_ENDED
HOUR = 3_600_000


def ms(y: int, m: int, d: int, h: int = 0) -> int:
    return int(datetime(y, m, d, h, tzinfo=UTC).timestamp() * 1000)


def ts(t: int) -> Timestamp:
    return Timestamp(seconds=t // 1000, nanos=(t % 1000) * 1_000_000)


def entry(sku: str, tier: str, price: str, start: str, until: str = "", kind: str = "") -> Any:
    return accounting_pb2.PriceEntry(
        sku=sku, slice_kind=kind, tier=tier, price_per_hour=price, valid_from=start, valid_until=until
    )


BOOK = accounting_pb2.PriceBook(
    institution_tiers={"samsung": "industry"},
    preemptible_discount_bp=5000,
    entries=[
        entry(H100, "academic", "3000", "2025-01-01", "2025-11-15"),
        entry(H100, "academic", "2500", "2025-11-15"),
        entry(H100, "industry", "9000", "2025-01-01"),
        entry(H100, "academic", "500", "2025-01-01", kind="mig-1g.10gb"),
        entry(RNGD, "academic", "1000", "2025-01-01"),
    ],
)


def grant_events(gid: str, start: int, end: int, inst: str = "kaist", count: int = 1, **attrs: Any) -> list[Any]:
    common = {"grant_id": gid, "institution": inst, "project": f"{inst}-llm", "sku": H100, "count": count}
    return [
        common_pb2.GrantEvent(event_id=f"{gid}:g", type=GRANTED, at=ts(start), **common, **attrs),
        common_pb2.GrantEvent(event_id=f"{gid}:e", type=ENDED, at=ts(end), reason="released", **common),
    ]


def month_of_use(seed: int = 7) -> list[Any]:
    """A deterministic November: grants of three institutions, some across midnight and month ends."""
    rnd = random.Random(seed)
    events: list[Any] = []
    for i in range(60):
        start = ms(2025, 10, 30) + rnd.randrange(0, 33 * 24) * HOUR
        inst = rnd.choice(["kaist", "snu", "samsung"])
        attrs: dict[str, Any] = {"user": f"u{i % 5}"}
        if i % 7 == 0:
            attrs["priority_class"] = "preemptible"
        if i % 11 == 0:
            attrs["slice_kind"] = "mig-1g.10gb"
            attrs["slices"] = [common_pb2.Slice(node_id="h100-r001-n01", device_id="h100-r001-n01/gpu0")]
        events += grant_events(f"gr_{i:026d}", start, start + rnd.randrange(1, 40) * HOUR, inst, 1 + i % 4, **attrs)
    return events


@pytest.fixture
async def stub(redis_url: str, start_service: Any) -> AsyncIterator[Any]:
    running = await start_service(build, AccountingSettings(redis_url=redis_url, listen="127.0.0.1:0"))
    async with grpc.aio.insecure_channel(running.address) as channel:
        yield accounting_pb2_grpc.AccountingServiceStub(channel)


async def ingest(stub: Any, events: list[Any]) -> None:
    for i in range(0, len(events), 50):
        await stub.IngestEvents(accounting_pb2.IngestEventsRequest(events=events[i : i + 50]), timeout=10)


async def export(stub: Any, fmt: str, period: str = "2025-11", institution: str = "") -> bytes:
    request = accounting_pb2.ExportLedgerRequest(period=period, format=fmt, institution=institution)
    return b"".join([c.data async for c in stub.ExportLedger(request, timeout=30)])


async def refused(call: Any) -> Any:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return from_rpc_error(info.value)


async def test_price_book_versions_and_refusals_name_the_field(stub: Any) -> None:
    first = await stub.PublishPriceBook(accounting_pb2.PublishPriceBookRequest(book=BOOK), timeout=5)
    assert (first.version, first.currency) == (1, "KRW")
    overlapping = accounting_pb2.PriceBook(
        entries=[entry(H100, "academic", "1", "2025-01-01", "2025-03-01"), entry(H100, "academic", "2", "2025-02-01")]
    )
    negative = accounting_pb2.PriceBook(entries=[entry(H100, "academic", "-1", "2025-01-01")])
    for book, field in [
        (overlapping, "book.entries[1].valid_from"),
        (negative, "book.entries[0].price_per_hour"),
    ]:
        err = await refused(
            stub.PublishPriceBook(accounting_pb2.PublishPriceBookRequest(book=book, expected_version=1))
        )
        assert isinstance(err, InvalidArgument) and err.field == field
    stale = await refused(stub.PublishPriceBook(accounting_pb2.PublishPriceBookRequest(book=BOOK, expected_version=0)))
    assert stale.kind.value == "conflict"
    latest = await stub.GetPriceBook(accounting_pb2.GetPriceBookRequest(), timeout=5)
    assert latest.version == 1 and len(latest.entries) == 5


async def test_bad_period_is_refused_with_the_field_named(stub: Any) -> None:
    err = await refused(stub.ClosePeriod(accounting_pb2.ClosePeriodRequest(period="2026-13")))
    assert isinstance(err, InvalidArgument) and err.field == "period"
    err = await refused(export(stub, "focus-csv", period="Nov 2026"))
    assert isinstance(err, InvalidArgument) and err.field == "period"
    err = await refused(export(stub, "xml"))
    assert isinstance(err, InvalidArgument) and err.field == "format"


async def test_rating_uses_the_price_valid_on_each_day(stub: Any) -> None:
    await stub.PublishPriceBook(accounting_pb2.PublishPriceBookRequest(book=BOOK), timeout=5)
    # 22:00 on Nov 14 to 02:00 on Nov 15: two hours at 3000, two at 2500; 2 devices.
    await ingest(stub, grant_events(new_grant_id(), ms(2025, 11, 14, 22), ms(2025, 11, 15, 2), count=2))
    reply = await stub.QueryLedger(
        accounting_pb2.QueryLedgerRequest(
            start=ts(ms(2025, 11, 1)), end=ts(ms(2025, 12, 1)), group_by=["institution", "day"]
        ),
        timeout=5,
    )
    assert [(r.day, r.slice_hours, r.cost) for r in reply.rows] == [
        ("2025-11-14", 4.0, "12000.00"),
        ("2025-11-15", 4.0, "10000.00"),
    ]


async def test_a_month_closes_into_statements_that_focus_exports_reconcile_to(stub: Any) -> None:
    await stub.PublishPriceBook(accounting_pb2.PublishPriceBookRequest(book=BOOK), timeout=5)
    await ingest(stub, month_of_use())
    closed = await stub.ClosePeriod(accounting_pb2.ClosePeriodRequest(period="2025-11"), timeout=30)
    assert {s.institution for s in closed.statements} == {"kaist", "snu", "samsung"}
    again = await stub.ClosePeriod(accounting_pb2.ClosePeriodRequest(period="2025-11"), timeout=30)
    assert again == closed
    total = sum(Decimal(s.total) for s in closed.statements)
    assert total > 0

    focus_csv = await export(stub, "focus-csv")
    rows = list(csv.DictReader(io.StringIO(focus_csv.decode())))
    assert list(rows[0]) == list(FOCUS_COLUMNS)
    assert sum(Decimal(r["BilledCost"]) for r in rows) == total
    assert all(r["BillingPeriodStart"] == "2025-11-01T00:00:00Z" for r in rows)
    shared = [r for r in rows if r["SkuId"].endswith("/mig-1g.10gb")]
    assert shared and all(r["AllocatedMethodId"] == "slice-share" for r in shared)
    assert all(r["AllocatedResourceId"] == "h100-r001-n01" for r in shared)

    table = pq.read_table(io.BytesIO(await export(stub, "focus-parquet")))
    assert table.num_rows == len(rows)
    assert sum(table.column("BilledCost").to_pylist()) == total

    for statement in closed.statements:
        one = await export(stub, "focus-csv", institution=statement.institution)
        billed = sum(Decimal(r["BilledCost"]) for r in csv.DictReader(io.StringIO(one.decode())))
        assert billed == Decimal(statement.total)


async def test_late_events_and_rerating_become_lines_of_the_next_period(stub: Any) -> None:
    await stub.PublishPriceBook(accounting_pb2.PublishPriceBookRequest(book=BOOK), timeout=5)
    await ingest(stub, grant_events(new_grant_id(), ms(2025, 11, 3), ms(2025, 11, 3, 10)))
    before = await stub.ClosePeriod(accounting_pb2.ClosePeriodRequest(period="2025-11"), timeout=10)
    (nov,) = before.statements
    assert nov.total == "30000.00"

    await ingest(stub, grant_events(new_grant_id(), ms(2025, 11, 4), ms(2025, 11, 4, 1)))  # late
    corrected = accounting_pb2.PriceBook(entries=[entry(H100, "academic", "2000", "2025-01-01")])
    await stub.PublishPriceBook(accounting_pb2.PublishPriceBookRequest(book=corrected, expected_version=1))
    rerated = await stub.ReratePeriod(accounting_pb2.RerateRequest(period="2025-11", book_version=2), timeout=10)
    assert (rerated.billed_in, rerated.adjustment_total) == ("2025-12", "-10000.00")

    still = await stub.GetStatements(accounting_pb2.GetStatementsRequest(period="2025-11"), timeout=5)
    assert still == before  # never rewritten
    dec = await stub.ClosePeriod(accounting_pb2.ClosePeriodRequest(period="2025-12"), timeout=10)
    (st,) = dec.statements
    # The late hour is rated with December's book (v2: 2000), plus the -10000 correction.
    assert (st.late_usage, st.adjustments, st.total) == ("2000.00", "-10000.00", "-8000.00")
    rows = list(csv.DictReader(io.StringIO((await export(stub, "focus-csv", period="2025-12")).decode())))
    assert {(r["ChargeCategory"], r["ChargeClass"]) for r in rows} == {
        ("Usage", "Correction"),
        ("Adjustment", "Correction"),
    }
    assert sum(Decimal(r["BilledCost"]) for r in rows) == Decimal(st.total)


async def test_replays_duplicates_and_reordering_give_byte_identical_exports(
    stub: Any, redis_client: aioredis.Redis
) -> None:
    events = month_of_use(seed=3)
    await stub.PublishPriceBook(accounting_pb2.PublishPriceBookRequest(book=BOOK), timeout=5)
    await ingest(stub, events)
    first = {fmt: await export(stub, fmt) for fmt in ("csv", "jsonl", "focus-csv", "focus-parquet")}

    await ingest(stub, events)  # the whole stream again
    assert {fmt: await export(stub, fmt) for fmt in first} == first

    # A fresh ledger fed duplicates, with each grant's events in either order.
    await redis_client.flushall()
    await stub.PublishPriceBook(accounting_pb2.PublishPriceBookRequest(book=BOOK), timeout=5)
    shuffled = events + events[::3]
    random.Random(1).shuffle(shuffled)
    await ingest(stub, shuffled)
    assert {fmt: await export(stub, fmt) for fmt in first} == first


async def test_tenants_cannot_read_each_others_usage_or_exports(
    redis_url: str, start_service: Any, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(
        "admin-token: {name: ops, role: admin}\nsnu-token: {name: snu-user, role: tenant, institution: snu}\n"
    )
    settings = AccountingSettings(redis_url=redis_url, listen="127.0.0.1:0", auth_tokens_file=tokens)
    running = await start_service(build, settings)
    admin, snu = [("authorization", "Bearer admin-token")], [("authorization", "Bearer snu-token")]
    async with grpc.aio.insecure_channel(running.address) as channel:
        stub = accounting_pb2_grpc.AccountingServiceStub(channel)
        events = month_of_use()
        await stub.IngestEvents(accounting_pb2.IngestEventsRequest(events=events), metadata=admin, timeout=10)
        query = accounting_pb2.QueryLedgerRequest(
            start=ts(ms(2025, 11, 1)), end=ts(ms(2025, 12, 1)), institution="kaist"
        )
        err = await refused(stub.QueryLedger(query, metadata=snu))
        assert isinstance(err, PermissionDenied)
        request = accounting_pb2.ExportLedgerRequest(period="2025-11", format="csv", institution="kaist")
        err = await refused(_drain(stub.ExportLedger(request, metadata=snu)))
        assert isinstance(err, PermissionDenied)
        err = await refused(stub.ClosePeriod(accounting_pb2.ClosePeriodRequest(period="2025-11"), metadata=snu))
        assert isinstance(err, PermissionDenied)
        own = await _drain(
            stub.ExportLedger(accounting_pb2.ExportLedgerRequest(period="2025-11", format="csv"), metadata=snu)
        )
        assert {r["institution"] for r in csv.DictReader(io.StringIO(own.decode()))} == {"snu"}


async def _drain(call: Any) -> bytes:
    return b"".join([c.data async for c in call])
