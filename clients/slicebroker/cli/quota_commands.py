"""`slicectl quota` (what tenants are entitled to, use, borrow and have left) and the quota part of
`slicectl admin`: tenants (cohorts, institutions, projects), quota entries and hour budgets.
Registered on the main app by `register(app)`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from slicebroker.cli._render import Output
from slicebroker.client import Client
from slicebroker.client._quota import Budget, ClassCommitment, QuotaEntry, Standing, Tenant, TenantKind, TenantState

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document (the SDK's result) instead.")]
Generation = Annotated[
    int | None,
    typer.Option("--generation", help="Refuse the change unless the tenant is still at this generation."),
]

tenant_app = typer.Typer(help="Cohorts, institutions and projects.", no_args_is_help=True)
quota_app = typer.Typer(help="Quota entries per resource class (SKU, family, accel).", no_args_is_help=True)
budget_app = typer.Typer(help="Budgets of accelerator-hours per period.", no_args_is_help=True)


@contextmanager
def _session(ctx: typer.Context, as_json: bool) -> Iterator[tuple[Client, Output]]:
    # Deferred: main imports this module to register it.
    from slicebroker.cli.main import _session as session

    with session(ctx, as_json) as pair:
        yield pair


def _map(values: Iterable[tuple[str, str]]) -> str:
    return ", ".join(f"{k} {v}" for k, v in values) or "-"


def standings_table(standings: Iterable[Standing]) -> Table:
    table = Table("tenant", "kind", "entitled", "in use", "borrowed", "fair share", "budget left", "runs out")
    for s in standings:
        devices = [(k, v) for k, v in s.in_use.items() if "#" not in k]
        left = "-" if s.budget_left_hours is None else f"{s.budget_left_hours:,.1f} h"
        runs_out = s.projected_exhaustion.date().isoformat() if s.projected_exhaustion else "-"
        table.add_row(
            s.tenant.id,
            s.tenant.kind,
            _map(s.entitlement.items()),
            _map(devices),
            _map((k, v) for k, v in s.borrowed.items() if "#" not in k),
            f"{s.fair_share:.3f}",
            left,
            runs_out,
        )
    return table


def tenants_table(tenants: Iterable[Tenant]) -> Table:
    table = Table("tenant", "kind", "parent", "state", "weight", "generation", "quotas", "budget")
    for t in tenants:
        quotas = "; ".join(
            f"{q.resource_class}: nominal {q.nominal}"
            + "".join(
                f", {label} {v}"
                for label, v in (("borrow", q.borrowing_limit), ("lend", q.lending_limit), ("cap", q.hard_cap))
                if v
            )
            for q in t.quotas
        )
        budget = "-"
        if t.budget:
            mode = "hard" if t.budget.hard else "soft"
            budget = f"{t.budget.award_hours:,.0f} h {mode}, {t.burned_hours:,.1f} h burned"
        table.add_row(t.id, t.kind, t.parent or "-", t.state, f"{t.weight:g}", str(t.generation), quotas or "-", budget)
    return table


def quota(
    ctx: typer.Context,
    tenants: Annotated[list[str] | None, typer.Argument(help="Tenants to show (default: all).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Entitlement, use, borrowed, fair share, budget left and projected exhaustion per tenant."""
    with _session(ctx, as_json) as (client, out):
        listed = client.standings(*(tenants or []))
        out.result(listed, standings_table(listed))


@tenant_app.command("set")
def tenant_set(
    ctx: typer.Context,
    tenant_id: Annotated[str, typer.Argument(help="Tenant id.")],
    kind: Annotated[
        TenantKind, typer.Option("--kind", "-k", help="cohort, institution, project or user (id <project>/<user>).")
    ],
    parent: Annotated[
        str, typer.Option("--parent", "-p", help="Cohort (institution for a project, project for a user).")
    ] = "",
    state: Annotated[TenantState, typer.Option("--state", help="active, on_hold or closed.")] = TenantState.ACTIVE,
    name: Annotated[str, typer.Option("--name", help="Display name.")] = "",
    weight: Annotated[float, typer.Option("--weight", help="Fair-share weight.")] = 1.0,
    generation: Generation = None,
    as_json: JsonFlag = False,
) -> None:
    """Create or change a tenant."""
    with _session(ctx, as_json) as (client, out):
        t = client.upsert_tenant(
            tenant_id,
            kind,
            parent=parent,
            state=state,
            display_name=name,
            weight=weight,
            expected_generation=generation,
        )
        out.result(t, tenants_table([t]))


