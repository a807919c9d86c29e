"""slicectl: the command line of slicebroker, a thin layer over the SDK (`slicebroker.client`).

Every command builds one `Client` from the global flags (falling back to SLICEBROKER_* variables),
makes its calls, and prints a Rich table or, with --json, one JSON document. SDK errors become
`error: <message> (reason: X)` and a hint on stderr with exit code 1; usage errors exit with 2.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from slicebroker.cli import _render as render
from slicebroker.cli import inventory_commands, quota_commands
from slicebroker.cli._render import Output
from slicebroker.client import Client, ClientOptions, GrantState, SlicebrokerError
from slicebroker.client._lease import lease_to_timedelta
from slicebroker.client._options import (
    DEFAULT_TIMEOUT,
    ENV_ACCOUNTING_ADDR,
    ENV_BROKER_ADDR,
    ENV_INVENTORY_ADDR,
    ENV_QUOTA_ADDR,
    ENV_TIMEOUT,
    ENV_TLS_CA,
    ENV_TLS_CERT,
    ENV_TLS_KEY,
    ENV_TOKEN,
)

_CONNECTION = "Connection (flags override the environment)"
_STATES = [s.value for s in GrantState if s is not GrantState.UNKNOWN]

app = typer.Typer(
    name="slicectl",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _examples(*commands: str) -> str:
    return "Examples:\n\n" + "\n".join(f"  $ {c}" for c in commands)


def _lease(value: str | timedelta) -> timedelta:
    try:
        return lease_to_timedelta(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _state(value: str | GrantState) -> GrantState:
    if value not in _STATES:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(_STATES)}")
    return GrantState(value)


JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document (the SDK's result) instead.")]
LeaseOption = Annotated[
    timedelta,
    typer.Option(
        parser=_lease,
        metavar="DURATION",
        help="Lease length: 2h, 30m, 3600s, 1h30m or plain seconds.",
        show_default=False,
    ),
]


@dataclass(frozen=True, slots=True)
class _Globals:
    options: ClientOptions
    as_json: bool


_HELP = "\n\n".join(
    [
        "Share the centre's GPUs and NPUs: request, renew and release grants; see capacity and usage.",
        "Service addresses and the token come from the flags, else from the environment "
        f"({ENV_BROKER_ADDR}, {ENV_INVENTORY_ADDR}, {ENV_QUOTA_ADDR}, {ENV_ACCOUNTING_ADDR}, {ENV_TOKEN}): "
        "flags > environment. After `make run`, `source .run/env` sets them all.",
        "--json (before or after the command name) prints one JSON document instead of tables. "
        "Errors go to stderr with exit code 1; usage errors exit with 2.",
    ]
)


@app.callback(help=_HELP)
def _root(
    ctx: typer.Context,
    as_json: JsonFlag = False,
    broker_addr: Annotated[
        str | None,
        typer.Option(envvar=ENV_BROKER_ADDR, metavar="HOST:PORT", help="Broker service.", rich_help_panel=_CONNECTION),
    ] = None,
    inventory_addr: Annotated[
        str | None,
        typer.Option(
            envvar=ENV_INVENTORY_ADDR, metavar="HOST:PORT", help="Inventory service.", rich_help_panel=_CONNECTION
        ),
    ] = None,
    quota_addr: Annotated[
        str | None,
        typer.Option(envvar=ENV_QUOTA_ADDR, metavar="HOST:PORT", help="Quota service.", rich_help_panel=_CONNECTION),
    ] = None,
    accounting_addr: Annotated[
        str | None,
        typer.Option(
            envvar=ENV_ACCOUNTING_ADDR, metavar="HOST:PORT", help="Accounting service.", rich_help_panel=_CONNECTION
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar=ENV_TOKEN,
            help="Bearer token of your institution.",
            rich_help_panel=_CONNECTION,
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            envvar=ENV_TIMEOUT,
            min=0.1,
            help="Seconds each call may take, retries included.",
            rich_help_panel=_CONNECTION,
        ),
    ] = DEFAULT_TIMEOUT,
    tls_ca_file: Annotated[
        str | None,
        typer.Option(
            envvar=ENV_TLS_CA, metavar="PEM", help="CA to check the services against.", rich_help_panel=_CONNECTION
        ),
    ] = None,
    tls_cert_file: Annotated[
        str | None,
        typer.Option(
            envvar=ENV_TLS_CERT, metavar="PEM", help="Client certificate (mutual TLS).", rich_help_panel=_CONNECTION
        ),
    ] = None,
    tls_key_file: Annotated[
        str | None,
        typer.Option(
            envvar=ENV_TLS_KEY, metavar="PEM", help="Key of the client certificate.", rich_help_panel=_CONNECTION
        ),
    ] = None,
) -> None:
    """Share the centre's GPUs and NPUs: request, renew and release grants; see capacity and usage."""
    options = ClientOptions(
        broker_addr=broker_addr,
        inventory_addr=inventory_addr,
        quota_addr=quota_addr,
        accounting_addr=accounting_addr,
        token=token,
        timeout=timeout,
        tls_ca_file=tls_ca_file,
        tls_cert_file=tls_cert_file,
        tls_key_file=tls_key_file,
    )
    ctx.obj = _Globals(options, as_json)


@contextmanager
def _session(ctx: typer.Context, as_json: bool) -> Iterator[tuple[Client, Output]]:
    """A client for one command, and its SDK errors reported the slicectl way."""
    globals_: _Globals = ctx.obj
    out = Output(as_json or globals_.as_json)
    try:
        with Client(globals_.options) as client:
            yield client, out
    except SlicebrokerError as err:
        out.error(err)
        raise typer.Exit(1) from None


