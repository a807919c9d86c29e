"""slicectl usage / export / statements and the SDK's accounting against a real accounting server
over real Redis: the `--json` shapes and human error messages as golden files (rewrite them with
`SLICEBROKER_UPDATE_GOLDEN=1`), exports that match the service's bytes and reconcile with the
statements, progress as chunks arrive, and tenants kept to their own institution."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import grpc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from slicebroker.accounting.main import build
from slicebroker.accounting.settings import AccountingSettings
from slicebroker.cli.main import app
from slicebroker.client import Client, ClientOptions, InvalidArgumentError, PermissionDeniedError
from slicebroker.client._accounting import ExportProgress
from slicebroker.v1 import accounting_pb2, accounting_pb2_grpc
from tests.api.accounting.test_billing_api import BOOK, export, month_of_use

GOLDEN = Path(__file__).with_name("golden")
UPDATE = bool(os.environ.get("SLICEBROKER_UPDATE_GOLDEN"))
TOKENS = (
    "admin-token: {name: ops, role: facility-admin}\n"
    "snu-token: {name: snu-admin, role: institution-admin, institution: snu}\n"
)


@dataclass
class Centre:
    address: str
    stub: Any

    def env(self, token: str = "admin-token") -> dict[str, str]:
        return {"SLICEBROKER_ACCOUNTING_ADDR": self.address, "SLICEBROKER_TOKEN": token}


@pytest.fixture
async def centre(redis_url: str, start_service: Any, tmp_path: Path) -> AsyncIterator[Centre]:
    """An accounting server holding November 2025 (60 grants of three institutions), book v1."""
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(TOKENS)
    settings = AccountingSettings(redis_url=redis_url, listen="127.0.0.1:0", auth_tokens_file=tokens)
    running = await start_service(build, settings)
    admin = [("authorization", "Bearer admin-token")]
    async with grpc.aio.insecure_channel(running.address) as channel:
        stub = accounting_pb2_grpc.AccountingServiceStub(channel)
        await stub.PublishPriceBook(accounting_pb2.PublishPriceBookRequest(book=BOOK), metadata=admin, timeout=5)
        events = month_of_use()
        for i in range(0, len(events), 50):
            request = accounting_pb2.IngestEventsRequest(events=events[i : i + 50])
            await stub.IngestEvents(request, metadata=admin, timeout=10)
        yield Centre(running.address, _Authed(stub, admin))


class _Authed:
    """The stub with the admin's token on every call (what the billing tests' helpers call)."""

    def __init__(self, stub: Any, metadata: list[tuple[str, str]]) -> None:
        self._stub, self._md = stub, metadata

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._stub, name)
        return lambda request, **kw: method(request, metadata=self._md, **kw)


async def slicectl(*args: str, env: dict[str, str]) -> Result:
    """slicectl in a thread (the server runs on this test's event loop), with exactly `env`."""
    full_env: dict[str, str | None] = {
        name: None
        for name in (
            "SLICEBROKER_BROKER_ADDR",
            "SLICEBROKER_INVENTORY_ADDR",
            "SLICEBROKER_QUOTA_ADDR",
            "SLICEBROKER_TIMEOUT_S",
            "SLICEBROKER_PROFILE",
            "SLICEBROKER_TLS_CA_FILE",
            "SLICEBROKER_TLS_CERT_FILE",
            "SLICEBROKER_TLS_KEY_FILE",
        )
    }
    full_env["SLICEBROKER_CONFIG"] = os.devnull
    full_env.update(env)
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=full_env)


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    actual = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", actual)
    actual = re.sub(r'"request_id": "[0-9a-f]+"', '"request_id": "REQUEST_ID"', actual)
    if UPDATE or not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual)
        if not UPDATE:
            pytest.fail(f"wrote the new golden file {path}; check it in and run again")
    assert actual == path.read_text(), f"{name} differs from its golden file (see the module docstring)"


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def document(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def test_usage_shows_cost_per_project_and_sku_and_a_daily_chart(centre: Centre) -> None:
    report = document(await slicectl("usage", "--period", "2025-11", "--json", env=centre.env()))
    check_golden("json-shape-usage.json", json.dumps(shape(report), indent=2) + "\n")
    assert (report["period"], report["currency"], report["book_version"]) == ("2025-11", "KRW", 1)
    assert {r["institution"] for r in report["costs"]} == {"kaist", "snu", "samsung"}
    assert [d["day"] for d in report["daily"]] == [f"2025-11-{d:02d}" for d in range(1, 31)]
    by_day = sum(Decimal(d["cost"]) for d in report["daily"])
    assert by_day == sum(Decimal(r["cost"]) for r in report["costs"]) > 0
    # The device-hours table of `Client.usage` is still there, rows and as_of.
    assert {r["institution"] for r in report["rows"]} == {"kaist", "snu", "samsung"}

    human = await slicectl("usage", "--period", "2025-11", env=centre.env())
    assert human.exit_code == 0, human.output
    assert "cost in 2025-11 (price book v1" in human.stdout
    assert "accelerator-hours per day, 2025-11-01 .. 2025-11-30" in human.stdout
    (chart,) = [line for line in human.stdout.splitlines() if set(line.strip()) <= set("▁▂▃▄▅▆▇█") and line.strip()]
    assert len(chart.strip()) == 30 and "█" in chart

    own = document(await slicectl("usage", "--period", "2025-11", "--json", env=centre.env("snu-token")))
    assert {r["institution"] for r in own["costs"]} == {"snu"}
    assert {r["institution"] for r in own["rows"]} == {"snu"}


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "focus-csv", "focus-parquet"])
async def test_export_writes_the_services_bytes_and_reports_them(centre: Centre, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"nov.{fmt}"
    summary = document(
        await slicectl("export", "--format", fmt, "--period", "2025-11", "-o", str(out), "--json", env=centre.env())
    )
    expected = await export(centre.stub, fmt)
    assert out.read_bytes() == expected
    assert not out.with_name(out.name + ".part").exists()
    assert (summary["format"], summary["period"], summary["bytes"], summary["path"]) == (
        fmt,
        "2025-11",
        len(expected),
        str(out),
    )
    rows = pq.read_table(out).num_rows if fmt == "focus-parquet" else len(expected.decode().splitlines())
    assert summary["rows"] == rows - (1 if fmt in ("csv", "focus-csv") else 0)
    if fmt == "focus-csv":
        check_golden("json-shape-export.json", json.dumps(shape(summary), indent=2) + "\n")
    human = await slicectl("export", "-f", fmt, "--period", "2025-11", "-o", str(out), env=centre.env())
    assert human.exit_code == 0, human.output
    assert f"of {fmt} for 2025-11 to {out}" in human.stdout


async def test_statements_close_and_reconcile_with_the_focus_export(centre: Centre, tmp_path: Path) -> None:
    closed = document(await slicectl("statements", "--period", "2025-11", "--close", "--json", env=centre.env()))
    check_golden("json-shape-statements.json", json.dumps(shape(closed), indent=2) + "\n")
    again = document(await slicectl("statements", "--period", "2025-11", "--json", env=centre.env()))
    assert again == closed
    out = tmp_path / "focus.csv"
    assert (await slicectl("export", "--period", "2025-11", "-o", str(out), env=centre.env())).exit_code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert sum(Decimal(r["BilledCost"]) for r in rows) == sum(Decimal(s["total"]) for s in closed)

    snu = document(await slicectl("statements", "--period", "2025-11", "--json", env=centre.env("snu-token")))
    assert [s["institution"] for s in snu] == ["snu"]
    human = await slicectl("statements", "--period", "2025-11", "--lines", env=centre.env("snu-token"))
    assert human.exit_code == 0, human.output
    assert "snu 2025-11" in human.stdout and "Usage" in human.stdout


@pytest.mark.parametrize(
    ("case", "args", "token"),
    [
        ("export-other-institution", ["export", "--period", "2025-11", "-i", "kaist", "-o", "x.csv"], "snu-token"),
        ("export-bad-period", ["export", "--period", "2025-13", "-o", "x.csv"], "admin-token"),
        ("statements-open-period", ["statements", "--period", "2025-12"], "admin-token"),
        ("close-as-tenant", ["statements", "--period", "2025-11", "--close"], "snu-token"),
    ],
)
async def test_refusals_read_as_golden_messages(
    centre: Centre, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, args: list[str], token: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for as_json in (False, True):
        result = await slicectl(*args, *(["--json"] if as_json else []), env=centre.env(token))
        assert result.exit_code == 1, result.output
        assert result.stdout == ""
        check_golden(f"error-{case}.{'json' if as_json else 'txt'}", result.stderr)
    # A refused export leaves no file behind, not even a partial one.
    assert list(work.iterdir()) == []


async def test_an_unknown_format_is_a_usage_error(centre: Centre) -> None:
    result = await slicectl("export", "--format", "xml", "--period", "2025-11", "-o", "x", env=centre.env())
    assert result.exit_code == 2


async def test_sdk_streams_chunks_with_progress_and_costs(centre: Centre) -> None:
    def run() -> tuple[bytes, list[ExportProgress], Any, Any]:
        seen: list[ExportProgress] = []
        options = ClientOptions(accounting_addr=centre.address, token="admin-token")
        with Client(options) as client:
            data = b"".join(client.export("2025-11", "focus-csv", on_progress=seen.append))
            report = client.costs(datetime(2025, 11, 1, tzinfo=UTC), datetime(2025, 12, 1, tzinfo=UTC), ("sku",))
            quote = client.rate("H100-SXM-80GB", 2, timedelta(hours=3), institution="samsung")
        return data, seen, report, quote

    data, seen, report, quote = await asyncio.to_thread(run)
    assert data == await export(centre.stub, "focus-csv")
    assert seen and seen[-1].bytes == len(data) and seen[-1].rows == len(data.decode().splitlines()) - 1
    assert all(a.bytes <= b.bytes and a.rows <= b.rows for a, b in pairwise(seen))
    assert report.group_by == ("sku",) and report.total_cost > 0
    assert (quote.tier, quote.cost) == ("industry", 2 * 3 * 9000)

    def refused() -> None:
        with Client(ClientOptions(accounting_addr=centre.address, token="snu-token")) as client:
            with pytest.raises(PermissionDeniedError):
                b"".join(client.export("2025-11", "csv", institution="kaist"))
            with pytest.raises(InvalidArgumentError) as bad:
                client.export("Nov", "csv")
            assert bad.value.field == "period"

    await asyncio.to_thread(refused)
