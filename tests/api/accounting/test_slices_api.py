"""Slices counted by their size through the real server, with events shaped as the broker sends
them (a generic kind on the event, the profile on each slice): usage, statements and exports."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

from slicebroker.core.ids import new_grant_id
from slicebroker.v1 import accounting_pb2, common_pb2
from tests.api.accounting.test_billing_api import H100, HOUR, entry, export, grant_events, ingest, ms, stub

__all__ = ["stub"]


def broker_slices(kind: str, profile: str, count: int) -> list[Any]:
    return [
        common_pb2.Slice(node_id="h100-r001-n01", device_id=f"h100-r001-n01/gpu{i // 7}", kind=kind, profile=profile)
        for i in range(count)
    ]


async def test_mig_and_share_grants_count_their_size(stub: Any) -> None:
    book = accounting_pb2.PriceBook(
        entries=[
            entry(H100, "academic", "7000", "2025-01-01"),
            entry(H100, "academic", "1000", "2025-01-01", kind="mig-1g.10gb"),
            entry(H100, "academic", "2000", "2025-01-01", kind="fraction-0.25"),
        ]
    )
    await stub.PublishPriceBook(accounting_pb2.PublishPriceBookRequest(book=book), timeout=5)
    start = ms(2025, 11, 3)
    mig = grant_events(
        new_grant_id(), start, start + 2 * HOUR, count=7, slice_kind="mig", slices=broker_slices("mig", "1g.10gb", 7)
    )
    share = grant_events(
        new_grant_id(), start, start + 2 * HOUR, count=2, slice_kind="share", slices=broker_slices("share", "0.25", 2)
    )
    await ingest(stub, mig + share)

    usage = await stub.GetUsage(accounting_pb2.GetUsageRequest(institution="kaist"), timeout=5)
    (row,) = usage.rows
    # 7 x 1/7 + 2 x 1/4 = 1.5 devices for 2 hours: 3 device-hours, not 18.
    assert row.device_seconds == 3 * 3600
    assert row.grants == 2

    closed = await stub.ClosePeriod(accounting_pb2.ClosePeriodRequest(period="2025-11"), timeout=10)
    (statement,) = closed.statements
    by_kind = {x.slice_kind: x for x in statement.lines}
    assert set(by_kind) == {"mig-1g.10gb", "fraction-0.25"}
    # Priced per slice-hour; normalised accelerator-hours by size.
    assert (by_kind["mig-1g.10gb"].slice_hours, by_kind["mig-1g.10gb"].billed_cost) == (14, "14000.00")
    assert abs(by_kind["mig-1g.10gb"].accelerator_hours - 2) < 1e-5
    assert (by_kind["fraction-0.25"].slice_hours, by_kind["fraction-0.25"].accelerator_hours) == (4, 1)

    rows = list(csv.DictReader(io.StringIO((await export(stub, "focus-csv")).decode())))
    assert {r["SkuId"] for r in rows} == {f"{H100}/mig-1g.10gb", f"{H100}/fraction-0.25"}
    assert all(r["ConsumedUnit"] == "Slice-Hours" and r["AllocatedMethodId"] == "slice-share" for r in rows)
    assert sum(Decimal(r["BilledCost"]) for r in rows) == Decimal(statement.total)
    plain = list(csv.DictReader(io.StringIO((await export(stub, "csv")).decode())))
    assert sum(Decimal(r["accelerator_hours"]) for r in plain) == Decimal("2.999998")
