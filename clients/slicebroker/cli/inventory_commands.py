"""`slicectl inventory` (capacity, used and free per SKU and per hall, with utilisation bars) and
the facility part of `slicectl admin`: `admin facility generate | export | load`.
Registered on the main app by `register(app)`.

The generator is `slicebroker.core.facility_generator`, the same pure module the inventory's
benchmark and tests use; it lives in core because import-linter keeps the CLI off the services,
and it is imported only when `generate` runs, so that slicectl itself loads no service-side code
(tests/unit/client/test_exports.py) while generating still works without a running inventory."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from slicebroker.cli._render import Output
from slicebroker.client import Client
from slicebroker.client._inventory import GROUPS, CapacityRow

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document (the SDK's result) instead.")]
BAR_WIDTH = 20

facility_app = typer.Typer(help="Facility descriptions: generate, export, load.", no_args_is_help=True)


@contextmanager
def _session(ctx: typer.Context, as_json: bool) -> Iterator[tuple[Client, Output]]:
    # Deferred: main imports this module to register it.
    from slicebroker.cli.main import _session as session

    with session(ctx, as_json) as pair:
        yield pair


def bar(fraction: float, width: int = BAR_WIDTH) -> Text:
    """A utilisation bar: green below 70 %, yellow below 90 %, red above."""
    filled = round(max(0.0, min(fraction, 1.0)) * width)
    style = "green" if fraction < 0.7 else "yellow" if fraction < 0.9 else "red"
    text = Text("█" * filled, style=style)
    text.append("░" * (width - filled), style="dim")
    text.append(f" {fraction * 100:5.1f}%")
    return text


def capacity_rows_table(rows: Iterable[CapacityRow], group: str) -> Table:
    numeric = ["NODES", "DEVICES", "USED", "FREE", "UNHEALTHY", "CORDONED", "FREE UNITS"]
    columns = ([group.upper()] if group else []) + ["SKU", *numeric, "UTILISATION"]
    table = Table(*columns, box=box.SIMPLE, show_edge=False, pad_edge=False)
    for column in table.columns:
        if column.header in numeric:
            column.justify = "right"
    for r in rows:
        cells: list[str | Text] = [r.group] if group else []
        cells += [
            r.sku,
            str(r.nodes),
            str(r.devices),
            str(r.held + r.sliced),
            str(r.free),
            Text(str(r.unhealthy), style="red" if r.unhealthy else ""),
            Text(str(r.cordoned), style="yellow" if r.cordoned else ""),
            f"{r.free_units:,.1f}",
            bar(r.utilization),
        ]
        table.add_row(*cells)
    return table


def _by(value: str) -> str:
    if value not in GROUPS[1:]:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(GROUPS[1:])}")
    return value


def inventory(
    ctx: typer.Context,
    nodes: Annotated[bool, typer.Option("--nodes", help="List nodes instead of capacity.")] = False,
    sku: Annotated[str | None, typer.Option("--sku", "-s", help="Only this SKU.")] = None,
    by: Annotated[
        str, typer.Option("--by", parser=_by, metavar="GROUP", help="Second table per site, hall, pod, rack or leaf.")
    ] = "hall",
    hall: Annotated[str | None, typer.Option(help="Only this hall.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Capacity, used and free per SKU and per hall (or --by rack, leaf ...), with utilisation bars."""
    from slicebroker.cli import _render as render

    with _session(ctx, as_json) as (client, out):
        if nodes:
            listed = list(client.nodes(sku))
            out.result(listed, render.nodes_table(listed))
            return
        where = {k: v for k, v in (("sku", sku), ("hall", hall)) if v}
        per_sku = client.capacity_by("", **where)
        per_group = client.capacity_by(by, **where)
        out.result(
            {"skus": per_sku, by: per_group},
            Group(
                Text("per SKU", style="bold"),
                capacity_rows_table(per_sku, ""),
                Text(f"per {by}", style="bold"),
                capacity_rows_table(per_group, by),
            ),
        )


