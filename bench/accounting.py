"""Accounting: ingestion events/s into the real Redis ledger, and FOCUS export rows/s and peak memory.

- ingest_events_per_s: GRANTED+ENDED pairs in batches of 500 (the relay's batch size) through the
  domain service and the Lua ingest script, against a local Redis (AOF everysec), one client.
- focus_{csv,parquet}_rows_per_s: 1,000,000 ledger lines (a synthetic month, one day each) as the
  ledger index stores them (one packed string per line), parsed, rated and encoded in pages of
  20,000, the way ExportLedger streams them: column-wise (pyarrow and numpy). Making the strings is
  not timed; reading the pages from Redis is measured apart (ledger_read_rows_per_s, 200,000 lines)
  and, end to end with it, export_redis_focus_csv_rows_per_s (200,000 lines through the store).
- export_peak_rss_mb_1m_rows: peak RSS of a child process that exports the 1,000,000 rows to
  Parquet (and, for comparison, of one exporting 100,000: flat means equal).

The machine is shared with other work, so figures are noisy: a floor, not a promise.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from slicebroker.accounting.domain.columns import rate_columns
from slicebroker.accounting.domain.exports import ExportContext, ExportFormat
from slicebroker.accounting.domain.model import EventType, IncomingEvent
from slicebroker.accounting.domain.periods import Period
from slicebroker.accounting.domain.pricebook import PriceBook, PriceEntry, Tier
from slicebroker.accounting.domain.service import AccountingService
from slicebroker.accounting.exports.encoders import encoder
from slicebroker.accounting.storage.keys import ATTR_SEP, FIELD_SEP, AccountingKeys
from slicebroker.accounting.storage.redis_store import LUA_PACKAGE, SCRIPTS, RedisUsageStore, line_columns_of
from slicebroker.runtime.redis import Scripts, connect
from slicebroker.runtime.redis_server import RedisServer

ROWS = 1_000_000
E2E_ROWS = 200_000
PAGE = 20_000
PERIOD = Period(2026, 11)
SKUS = ("H100-SXM-80GB", "H200-SXM-141GB", "B200-SXM-180GB", "RNGD")
BOOK = PriceBook(
    entries=tuple(PriceEntry(s, "whole", t, 3_000_000_000, 1_000_000, 0) for s in SKUS for t in Tier),
    institution_tiers={"inst-3": Tier.INDUSTRY},
    preemptible_discount_bp=5000,
    version=1,
)


def _member(i: int) -> str:
    """Ledger line i as the index stores it (see storage/lua/ingest.lua)."""
    day = 86_400_000
    start = PERIOD.start_ms + (i % 29) * day + 3_600_000
    attrs = ATTR_SEP.join(
        (f"user-{i % 97}", "whole", "preemptible" if i % 5 == 0 else "", "", f"node-{i % 211}", "site-a")
    )
    return FIELD_SEP.join(
        (
            PERIOD.name,
            f"inst-{i % 7}",
            PERIOD.name,
            f"{start:013d}",
            f"gr_{i:026d}",
            f"proj-{i % 31}",
            SKUS[i % 4],
            str(1 + i % 8),
            str(start + 60_000 * (1 + i % 600)),
            "released",
            attrs,
        )
    )


def _pages(n: int) -> Iterator[list[str]]:
    for page_start in range(0, n, PAGE):
        yield [_member(i) for i in range(page_start, min(n, page_start + PAGE))]


def _export(fmt: ExportFormat, n: int) -> tuple[float, int]:
    """Seconds spent parsing, rating and encoding n lines (not making them), and the bytes out."""
    ctx = ExportContext(PERIOD.name, PERIOD.start_ms, PERIOD.end_ms, "KRW", 1, "bench-centre")
    enc = encoder(fmt, ctx)
    spent = 0.0
    size = len(enc.begin())
    for page in _pages(n):
        t = time.perf_counter()
        size += len(enc.encode(rate_columns(line_columns_of(page), BOOK)))
        spent += time.perf_counter() - t
    size += len(enc.end())
    return spent, size


def _child(fmt: str, n: int, out: Any) -> None:
    _export(ExportFormat(fmt), n)
    out.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _peak_rss_mb(fmt: ExportFormat, n: int) -> float:
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(fmt.value, n, q))
    p.start()
    value = float(q.get())
    p.join()
    return value


async def _ingest(seconds: float, redis_url: str) -> tuple[float, float, float]:
    client = connect(redis_url)
    scripts = Scripts(client, LUA_PACKAGE, SCRIPTS)
    await scripts.load()
    store_keys = AccountingKeys("bench:accounting")
    store = RedisUsageStore(client, scripts, store_keys)
    await store.publish_book(BOOK, 0)
    service = AccountingService(store, encoders=encoder, provider="bench-centre")
    t0 = PERIOD.start_ms
    done, i = 0, 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch: list[IncomingEvent] = []
        for _ in range(250):
            gid = f"gr_{i:026d}"
            common = {"grant_id": gid, "institution": f"inst-{i % 7}", "project": f"proj-{i % 31}"}
            batch.append(
                IncomingEvent(f"{gid}:g", type=EventType.GRANTED, sku="H100-SXM-80GB", count=8, at_ms=t0 + i, **common)
            )
            batch.append(
                IncomingEvent(
                    f"{gid}:e",
                    type=EventType.ENDED,
                    sku="H100-SXM-80GB",
                    count=8,
                    at_ms=t0 + i + 3_600_000,
                    reason="released",
                    **common,
                )
            )
            i += 1
        await service.ingest(batch)
        done += len(batch)
    rate = done / (time.perf_counter() - start)
    # 200,000 more lines straight into the index, then read back and exported through the service.
    await client.delete(store_keys.lines)
    for page in _pages(E2E_ROWS):
        await client.zadd(store_keys.lines, dict.fromkeys(page, 0))
    read_start, read = time.perf_counter(), 0
    async for columns in store.line_columns(PERIOD.name):
        read += len(columns)
    read_rate = read / (time.perf_counter() - read_start)
    e2e_start, e2e_rows = time.perf_counter(), 0
    async for _, rows in await service.export(PERIOD.name, "", ExportFormat.FOCUS_CSV.value):
        e2e_rows += rows
    e2e_rate = e2e_rows / (time.perf_counter() - e2e_start)
    await client.aclose()
    return rate, read_rate, e2e_rate


def run(seconds: float = 4.0, console: Console | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    console = console or Console()
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(data_dir=Path(tmp) / "redis").start()
        try:
            ingest_rate, read_rate, e2e_rate = asyncio.run(_ingest(max(seconds, 2.0) * 3, redis.url))
        finally:
            redis.stop()
    console.print(f"ingest: {ingest_rate:,.0f} events/s; export through Redis: {e2e_rate:,.0f} rows/s")
    csv_s, csv_bytes = _export(ExportFormat.FOCUS_CSV, ROWS)
    console.print(f"focus-csv: {ROWS / csv_s:,.0f} rows/s")
    pq_s, pq_bytes = _export(ExportFormat.FOCUS_PARQUET, ROWS)
    console.print(f"focus-parquet: {ROWS / pq_s:,.0f} rows/s")
    rss_1m = _peak_rss_mb(ExportFormat.FOCUS_PARQUET, ROWS)
    rss_100k = _peak_rss_mb(ExportFormat.FOCUS_PARQUET, ROWS // 10)
    metrics = {
        "ingest_events_per_s": ingest_rate,
        "focus_csv_rows_per_s": ROWS / csv_s,
        "focus_parquet_rows_per_s": ROWS / pq_s,
        "export_peak_rss_mb_1m_rows": rss_1m,
    }
    details = {
        "rows": ROWS,
        "page": PAGE,
        "focus_csv_bytes": csv_bytes,
        "focus_parquet_bytes": pq_bytes,
        "export_peak_rss_mb_100k_rows": rss_100k,
        "ledger_read_rows_per_s": read_rate,
        "export_redis_focus_csv_rows_per_s": e2e_rate,
        "e2e_rows": E2E_ROWS,
        "note": (
            "focus_* figures parse, rate and encode ledger-index pages held in memory; "
            "export_redis_* reads them from Redis through the service as ExportLedger does"
        ),
    }
    return metrics, details
