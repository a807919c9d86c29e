"""How slicectl shows SDK results: Rich tables for people, one JSON document for programs.

The JSON form of a result is the SDK dataclass itself, field for field (times as ISO 8601 UTC,
enums as their value), so scripts and SDK users read the same names.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from slicebroker.client import (
    Grant,
    GrantState,
    Institution,
    Node,
    Project,
    Sku,
    SkuCapacity,
    SlicebrokerError,
    Usage,
)
from slicebroker.client._lease import format_duration

_STATE_STYLE = {
    GrantState.ACTIVE: "green",
    GrantState.PENDING: "yellow",
    GrantState.ENDED: "dim",
    GrantState.FAILED: "red",
    GrantState.QUEUED: "cyan",
    GrantState.UNKNOWN: "magenta",
}
# Not a terminal (a pipe, a file, a test): wide enough that tables are not truncated.
_PIPE_WIDTH = 200


def jsonable(value: Any) -> Any:
    """SDK results as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)  # money: exact decimal text, as the services send it
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


class Output:
    """Where one command writes: stdout for results, stderr for errors."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        width = None if sys.stdout.isatty() else _PIPE_WIDTH
        # markup off: names and messages come from the services and may hold "[...]".
        self.console = Console(width=width, markup=False, emoji=False, highlight=False)

    def result(self, value: Any, render: RenderableType | None = None) -> None:
        """Prints `value` as JSON, or `render` (a table) for people."""
        if self.as_json:
            sys.stdout.write(json.dumps(jsonable(value), indent=2) + "\n")
        elif render is not None:
            self.console.print(render)

    def error(self, err: SlicebrokerError) -> None:
        if self.as_json:
            document = {
                "error": {
                    "code": err.code.name,
                    "reason": err.reason,
                    "message": err.message,
                    "field": err.field,
                    "metadata": dict(sorted(err.metadata.items())),
                    "hint": err.hint,
                    "request_id": err.request_id,
                }
            }
            sys.stderr.write(json.dumps(document, indent=2) + "\n")
            return
        sys.stderr.write(f"error: {err.message} (reason: {err.reason})\n")
        if err.hint:
            sys.stderr.write(f"hint: {err.hint}\n")


def when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value else "—"


def until(value: datetime | None, now: datetime) -> str:
    """Time left until `value`, e.g. "in 1h59m" (seconds only under an hour), or "expired"."""
    if value is None:
        return "—"
    left = value - now
    if left <= timedelta(0):
        return "expired"
    if left >= timedelta(hours=1):
        left = timedelta(minutes=int(left.total_seconds() // 60))
    return f"in {format_duration(left)}"


def state(value: GrantState) -> Text:
    return Text(value.value, style=_STATE_STYLE[value])


def _table(*columns: str, numeric: Iterable[str] = ()) -> Table:
    right = set(numeric)
    table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left", no_wrap=True)
    return table


def grant_details(grant: Grant, now: datetime) -> Table:
    rows: list[tuple[str, RenderableType]] = [
        ("grant", grant.id),
        ("state", state(grant.state)),
        ("project", f"{grant.project} ({grant.institution})" if grant.institution else grant.project),
        ("sku", f"{grant.sku} × {grant.count}"),
        ("created", when(grant.created_at)),
    ]
    if grant.state is GrantState.QUEUED:
        rows.append(
            (
                "queue",
                f"position {grant.queue_position}" + (f": {grant.waiting_reason}" if grant.waiting_reason else ""),
            )
        )
    elif grant.live:
        rows.append(("expires", f"{when(grant.expires_at)} ({until(grant.expires_at, now)})"))
    else:
        ended = when(grant.ended_at)
        rows.append(("ended", f"{ended} ({grant.end_reason})" if grant.end_reason else ended))
    by_node = _by_node(grant) or [("—", "")]
    for i, (node_id, devices) in enumerate(by_node):
        rows.append(("slices" if i == 0 else "", f"{node_id}: {devices}" if devices else node_id))
    rows.append(("idempotency key", grant.idempotency_key or "—"))
    return details(rows)


def details(rows: Iterable[tuple[str, RenderableType]]) -> Table:
    """One thing's fields as a two-column grid: bold labels, then values."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for label, value in rows:
        table.add_row(label, value)
    return table