def _counts(values: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        sku, sep, count = value.partition("=")
        if not sep or not count.isdigit():
            raise typer.BadParameter(f"{value!r} is not SKU=COUNT")
        counts[sku] = counts.get(sku, 0) + int(count)
    return counts


@facility_app.command(
    epilog="Examples:\n\n  $ slicectl admin facility generate --gpus 18000 > centre.yaml\n"
    "  $ slicectl admin facility generate --gpus 12000 --gpu-sku H200-SXM-141GB --npus 4000 --npu-sku RNGD "
    "--sku ATOM=2000 -o centre.yaml"
)
def generate(
    gpus: Annotated[int, typer.Option(min=0, help="GPUs of --gpu-sku.")] = 0,
    gpu_sku: Annotated[str, typer.Option(help="SKU of the --gpus.")] = "H100-SXM-80GB",
    npus: Annotated[int, typer.Option(min=0, help="NPUs of --npu-sku.")] = 0,
    npu_sku: Annotated[str, typer.Option(help="SKU of the --npus.")] = "RNGD",
    sku: Annotated[list[str] | None, typer.Option("--sku", help="More devices as SKU=COUNT (repeatable).")] = None,
    devices_per_node: Annotated[int, typer.Option(min=1, max=64)] = 8,
    nodes_per_rack: Annotated[int, typer.Option(min=1)] = 4,
    nodes_per_leaf: Annotated[int, typer.Option(min=1, help="Nodes under one InfiniBand leaf (a pod).")] = 32,
    leaves_per_hall: Annotated[int, typer.Option(min=1)] = 16,
    site: Annotated[str, typer.Option()] = "daejeon",
    name: Annotated[str, typer.Option(help="The facility's label.")] = "synthetic",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """A synthetic facility shaped like a real centre: 8-device nodes, 32 nodes per leaf, halls
    of GPUs and halls of NPUs. Prints facility YAML that `admin facility load` takes."""
    from slicebroker.core.facility_generator import FacilityShape, generate_yaml

    devices: dict[str, int] = {}
    for key, count in ((gpu_sku, gpus), (npu_sku, npus)):
        if count:
            devices[key] = devices.get(key, 0) + count
    for key, count in _counts(sku or []).items():
        devices[key] = devices.get(key, 0) + count
    if not devices:
        raise typer.BadParameter("give --gpus, --npus or --sku SKU=COUNT")
    shape = FacilityShape(devices_per_node, nodes_per_rack, nodes_per_leaf, leaves_per_hall, site, name)
    try:
        text = generate_yaml(devices, shape)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        typer.echo(f"wrote {out} ({sum(devices.values()):,} devices)", err=True)


@facility_app.command(epilog="Examples:\n\n  $ slicectl admin facility export -o facility.yaml")
def export(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """The registered facility as facility YAML; loading it back changes nothing."""
    with _session(ctx, as_json) as (client, output):
        exported = client.export_facility()
        if as_json:
            output.result(exported)
        elif out is None:
            typer.echo(exported.yaml, nl=False)
        else:
            out.write_text(exported.yaml)
            typer.echo(f"wrote {out} ({exported.nodes:,} nodes, {exported.devices:,} devices)", err=True)


@facility_app.command(epilog="Examples:\n\n  $ slicectl admin facility load centre.yaml")
def load(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Facility YAML.")],
    as_json: JsonFlag = False,
) -> None:
    """Registers a facility description: all of it, or (on any problem) nothing."""
    with _session(ctx, as_json) as (client, output):
        loaded = client.load_facility(path.read_text())
        output.result(
            loaded,
            Text(
                f"{loaded.nodes_registered:,} nodes registered, {loaded.nodes_unchanged:,} unchanged, "
                f"{loaded.devices:,} devices"
            ),
        )


def register(app: typer.Typer) -> None:
    """Adds `inventory` and, under `admin` (created here unless another module made it), `facility`."""
    app.command(
        "inventory",
        epilog="Examples:\n\n  $ slicectl inventory\n  $ slicectl inventory --by leaf --hall hall-01\n"
        "  $ slicectl inventory --nodes --sku RNGD\n  $ slicectl inventory --json",
    )(inventory)
    admin = next((g.typer_instance for g in app.registered_groups if g.name == "admin"), None)
    if admin is None:
        admin = typer.Typer(help="Facility administration.", no_args_is_help=True)
        app.add_typer(admin, name="admin")
    admin.add_typer(facility_app, name="facility")
