"""`slicectl quote` (what a request would cost and when it would start) and `slicectl watch` (grant
changes as they happen), with the request flags `request` and `quote` share. Registered on the main
app by `register(app)`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from slicebroker.cli import _render as render
from slicebroker.cli._render import Output
from slicebroker.client import Client, GrantChange, HostResources, Placement, Quote, Shape
from slicebroker.client._lease import lease_to_timedelta

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document (the SDK's result) instead.")]


def _lease(value: str | timedelta) -> timedelta:
    try:
        return lease_to_timedelta(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


# -- the request flags (request and quote) -------------------------------------------------------------

Project = Annotated[str, typer.Option("--project", "-p", help="Project the devices are for.")]
SkuFlag = Annotated[str, typer.Option("--sku", "-s", help="Accelerator model; `slicectl skus` lists them.")]
Count = Annotated[int, typer.Option("--count", "-n", min=1, help="Whole devices (or slices with --mig/--npu/--share).")]
LeaseFlag = Annotated[
    timedelta,
    typer.Option(
        parser=_lease,
        metavar="DURATION",
        help="Lease length: 2h, 30m, 3600s, 1h30m or plain seconds.",
        show_default=False,
    ),
]
PlacementFlag = Annotated[
    Placement, typer.Option(help="Keep a gang together (same-node, same-nvlink-domain, same-leaf) or apart (spread).")
]
Preferred = Annotated[
    bool, typer.Option("--preferred", help="Treat --placement as a preference rather than a requirement.")
]
PerMember = Annotated[
    int,
    typer.Option(
        "--per-member",
        metavar="N",
        min=0,
        help="Devices per gang member, each member's on one node (--count must be a multiple; "
        "--placement then applies to members).",
    ),
]
Alternatives = Annotated[
    list[str] | None,
    typer.Option(
        "--alternative",
        "-a",
        metavar="SKU[:COUNT]",
        help="Another acceptable accelerator, tried in order if the first cannot be had (repeatable).",
    ),
]
Priority = Annotated[
    str, typer.Option(help="guaranteed, standard or preemptible (may borrow idle capacity, may be preempted).")
]
Mig = Annotated[str | None, typer.Option(metavar="PROFILE", help="MIG partitions, e.g. 1g.10gb.")]
Npu = Annotated[str | None, typer.Option(metavar="PROFILE", help="NPU partitions, e.g. 2core.12gb.")]
ShareFlag = Annotated[
    float | None, typer.Option(metavar="FRACTION", min=0.001, max=0.999, help="Shares of one device, e.g. 0.25.")
]
Cpu = Annotated[
    float, typer.Option(metavar="CORES", min=0, help="Host CPU cores on the node with each slice, e.g. 8 or 0.5.")
]
Memory = Annotated[
    str, typer.Option(metavar="AMOUNT", help="Host memory on the node with each slice, e.g. 64Gi, 512Mi.")
]


def shape_of(mig: str | None, npu: str | None, share: float | None) -> Shape | None:
    shapes = [s for s in (mig and Shape.mig(mig), npu and Shape.npu(npu), share and Shape.share(share)) if s]
    if len(shapes) > 1:
        raise typer.BadParameter("choose one of --mig, --npu and --share")
    return shapes[0] if shapes else None


def host_of(cpu: float, memory: str) -> HostResources | None:
    try:
        host = HostResources.of(cpu=cpu, memory=memory or 0)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--memory") from None
    return host or None


def alternative(text: str, count: int) -> tuple[str, int]:
    sku, _, n = text.partition(":")
    if n and not n.isdigit():
        raise typer.BadParameter(f"{text!r}: expected SKU or SKU:COUNT")
    return sku, int(n) if n else count


def start_after_of(text: str | None) -> datetime | None:
    """An ISO time ("2026-12-01T09:00", UTC unless it names a zone) or a delay from now ("2h")."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        try:
            return datetime.now(UTC) + lease_to_timedelta(text)
        except ValueError:
            raise typer.BadParameter(
                f"{text!r}: give an ISO time (2026-12-01T09:00Z) or a delay (2h, 30m)", param_hint="--start-after"
            ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


StartAfter = Annotated[
    str | None,
    typer.Option(
        metavar="WHEN",
        help="Serve no earlier than this: an ISO time (UTC unless it names a zone) or a delay such as 2h. "
        "The request waits in the queue until then.",
        show_default=False,
    ),
]


@contextmanager
def _session(ctx: typer.Context, as_json: bool) -> Iterator[tuple[Client, Output]]:
    # Deferred: main imports this module to register it.
    from slicebroker.cli.main import _session as session

    with session(ctx, as_json) as pair:
        yield pair


# -- rendering -------------------------------------------------------------------------------------


def _money(amount: float, currency: str) -> str:
    return f"{amount:,.2f} {currency}" if currency else "—"


def quote_details(quote: Quote, now: datetime) -> Table:
    rows: list[tuple[str, str]] = [("sku", f"{quote.sku} × {quote.count}")]
    if quote.refused:
        rows.append(("refused", f"{quote.refusal_reason}: {quote.refusal_message}"))
    rows.append(("cost", _money(quote.cost, quote.currency)))
    if quote.currency:
        rows.append(("per hour", _money(quote.cost_per_hour, quote.currency)))
        rows.append(("price", f"{quote.price_tier} tier, price book v{quote.price_book_version}"))
    rows.append(("accelerator-hours", f"{quote.accelerator_hours:g}"))
    if quote.available_now:
        rows.append(("start", "now"))
    elif not quote.refused:
        start = quote.estimated_start
        rows.append(("start", f"{render.when(start)} ({render.until(start, now)})" if start else "unknown"))
        rows.append(("queue", f"position {quote.queue_position}: {quote.waiting_reason}"))
    for i, warning in enumerate(quote.warnings):
        rows.append(("warnings" if i == 0 else "", warning))
    return render.details(rows)


def change_line(change: GrantChange) -> str:
    """One line per change: when, what, which grant, and what it holds."""
    at = render.when(change.at) if change.at else "-"
    grant = change.grant
    if grant is None:
        return f"{at}  {change.type.value}" + (f"  revision {change.revision}" if change.revision else "")
    what = f"{grant.sku} × {grant.count}"
    parts = [at, change.type.value, grant.id, grant.project, what, grant.state.value]
    if grant.preemption_deadline is not None:
        parts.append(f"preempted at {render.when(grant.preemption_deadline)}: {grant.preemption_reason}")
    elif grant.waiting_reason and grant.state.value == "queued":
        parts.append(grant.waiting_reason)
    return "  ".join(parts)


# -- commands --------------------------------------------------------------------------------------


def quote(
    ctx: typer.Context,
    project: Project,
    sku: SkuFlag,
    count: Count = 1,
    lease: LeaseFlag = timedelta(hours=1),
    placement: PlacementFlag = Placement.ANYWHERE,
    preferred: Preferred = False,
    per_member: PerMember = 0,
    alternatives: Alternatives = None,
    priority: Priority = "",
    mig: Mig = None,
    npu: Npu = None,
    share: ShareFlag = None,
    cpu: Cpu = 0,
    memory: Memory = "",
    as_json: JsonFlag = False,
) -> None:
    """What a request would cost and when it would likely start — nothing is submitted. Takes the
    flags of `slicectl request`. Over quota or budget, the answer says so (exit code 0)."""
    shape = shape_of(mig, npu, share)
    host = host_of(cpu, memory)
    others = [alternative(a, count) for a in alternatives or []]
    with _session(ctx, as_json) as (client, out):
        result = client.quote(
            project,
            sku,
            count,
            lease,
            placement=placement,
            required=not preferred,
            alternatives=others,
            priority=priority,
            shape=shape,
            host=host,
            devices_per_member=per_member,
        )
        out.result(result, quote_details(result, datetime.now(UTC)))


def watch(
    ctx: typer.Context,
    grant_id: Annotated[
        str | None, typer.Argument(metavar="GRANT_ID", help="Only this grant.", show_default=False)
    ] = None,
    project: Annotated[str | None, typer.Option("--project", "-p", help="Only this project's grants.")] = None,
    from_revision: Annotated[
        str, typer.Option(metavar="REVISION", help="Resume after this revision (from an earlier --json line).")
    ] = "",
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON document per change (JSON Lines), with its revision.")
    ] = False,
) -> None:
    """Grant changes as they happen (granted, renewed, preemption notice, expired, released, ...),
    one line each, until Ctrl-C. Starts with the live grants (a snapshot) unless --from-revision
    is given; reconnects by itself after a broker restart without missing or repeating a change."""
    with _session(ctx, as_json) as (client, out):
        try:
            for change in client.watch(project=project, grant_id=grant_id, from_revision=from_revision):
                if out.as_json:
                    typer.echo(json.dumps(render.jsonable(change), separators=(",", ":")))
                else:
                    typer.echo(change_line(change))
        except KeyboardInterrupt:
            raise typer.Exit(130) from None


def _examples(*commands: str) -> str:
    return "Examples:\n\n" + "\n".join(f"  $ {c}" for c in commands)


def register(app: typer.Typer) -> None:
    app.command(
        epilog=_examples(
            "slicectl quote -p snu-llm -s H100-SXM-80GB -n 8 --lease 12h",
            "slicectl quote -p snu-llm -s H200-SXM-141GB -n 32 --placement same-leaf -a H100-SXM-80GB:32 --json",
            "slicectl quote -p snu-bio -s H100-SXM-80GB --share 0.25 --cpu 4 --memory 32Gi",
        )
    )(quote)
    app.command(
        epilog=_examples(
            "slicectl watch --project snu-llm",
            "slicectl watch gr_01jd5x8k2m9q4r7t3v6w0y1z2a",
            "slicectl watch -p snu-llm --json --from-revision 1764288000000-0",
        )
    )(watch)