def _now() -> datetime:
    return datetime.now(UTC)


@app.command(
    epilog=_examples(
        "slicectl request --project snu-llm --sku H100-SXM-80GB --count 8 --lease 2h",
        "slicectl request -p snu-class -s RNGD --idempotency-key lab3-team7 --json",
    )
)
def request(
    ctx: typer.Context,
    project: Annotated[str, typer.Option("--project", "-p", help="Project the devices are for.")],
    sku: Annotated[str, typer.Option("--sku", "-s", help="Accelerator model; `slicectl skus` lists them.")],
    count: Annotated[int, typer.Option("--count", "-n", min=1, help="Whole devices.")] = 1,
    lease: LeaseOption = timedelta(hours=1),
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            help="Repeat a request safely: the same key returns the first grant. Default: a fresh key.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Request whole devices of one SKU for a project, for a lease (default 1h); prints the grant."""
    with _session(ctx, as_json) as (client, out):
        grant = client.request_grant(project, sku, count, lease, idempotency_key)
        out.result(grant, render.grant_details(grant, _now()))


@app.command(
    epilog=_examples(
        "slicectl grants",
        "slicectl grants --project snu-llm --state active",
        "slicectl grants gr_01jd5x8k2m9q4r7t3v6w0y1z2a",
        "slicectl grants --limit 0 --json",
    )
)
def grants(
    ctx: typer.Context,
    grant_id: Annotated[
        str | None, typer.Argument(metavar="GRANT_ID", help="Show this grant in detail.", show_default=False)
    ] = None,
    project: Annotated[str | None, typer.Option("--project", "-p", help="Only this project's.")] = None,
    state: Annotated[
        GrantState | None,
        typer.Option(
            parser=_state,
            metavar="STATE",
            help=f"Only grants in this state: {', '.join(_STATES)}.",
            autocompletion=lambda: _STATES,
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="Show at most this many, newest first; 0: all.")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """List grants, newest first, or show one grant."""
    if grant_id and (project or state):
        raise typer.BadParameter("--project and --state filter the list; leave them out with GRANT_ID")
    with _session(ctx, as_json) as (client, out):
        now = _now()
        if grant_id:
            grant = client.get_grant(grant_id)
            out.result(grant, render.grant_details(grant, now))
            return
        listed = client.list_grants(project, state)
        # One more than shown tells whether there are more, without fetching them all.
        found = list(itertools.islice(listed, limit + 1)) if limit else list(listed)
        shown = found[:limit] if limit else found
        table = render.grants_table(shown, now)
        if len(found) > len(shown):
            table.caption = f"the newest {limit}; --limit 0 shows all"
        out.result(shown, table)


@app.command(epilog=_examples("slicectl release gr_01jd5x8k2m9q4r7t3v6w0y1z2a"))
def release(
    ctx: typer.Context,
    grant_id: Annotated[str, typer.Argument(metavar="GRANT_ID", help="The grant to end.", show_default=False)],
    as_json: JsonFlag = False,
) -> None:
    """End a grant and free its devices. Releasing an ended grant changes nothing."""
    with _session(ctx, as_json) as (client, out):
        grant = client.release_grant(grant_id)
        out.result(grant, render.grant_details(grant, _now()))


@app.command(epilog=_examples("slicectl renew gr_01jd5x8k2m9q4r7t3v6w0y1z2a --lease 2h"))
def renew(
    ctx: typer.Context,
    grant_id: Annotated[str, typer.Argument(metavar="GRANT_ID", help="The grant to extend.", show_default=False)],
    lease: LeaseOption,
    as_json: JsonFlag = False,
) -> None:
    """Extend a live grant's lease to LEASE from now."""
    with _session(ctx, as_json) as (client, out):
        grant = client.renew_grant(grant_id, lease)
        out.result(grant, render.grant_details(grant, _now()))


@app.command(
    epilog=_examples(
        "slicectl usage",
        "slicectl usage --institution snu",
        "slicectl usage --project snu-llm --sku H100-SXM-80GB --json",
    )
)
def usage(
    ctx: typer.Context,
    institution: Annotated[str | None, typer.Option("--institution", "-i", help="Only this institution.")] = None,
    project: Annotated[str | None, typer.Option("--project", "-p", help="Only this project.")] = None,
    sku: Annotated[str | None, typer.Option("--sku", "-s", help="Only this SKU.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Device-hours used per institution, project and SKU: closed (ended grants) and running, with totals."""
    with _session(ctx, as_json) as (client, out):
        result = client.usage(institution, project, sku)
        out.result(result, render.usage_table(result))


@app.command(epilog=_examples("slicectl projects", "slicectl projects --institution kaist --json"))
def projects(
    ctx: typer.Context,
    institution: Annotated[str | None, typer.Option("--institution", "-i", help="Only this institution's.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Projects with their devices in use and caps per SKU."""
    with _session(ctx, as_json) as (client, out):
        listed = client.projects(institution)
        out.result(listed, render.projects_table(listed))


@app.command(epilog=_examples("slicectl institutions"))
def institutions(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Institutions that hold projects."""
    with _session(ctx, as_json) as (client, out):
        listed = client.institutions()
        out.result(listed, render.institutions_table(listed))


@app.command(epilog=_examples("slicectl skus", "slicectl skus --json"))
def skus(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Accelerator models the facility knows."""
    with _session(ctx, as_json) as (client, out):
        listed = client.skus()
        out.result(listed, render.skus_table(listed))


quota_commands.register(app)
inventory_commands.register(app)


def main() -> None:
    """Entry point of the `slicectl` console script."""
    app(prog_name="slicectl")
