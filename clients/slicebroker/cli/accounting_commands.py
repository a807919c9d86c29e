"""`slicectl usage` (device-hours, cost per project and SKU and a chart of daily use), `slicectl
export` (billing exports of a period to a file, with a progress bar) and `slicectl statements`
(the bills of a closed period; facility admins may close one). Registered on the main app by
`register(app)`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, Group, RenderableType
from rich.progress import FileSizeColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TransferSpeedColumn
from rich.table import Table
from rich.text import Text

from slicebroker.cli import _render as render
from slicebroker.cli._render import Output
from slicebroker.client import Client, UsageRow
from slicebroker.client._accounting import (
    CostReport,
    CostRow,
    ExportFormat,
    ExportProgress,
    Statement,
    current_period,
    days_of,
    period_bounds,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document (the SDK's result) instead.")]
Period = Annotated[
    str | None, typer.Option("--period", metavar="YYYY-MM", help="Billing month (UTC). Default: the current one.")
]
Institution = Annotated[str | None, typer.Option("--institution", "-i", help="Only this institution.")]
_BARS = "▁▂▃▄▅▆▇█"


@contextmanager
def _session(ctx: typer.Context, as_json: bool) -> Iterator[tuple[Client, Output]]:
    # Deferred: main imports this module to register it.
    from slicebroker.cli.main import _session as session

    with session(ctx, as_json) as pair:
        yield pair


def _examples(*lines: str) -> str:
    return "Examples:\n\n" + "\n".join(f"  $ {line}" for line in lines)


@dataclass(frozen=True, slots=True)
class DayUse:
    day: str
    accelerator_hours: float
    cost: Decimal


@dataclass(frozen=True, slots=True)
class UsageReport:
    """What `slicectl usage --json` prints: the device-hours of `Client.usage` (rows, as_of), and
    for the period the cost per institution, project and SKU and the use per day."""

    rows: tuple[UsageRow, ...]
    as_of: datetime
    period: str
    currency: str
    book_version: int
    costs: tuple[CostRow, ...]
    daily: tuple[DayUse, ...]


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


def cost_table(report: CostReport, period: str) -> Table:
    numeric = ["SLICE-H", "ACCEL-H", f"COST ({report.currency})"]
    table = render._table("INSTITUTION", "PROJECT", "SKU", *numeric, numeric=numeric)
    table.title = f"cost in {period} (price book v{report.book_version}; an estimate until the period is closed)"
    for r in report.rows:
        table.add_row(
            r.institution, r.project, r.sku, f"{r.slice_hours:,.2f}", f"{r.accelerator_hours:,.2f}", _money(r.cost)
        )
    totals = [
        f"{sum(r.slice_hours for r in report.rows):,.2f}",
        f"{sum(r.accelerator_hours for r in report.rows):,.2f}",
        _money(report.total_cost),
    ]
    for column, footer in zip(table.columns, ["total", "", "", *totals], strict=True):
        column.footer = footer
    table.show_footer = True
    return table


def daily_use(period: str, by_day: CostReport, today: date) -> tuple[DayUse, ...]:
    """Every day of the period up to today, with no use as zero."""
    found = {r.day: r for r in by_day.rows}
    out = []
    for d in days_of(period):
        if d > today:
            break
        row = found.get(d.isoformat())
        out.append(DayUse(d.isoformat(), row.accelerator_hours if row else 0.0, row.cost if row else Decimal("0.00")))
    return tuple(out)


def sparkline(values: Sequence[float]) -> str:
    """One block character per value, ▁ for none up to █ for the largest."""
    top = max(values, default=0.0)
    if top <= 0:
        return _BARS[0] * len(values)
    return "".join(_BARS[min(len(_BARS) - 1, round(v / top * (len(_BARS) - 1)))] for v in values)


def daily_chart(days: Sequence[DayUse]) -> RenderableType:
    if not days:
        return Text("no days of this period have begun")
    hours = [d.accelerator_hours for d in days]
    peak = max(range(len(days)), key=lambda i: hours[i])
    lines = [
        Text(f"accelerator-hours per day, {days[0].day} .. {days[-1].day}"),
        Text(sparkline(hours)),
        Text(f"total {sum(hours):,.2f} h; busiest {days[peak].day} with {hours[peak]:,.2f} h"),
    ]
    return Group(*lines)


def usage(
    ctx: typer.Context,
    institution: Institution = None,
    project: Annotated[str | None, typer.Option("--project", "-p", help="Only this project.")] = None,
    sku: Annotated[str | None, typer.Option("--sku", "-s", help="Only this SKU.")] = None,
    period: Period = None,
    as_json: JsonFlag = False,
) -> None:
    """Device-hours used per institution, project and SKU (closed and running, with totals), the
    cost of the period per project and SKU, and a chart of accelerator-hours per day."""
    with _session(ctx, as_json) as (client, out):
        now = datetime.now(UTC)
        month = period or current_period(now)
        start, end = period_bounds(month)
        devices = client.usage(institution, project, sku)
        scope = {"institution": institution, "project": project, "sku": sku}
        costs = client.costs(start, end, ("institution", "project", "sku"), **scope)
        by_day = client.costs(start, end, ("day",), **scope)
        report = UsageReport(
            rows=devices.rows,
            as_of=devices.as_of,
            period=month,
            currency=costs.currency,
            book_version=costs.book_version,
            costs=costs.rows,
            daily=daily_use(month, by_day, now.date()),
        )
        out.result(report, Group(render.usage_table(devices), cost_table(costs, month), daily_chart(report.daily)))


def export(
    ctx: typer.Context,
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="FILE", help="File to write (replaced only once complete).")
    ],
    export_format: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="csv, jsonl, focus-csv (FOCUS 1.2) or focus-parquet.")
    ] = ExportFormat.FOCUS_CSV,
    period: Period = None,
    institution: Institution = None,
    as_json: JsonFlag = False,
) -> None:
    """Write a billing period's charges to FILE, streamed, with a progress bar; --json prints what
    was written. Tenants export their own institution's."""
    with _session(ctx, as_json) as (client, out):
        month = period or current_period()
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.fields[rows]:,} rows"),
            FileSizeColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
        )
        # On stderr, only on a terminal, and gone when done: stdout keeps only the result.
        console = Console(stderr=True)
        with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
            task = progress.add_task(f"{export_format.value} {month}", total=None, rows=0)

            def advance(p: ExportProgress) -> None:
                progress.update(task, completed=p.bytes, rows=p.rows)

            summary = client.export_to(output, month, export_format, institution, on_progress=advance)
        out.result(
            summary,
            Text(
                f"wrote {summary.rows:,} rows ({summary.bytes:,} bytes) of {summary.format.value} "
                f"for {summary.period} to {summary.path}"
            ),
        )


