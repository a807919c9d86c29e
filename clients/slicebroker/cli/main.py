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
from typing import Annotated, Any, NoReturn

import typer

from slicebroker.cli import _config as config
from slicebroker.cli import _render as render
from slicebroker.cli import (
    accounting_commands,
    config_commands,
    grant_commands,
    inventory_commands,
    quota_commands,
)
from slicebroker.cli._render import Output
from slicebroker.client import Client, ClientOptions, GrantState, Placement, SlicebrokerError
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

_CONNECTION = "Connection (flags > environment > config file profile)"
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
    profile: config.Profile
    sources: dict[str, str]
    """Where each connection setting came from: "flag", "env", "config" or "default"."""


_HELP = "\n\n".join(
    [
        "Share the centre's GPUs and NPUs: request, renew and release grants; see capacity and usage.",
        "Service addresses, the token and TLS files come from the flags, else from the environment "
        f"({ENV_BROKER_ADDR}, {ENV_INVENTORY_ADDR}, {ENV_QUOTA_ADDR}, {ENV_ACCOUNTING_ADDR}, {ENV_TOKEN}, ...), "
        f"else from a profile of the config file (${config.ENV_CONFIG}, default "
        "~/.config/slicebroker/config.toml): flags > environment > config file. "
        "`slicectl config show` prints what is in effect and where each value came from. "
        "After `make run`, `source .run/env` sets them all.",
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
        float | None,
        typer.Option(
            envvar=ENV_TIMEOUT,
            min=0.1,
            help=f"Seconds each call may take, retries included. [default: {DEFAULT_TIMEOUT:g}]",
            rich_help_panel=_CONNECTION,
            show_default=False,
        ),
    ] = None,
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
    profile: Annotated[
        str | None,
        typer.Option(
            envvar=config.ENV_PROFILE,
            metavar="NAME",
            help="Profile of the config file to use [default: its default_profile, else 'default'].",
            rich_help_panel=_CONNECTION,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Share the centre's GPUs and NPUs: request, renew and release grants; see capacity and usage."""
    if ctx.resilient_parsing:  # shell completion: nothing to connect to
        return
    try:
        chosen = config.load_profile(profile)
    except config.ConfigError as exc:
        _usage_error(f"config file: {exc}")
    given = {
        "broker_addr": broker_addr,
        "inventory_addr": inventory_addr,
        "quota_addr": quota_addr,
        "accounting_addr": accounting_addr,
        "token": token,
        "timeout": timeout,
        "tls_ca_file": tls_ca_file,
        "tls_cert_file": tls_cert_file,
        "tls_key_file": tls_key_file,
    }
    settings: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, value in given.items():
        if value is not None and value != "":
            settings[key] = value
            # Typer vendors its own click, so the enum is compared by name.
            source = ctx.get_parameter_source(key)
            sources[key] = "env" if source is not None and source.name == "ENVIRONMENT" else "flag"
        elif chosen.get(key) is not None:
            settings[key] = chosen.get(key)
            sources[key] = "config"
        else:
            sources[key] = "default"
    try:
        options = ClientOptions(**settings)
    except ValueError as exc:
        _usage_error(str(exc))
    ctx.obj = _Globals(options, as_json, chosen, sources)


def _usage_error(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


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
        "slicectl request -p kaist-vision -s H200-SXM-141GB -n 16 --queue",
        "slicectl request -p snu-llm -s H200-SXM-141GB -n 32 --placement same-leaf -a H100-SXM-80GB:32",
        "slicectl request -p snu-class -s H100-SXM-80GB -n 7 --mig 1g.10gb --priority preemptible",
        "slicectl request -p snu-bio -s H100-SXM-80GB --share 0.25",
        "slicectl request -p snu-llm -s H100-SXM-80GB -n 8 --cpu 16 --memory 128Gi --start-after 2h",
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
    queue: Annotated[
        bool,
        typer.Option(
            "--queue",
            help="Within quota but no capacity free: wait in the broker's queue (the grant is 'queued' "
            "until served; `slicectl grants GRANT_ID` shows its position) instead of being refused.",
        ),
    ] = False,
    placement: Annotated[
        Placement,
        typer.Option(help="Keep a gang together (same-node, same-nvlink-domain, same-leaf) or apart (spread)."),
    ] = Placement.ANYWHERE,
    preferred: Annotated[
        bool, typer.Option("--preferred", help="Treat --placement as a preference rather than a requirement.")
    ] = False,
    per_member: grant_commands.PerMember = 0,
    alternative: Annotated[
        list[str] | None,
        typer.Option(
            "--alternative",
            "-a",
            metavar="SKU[:COUNT]",
            help="Another acceptable accelerator, tried in order if the first cannot be had (repeatable).",
        ),
    ] = None,
    priority: Annotated[
        str, typer.Option(help="guaranteed, standard or preemptible (may borrow idle capacity, may be preempted).")
    ] = "",
    mig: Annotated[str | None, typer.Option(metavar="PROFILE", help="MIG partitions, e.g. 1g.10gb.")] = None,
    npu: Annotated[str | None, typer.Option(metavar="PROFILE", help="NPU partitions, e.g. 2core.12gb.")] = None,
    share: Annotated[
        float | None, typer.Option(metavar="FRACTION", min=0.001, max=0.999, help="Shares of one device, e.g. 0.25.")
    ] = None,
    cpu: grant_commands.Cpu = 0,
    memory: grant_commands.Memory = "",
    start_after: grant_commands.StartAfter = None,
    as_json: JsonFlag = False,
) -> None:
    """Request devices (or slices of them: --mig, --npu, --share) of one SKU for a project, for a
    lease (default 1h), with host CPU and memory per slice (--cpu, --memory); prints the grant.
    `slicectl quote` takes the same flags and says what it would cost."""
    shape = grant_commands.shape_of(mig, npu, share)
    host = grant_commands.host_of(cpu, memory)
    after = grant_commands.start_after_of(start_after)
    alternatives = [grant_commands.alternative(a, count) for a in alternative or []]
    with _session(ctx, as_json) as (client, out):
        grant = client.request_grant(
            project,
            sku,
            count,
            lease,
            idempotency_key,
            queue=queue,
            placement=placement,
            required=not preferred,
            alternatives=alternatives,
            priority=priority,
            shape=shape,
            host=host,
            start_after=after,
            devices_per_member=per_member,
        )
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


grant_commands.register(app)
quota_commands.register(app)
accounting_commands.register(app)
config_commands.register(app)
inventory_commands.register(app)


def main() -> None:
    """Entry point of the `slicectl` console script."""
    app(prog_name="slicectl")
