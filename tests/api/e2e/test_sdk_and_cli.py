"""The product's face against the real mesh: the SDK and slicectl, as the README tells people to use
them, over a mesh of real processes with authentication on (what `make run` starts)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from slicebroker.cli.main import app
from slicebroker.client import (
    AsyncClient,
    Client,
    ClientOptions,
    InvalidArgumentError,
    ResourceExhaustedError,
    Shape,
    UnauthenticatedError,
)
from slicebroker.mesh.demo import load_demo, publish_price_book
from slicebroker.mesh.launcher import Mesh

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    # Its own Redis, as `make run` has: other tests flush the shared one.
    m = Mesh(run_dir=tmp_path_factory.mktemp("run"))
    m.start()
    try:
        m.wait_serving()
        load_demo(m, ROOT / "examples" / "facility.yaml", ROOT / "examples" / "tenants.yaml")
        assert publish_price_book(m, ROOT / "examples" / "pricebook.yaml") == 1
        # Published once: a restarted demo keeps its book.
        assert publish_price_book(m, ROOT / "examples" / "pricebook.yaml") == 1
        yield m
    finally:
        m.stop()


@pytest.fixture
def env(mesh: Mesh) -> dict[str, str]:
    lines = [line.removeprefix("export ") for line in mesh.env_file().splitlines()]
    return dict(line.split("=", 1) for line in lines)


def options(env: dict[str, str]) -> ClientOptions:
    return ClientOptions(
        broker_addr=env["SLICEBROKER_BROKER_ADDR"],
        inventory_addr=env["SLICEBROKER_INVENTORY_ADDR"],
        quota_addr=env["SLICEBROKER_QUOTA_ADDR"],
        accounting_addr=env["SLICEBROKER_ACCOUNTING_ADDR"],
        token=env["SLICEBROKER_TOKEN"],
        tls_ca_file=env["SLICEBROKER_TLS_CA_FILE"],
        tls_cert_file=env["SLICEBROKER_TLS_CERT_FILE"],
        tls_key_file=env["SLICEBROKER_TLS_KEY_FILE"],
    )


def test_the_demo_price_book_prices_quotes_by_tier(env: dict[str, str]) -> None:
    with Client(options(env)) as sb:
        academic = sb.quote("snu-llm", "H100-SXM-80GB", 2, lease="1h")
        industry = sb.quote("hanbit-chat", "H200-SXM-141GB", 2, lease="1h")
        mig = sb.quote("snu-llm", "H100-SXM-80GB", 1, lease="1h", shape=Shape.mig("1g.10gb"))
    assert (academic.currency, academic.price_tier, academic.cost) == ("KRW", "academic", 6400)
    assert academic.accelerator_hours == 2 and academic.available_now
    assert (industry.price_tier, industry.cost) == ("industry", 14400)
    assert mig.cost == 457


def test_sdk_request_list_release_and_usage(env: dict[str, str]) -> None:
    with Client(options(env)) as sb:
        free_before = {c.sku: c.free for c in sb.capacity()}
        grant = sb.request_grant("snu-llm", "H100-SXM-80GB", count=8, lease="1h", idempotency_key="e2e-1")
        assert grant.state.value == "active" and len(grant.slices) == 8
        assert sb.request_grant("snu-llm", "H100-SXM-80GB", count=8, lease="1h", idempotency_key="e2e-1").id == grant.id
        assert {c.sku: c.free for c in sb.capacity()}["H100-SXM-80GB"] == free_before["H100-SXM-80GB"] - 8
        assert grant.id in [g.id for g in sb.list_grants(project="snu-llm")]
        ended = sb.release_grant(grant.id)
        assert ended.state.value == "ended"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rows = sb.usage(project="snu-llm").rows
            if rows and rows[0].grants >= 1:
                break
            time.sleep(0.05)
        assert rows and rows[0].institution == "snu"


def test_sdk_errors_carry_the_reason_and_field(env: dict[str, str]) -> None:
    with Client(options(env)) as sb:
        with pytest.raises(InvalidArgumentError) as bad:
            sb.request_grant("snu-llm", "H900", count=1, lease="1h")
        assert bad.value.field == "sku" and bad.value.reason == "UNKNOWN_SKU"
        with pytest.raises(ResourceExhaustedError) as over:
            sb.request_grant("snu-class", "H100-SXM-80GB", count=9, lease="1h")
        assert over.value.reason == "QUOTA_EXCEEDED"
    with Client(replace(options(env), token="wrong")) as sb, pytest.raises(UnauthenticatedError):
        sb.capacity()


async def test_async_sdk_round_trip(env: dict[str, str]) -> None:
    async with AsyncClient(options(env)) as sb:
        grant = await sb.request_grant("kaist-npu-compiler", "RNGD", count=2, lease=600)
        renewed = await sb.renew_grant(grant.id, "2h")
        assert renewed.expires_at > grant.expires_at
        assert (await sb.release_grant(grant.id)).state.value == "ended"


def test_slicectl_request_grants_release_usage_as_the_readme_says(env: dict[str, str]) -> None:
    runner = CliRunner()
    inv = runner.invoke(app, ["inventory"], env=env)
    assert inv.exit_code == 0, inv.output
    assert "H100-SXM-80GB" in inv.output and "RNGD" in inv.output

    req = runner.invoke(app, ["--json", "request", "--project", "kaist-vision", "--sku", "H100-SXM-80GB",
                              "--count", "2", "--lease", "30m"], env=env)  # fmt: skip
    assert req.exit_code == 0, req.output
    grant = json.loads(req.output)
    assert grant["state"] == "active" and len(grant["slices"]) == 2

    listed = runner.invoke(app, ["grants", "--project", "kaist-vision"], env=env)
    assert listed.exit_code == 0 and grant["id"] in listed.output

    rel = runner.invoke(app, ["--json", "release", grant["id"]], env=env)
    assert rel.exit_code == 0 and json.loads(rel.output)["state"] == "ended"

    usage = runner.invoke(app, ["usage", "--institution", "kaist"], env=env)
    assert usage.exit_code == 0, usage.output

    bad = runner.invoke(app, ["request", "--project", "kaist-vision", "--sku", "H900", "--count", "1"], env=env)
    assert bad.exit_code == 1
    assert "UNKNOWN_SKU" in bad.output


def test_slicectl_asks_for_slices_gangs_and_alternatives(env: dict[str, str]) -> None:
    runner = CliRunner()
    mig = runner.invoke(
        app, ["--json", "request", "-p", "snu-class", "-s", "H100-SXM-80GB", "-n", "7", "--mig", "1g.10gb"], env=env
    )
    assert mig.exit_code == 0, mig.output
    grant = json.loads(mig.output)
    assert {(s["kind"], s["profile"]) for s in grant["slices"]} == {("mig", "1g.10gb")}
    assert len({s["device_id"] for s in grant["slices"]}) == 1

    gang = runner.invoke(
        app,
        ["--json", "request", "-p", "kisti-climate", "-s", "H200-SXM-141GB", "-n", "8", "--placement", "same-node"],
        env=env,
    )
    assert gang.exit_code == 0, gang.output
    assert len({s["node_id"] for s in json.loads(gang.output)["slices"]}) == 1

    # snu-bio may not hold H200s: the H100 alternative is granted.
    alt = runner.invoke(
        app,
        ["--json", "request", "-p", "snu-bio", "-s", "H200-SXM-141GB", "-n", "2", "-a", "H100-SXM-80GB:1"],
        env=env,
    )
    assert alt.exit_code == 0, alt.output
    assert (json.loads(alt.output)["sku"], json.loads(alt.output)["count"]) == ("H100-SXM-80GB", 1)

    both = runner.invoke(
        app, ["request", "-p", "snu-bio", "-s", "H100-SXM-80GB", "--mig", "1g.10gb", "--share", "0.5"], env=env
    )
    assert both.exit_code == 2