def statements_table(statements: Iterable[Statement]) -> Table:
    numeric = ["USAGE", "LATE USAGE", "ADJUSTMENTS", "TOTAL"]
    table = render._table("PERIOD", "INSTITUTION", *numeric, "CURRENCY", "BOOK", numeric=numeric)
    for s in statements:
        table.add_row(
            s.period,
            s.institution,
            _money(s.usage),
            _money(s.late_usage),
            _money(s.adjustments),
            _money(s.total),
            s.currency,
            f"v{s.book_version}",
        )
    return table


def statement_lines_table(statement: Statement) -> Table:
    numeric = ["SLICE-H", "ACCEL-H", "LIST", "BILLED"]
    table = render._table("CATEGORY", "CHARGED IN", "PROJECT", "SKU", "SLICE", "TIER", *numeric, numeric=numeric)
    table.title = f"{statement.institution} {statement.period}"
    for x in statement.lines:
        table.add_row(
            x.category,
            x.charge_period,
            x.project,
            x.sku,
            x.slice_kind,
            x.tier,
            f"{x.slice_hours:,.2f}",
            f"{x.accelerator_hours:,.2f}",
            _money(x.list_cost),
            _money(x.billed_cost),
        )
    return table


def statements(
    ctx: typer.Context,
    period: Annotated[str, typer.Option("--period", metavar="YYYY-MM", help="A closed billing month (UTC).")],
    institution: Institution = None,
    lines: Annotated[bool, typer.Option("--lines", help="Show each statement's lines too.")] = False,
    close: Annotated[
        bool, typer.Option("--close", help="Close the period first (facility admins; repeating it is harmless).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """The statements (bills) of a closed billing period, one per institution; tenants see their own."""
    with _session(ctx, as_json) as (client, out):
        listed = client.close_period(period) if close else client.statements(period, institution)
        if close and institution:
            listed = [s for s in listed if s.institution == institution]
        tables: list[RenderableType] = [statements_table(listed)]
        if lines:
            tables += [statement_lines_table(s) for s in listed]
        out.result(listed, Group(*tables))


def register(app: typer.Typer) -> None:
    app.command(
        "usage",
        epilog=_examples(
            "slicectl usage",
            "slicectl usage --institution snu --period 2026-11",
            "slicectl usage --project snu-llm --sku H100-SXM-80GB --json",
        ),
    )(usage)
    app.command(
        "export",
        epilog=_examples(
            "slicectl export --format focus-csv --period 2026-11 -o focus-2026-11.csv",
            "slicectl export -f focus-parquet --period 2026-11 --institution snu -o snu-2026-11.parquet",
            "slicectl export -f jsonl --period 2026-11 -o ledger.jsonl --json",
        ),
    )(export)
    app.command(
        "statements",
        epilog=_examples(
            "slicectl statements --period 2026-11",
            "slicectl statements --period 2026-11 --institution snu --lines",
            "slicectl statements --period 2026-11 --close",
        ),
    )(statements)