@tenant_app.command("list")
def tenant_list(
    ctx: typer.Context,
    kind: Annotated[TenantKind | None, typer.Option("--kind", "-k")] = None,
    parent: Annotated[str | None, typer.Option("--parent", "-p")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Tenants with their quota entries and budgets."""
    with _session(ctx, as_json) as (client, out):
        listed = client.tenants(kind, parent)
        out.result(listed, tenants_table(listed))


@quota_app.command("set")
def quota_set(
    ctx: typer.Context,
    tenant_id: Annotated[str, typer.Argument(help="Tenant id.")],
    resource_class: Annotated[str, typer.Argument(help="A SKU, a family (gpu, npu) or accel.")],
    nominal: Annotated[str, typer.Option("--nominal", help="Guaranteed devices.")] = "",
    borrowing_limit: Annotated[str, typer.Option("--borrowing-limit", help="Most to borrow beyond quota.")] = "",
    lending_limit: Annotated[str, typer.Option("--lending-limit", help="Most of its quota to lend.")] = "",
    hard_cap: Annotated[str, typer.Option("--hard-cap", help="Most its subtree may hold.")] = "",
    generation: Generation = None,
    as_json: JsonFlag = False,
) -> None:
    """Set one quota entry (amounts in devices, e.g. 8 or 0.25; omitted: nominal 0, limits unlimited)."""
    entry = QuotaEntry(resource_class, nominal, borrowing_limit, lending_limit, hard_cap)
    with _session(ctx, as_json) as (client, out):
        t = client.set_quota(tenant_id, [entry], expected_generation=generation)
        out.result(t, tenants_table([t]))
        _warn(out, t.warnings)


@quota_app.command("check")
def quota_check(
    ctx: typer.Context,
    as_json: JsonFlag = False,
) -> None:
    """Guarantees (nominal quota of all tenants) against the capacity inventory reports, per class.
    Exits 1 when a class is over-committed."""
    with _session(ctx, as_json) as (client, out):
        rows = client.check_capacity()
        out.result(rows, commitments_table(rows))
    if any(r.over_committed for r in rows):
        raise typer.Exit(1)


def commitments_table(rows: Iterable[ClassCommitment]) -> Table:
    table = Table("class", "guaranteed", "capacity", "over by", "state")
    for r in rows:
        table.add_row(
            r.resource_class, r.guaranteed, r.capacity, r.over_by, "over-committed" if r.over_committed else "ok"
        )
    return table


def _warn(out: Output, warnings: Iterable[str]) -> None:
    if not out.as_json:
        for warning in warnings:
            out.console.print(f"warning: {warning}", style="yellow")


@quota_app.command("remove")
def quota_remove(
    ctx: typer.Context,
    tenant_id: Annotated[str, typer.Argument(help="Tenant id.")],
    resource_class: Annotated[str, typer.Argument(help="The class whose entry goes.")],
    generation: Generation = None,
    as_json: JsonFlag = False,
) -> None:
    """Remove one quota entry."""
    with _session(ctx, as_json) as (client, out):
        t = client.set_quota(tenant_id, remove=[resource_class], expected_generation=generation)
        out.result(t, tenants_table([t]))


def _day(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@budget_app.command("set")
def budget_set(
    ctx: typer.Context,
    tenant_id: Annotated[str, typer.Argument(help="Institution or project.")],
    hours: Annotated[float, typer.Option("--hours", help="Award in accelerator-hours (1 = an H100 for an hour).")],
    start: Annotated[datetime, typer.Option("--start", help="Period start (UTC if no zone).")],
    end: Annotated[datetime, typer.Option("--end", help="Period end.")],
    expiry: Annotated[
        datetime | None, typer.Option("--expiry", help="When unspent hours lapse (default: end).")
    ] = None,
    hard: Annotated[bool, typer.Option("--hard/--soft", help="Refuse grants when used up, or only warn.")] = True,
    carry_max: Annotated[float, typer.Option("--carry-max", help="Most hours that roll over.")] = 0.0,
    roll_over: Annotated[bool, typer.Option("--roll-over", help="Start a new period, carrying what is left.")] = False,
    renews: Annotated[
        bool, typer.Option("--renews", help="At expiry the next period (same length and award) starts by itself.")
    ] = False,
    generation: Generation = None,
    as_json: JsonFlag = False,
) -> None:
    """Award a budget for a period."""
    budget = Budget(
        hard, _day(start), _day(end), _day(expiry or end), hours, carry_over_max_hours=carry_max, renews=renews
    )
    with _session(ctx, as_json) as (client, out):
        t = client.set_budget(tenant_id, budget, roll_over=roll_over, expected_generation=generation)
        out.result(t, tenants_table([t]))


@budget_app.command("top-up")
def budget_top_up(
    ctx: typer.Context,
    tenant_id: Annotated[str, typer.Argument(help="Institution or project.")],
    hours: Annotated[float, typer.Argument(help="Accelerator-hours to add.")],
    generation: Generation = None,
    as_json: JsonFlag = False,
) -> None:
    """Add hours to a budget (re-opens a hard-stopped one)."""
    with _session(ctx, as_json) as (client, out):
        t = client.top_up_budget(tenant_id, hours, expected_generation=generation)
        out.result(t, tenants_table([t]))


def register(app: typer.Typer) -> None:
    """Adds `quota` and, under `admin` (created here unless another module made it), `tenant`,
    `quota` and `budget`."""
    app.command("quota")(quota)
    admin = next((g.typer_instance for g in app.registered_groups if g.name == "admin"), None)
    if admin is None:
        admin = typer.Typer(help="Facility administration.", no_args_is_help=True)
        app.add_typer(admin, name="admin")
    admin.add_typer(tenant_app, name="tenant")
    admin.add_typer(quota_app, name="quota")
    admin.add_typer(budget_app, name="budget")