def _by_node(grant: Grant) -> list[tuple[str, str]]:
    """Slices grouped per node, the node prefix stripped from device ids ("n01: gpu0 gpu1")."""
    nodes: dict[str, list[str]] = {}
    for s in grant.slices:
        nodes.setdefault(s.node_id, []).append(s.device_id.removeprefix(f"{s.node_id}/"))
    return [(node_id, " ".join(devices)) for node_id, devices in nodes.items()]


def grants_table(grants: Iterable[Grant], now: datetime) -> Table:
    table = _table("GRANT", "PROJECT", "SKU", "COUNT", "STATE", "CREATED", "EXPIRES", numeric=["COUNT"])
    for g in grants:
        expires = (
            f"queued #{g.queue_position}" if g.waiting else until(g.expires_at, now) if g.live else g.end_reason or "—"
        )
        table.add_row(g.id, g.project, g.sku, str(g.count), state(g.state), when(g.created_at), expires)
    return table


def capacity_table(capacity: Iterable[SkuCapacity]) -> Table:
    numeric = ["NODES", "DEVICES", "FREE", "USED %", "UNHEALTHY"]
    table = _table("SKU", *numeric, numeric=numeric)
    for c in capacity:
        unhealthy = Text(str(c.unhealthy), style="red" if c.unhealthy else "")
        used = f"{c.utilization * 100:.1f}%"
        table.add_row(c.sku, str(c.nodes), str(c.devices), str(c.free), used, unhealthy)
    return table


def nodes_table(nodes: Iterable[Node]) -> Table:
    numeric = ["DEVICES", "FREE", "UNHEALTHY", "GENERATION"]
    table = _table("NODE", "SITE", "RACK", "SKU", *numeric, "SCHEDULABLE", "MIG LAYOUT", numeric=numeric)
    for n in nodes:
        table.add_row(
            n.id,
            n.site,
            n.rack,
            ",".join(n.skus),
            str(len(n.devices)),
            str(n.free),
            Text(str(n.unhealthy), style="red" if n.unhealthy else ""),
            str(n.generation),
            "yes" if n.schedulable else Text("no", style="yellow"),
            # A fixed layout a MIG manager made, e.g. "1g.10gb:7"; empty when cut on demand.
            ",".join(f"{profile}:{count}" for profile, count in sorted(n.mig_layout.items())),
        )
    return table


def usage_table(usage: Usage) -> Table:
    numeric = ["DEVICE-H CLOSED", "DEVICE-H RUNNING", "GRANTS", "RUNNING GRANTS"]
    table = _table("INSTITUTION", "PROJECT", "SKU", *numeric, numeric=numeric)
    table.caption = f"as of {when(usage.as_of)}"
    for r in usage.rows:
        table.add_row(
            r.institution,
            r.project,
            r.sku,
            _hours(r.device_hours),
            _hours(r.running_device_hours),
            str(r.grants),
            str(r.running_grants),
        )
    totals = [
        _hours(sum(r.device_hours for r in usage.rows)),
        _hours(sum(r.running_device_hours for r in usage.rows)),
        str(sum(r.grants for r in usage.rows)),
        str(sum(r.running_grants for r in usage.rows)),
    ]
    for column, footer in zip(table.columns, ["total", "", "", *totals], strict=True):
        column.footer = footer
    table.show_footer = True
    return table


def _hours(hours: float) -> str:
    return f"{hours:,.2f}"


def projects_table(projects: Iterable[Project]) -> Table:
    table = _table("PROJECT", "INSTITUTION", "NAME", "IN USE / CAP")
    for p in projects:
        skus = dict.fromkeys([*p.device_caps, *p.devices_in_use])
        caps = ", ".join(f"{s} {p.devices_in_use.get(s, 0)}/{p.device_caps.get(s, 0)}" for s in skus)
        table.add_row(p.id, p.institution, p.display_name, caps or "—")
    return table


def institutions_table(institutions: Iterable[Institution]) -> Table:
    table = _table("INSTITUTION", "NAME")
    for i in institutions:
        table.add_row(i.id, i.display_name)
    return table


def skus_table(skus: Iterable[Sku]) -> Table:
    table = _table("SKU", "KIND", "VENDOR", "MODEL", "MEMORY GIB", numeric=["MEMORY GIB"])
    for s in skus:
        table.add_row(s.name, s.kind, s.vendor, s.model, str(s.memory_gib))
    return table
