"""slicectl against a real (fake) gRPC mesh: tables for people, one JSON document with --json, errors on
stderr with a next step and exit code 1, usage errors with 2, and flags winning over the environment."""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from typing import Any

import grpc
import pytest
from typer.testing import CliRunner, Result

from slicebroker.cli import _render as render
from slicebroker.cli.main import app
from tests.unit.client.fakemesh import NOW, FakeMesh, closed_port, rich_status

ENV_NAMES = [
    "SLICEBROKER_BROKER_ADDR",
    "SLICEBROKER_INVENTORY_ADDR",
    "SLICEBROKER_QUOTA_ADDR",
    "SLICEBROKER_ACCOUNTING_ADDR",
    "SLICEBROKER_TOKEN",
    "SLICEBROKER_TIMEOUT_S",
    "SLICEBROKER_TLS_CA_FILE",
    "SLICEBROKER_TLS_CERT_FILE",
    "SLICEBROKER_TLS_KEY_FILE",
    "SLICEBROKER_PROFILE",
]


def slicectl(*args: str, env: dict[str, str] | None = None) -> Result:
    """Runs slicectl with exactly `env` as its SLICEBROKER_* environment (the caller's is hidden)."""
    full_env: dict[str, str | None] = dict.fromkeys(ENV_NAMES)
    # An empty config file, so that one on this machine cannot leak in.
    full_env["SLICEBROKER_CONFIG"] = os.devnull
    full_env.update(env or {})
    return CliRunner().invoke(app, list(args), env=full_env)


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def unboxed(text: str) -> str:
    """Text of a Rich panel, its borders and wrapping undone."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def lines_with(text: str, needle: str) -> list[list[str]]:
    """The lines holding `needle`, each split into its words (table cells)."""
    return [line.split() for line in text.splitlines() if needle in line]


def test_request_prints_the_grant(mesh: FakeMesh) -> None:
    result = slicectl(
        "request", "--project", "snu-llm", "--sku", "H100-SXM-80GB", "--count", "2", "--lease", "90m", env=mesh.env
    )
    assert result.exit_code == 0, result.output
    grant = mesh.broker.grants[0]
    assert grant.id in result.stdout
    assert "active" in result.stdout
    assert "H100-SXM-80GB × 2" in result.stdout
    assert "node-01: gpu0 gpu1" in result.stdout
    assert "2026-03-01 10:30:00Z" in result.stdout  # created 09:00 + 90m
    assert mesh.recorder.calls_of("RequestGrant")[0].request.lease.seconds == 5400


def test_request_json_is_the_sdk_grant(mesh: FakeMesh) -> None:
    document = as_json(
        slicectl("request", "-p", "snu-llm", "-s", "RNGD", "--idempotency-key", "lab3-team7", "--json", env=mesh.env)
    )
    assert document["idempotency_key"] == "lab3-team7"
    assert document["state"] == "active"
    assert document["slices"] == [{"node_id": "node-01", "device_id": "node-01/gpu0", "kind": "", "profile": ""}]
    assert document["created_at"] == "2026-03-01T09:00:00Z"
    assert document["expires_at"] == "2026-03-01T10:00:00Z"  # default lease 1h
    assert document["ended_at"] is None
    assert mesh.recorder.calls_of("RequestGrant")[0].request.idempotency_key == "lab3-team7"


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["request", "-p", "snu-llm", "-s", "RNGD", "--lease", "soon"], "--lease"),
        (["request", "-p", "snu-llm", "-s", "RNGD", "--count", "0"], "--count"),
        (["request", "-p", "snu-llm"], "--sku"),
        (["grants", "--state", "bogus"], "pending, active, ended, failed"),
        (["grants", "gr_x", "--project", "snu-llm"], "GRANT_ID"),
        (["renew", "gr_x"], "--lease"),
        (["nosuchcommand"], "nosuchcommand"),
    ],
)
def test_usage_errors_exit_2_and_call_nothing(mesh: FakeMesh, args: list[str], complaint: str) -> None:
    result = slicectl(*args, env=mesh.env)
    assert result.exit_code == 2
    assert complaint in unboxed(result.stderr)
    assert mesh.recorder.calls == []


def test_grants_table_filters_and_details(mesh: FakeMesh) -> None:
    for project in ("snu-llm", "snu-bio", "snu-llm"):
        slicectl("request", "-p", project, "-s", "RNGD", env=mesh.env)
    newest, _, oldest = (g.id for g in mesh.broker.grants)
    slicectl("release", oldest, env=mesh.env)

    table = slicectl("grants", env=mesh.env)
    assert table.exit_code == 0
    assert table.stdout.splitlines()[0].split() == ["GRANT", "PROJECT", "SKU", "COUNT", "STATE", "CREATED", "EXPIRES"]
    assert lines_with(table.stdout, oldest)[0][:5] == [oldest, "snu-llm", "RNGD", "1", "ended"]
    assert lines_with(table.stdout, oldest)[0][-1] == "released"

    filtered = as_json(slicectl("grants", "--project", "snu-llm", "--state", "active", "--json", env=mesh.env))
    assert [g["id"] for g in filtered] == [newest]
    request = mesh.recorder.calls_of("ListGrants")[-1].request
    assert (request.project, request.state) == ("snu-llm", 2)

    details = slicectl("grants", oldest, env=mesh.env)
    assert "ended" in details.stdout and "(released)" in details.stdout


def test_grants_limit_says_when_there_are_more(mesh: FakeMesh) -> None:
    for _ in range(3):
        slicectl("request", "-p", "snu-llm", "-s", "RNGD", env=mesh.env)
    result = slicectl("grants", "--limit", "2", env=mesh.env)
    assert len([line for line in result.stdout.splitlines() if line.startswith("gr_")]) == 2
    assert "--limit 0 shows all" in result.stdout
    assert len(as_json(slicectl("--json", "grants", "--limit", "0", env=mesh.env))) == 3


def test_release_and_renew(mesh: FakeMesh) -> None:
    grant_id = as_json(slicectl("request", "-p", "snu-llm", "-s", "RNGD", "--json", env=mesh.env))["id"]
    renewed = as_json(slicectl("renew", grant_id, "--lease", "2h", "--json", env=mesh.env))
    assert renewed["expires_at"] == "2026-03-01T11:00:00Z"
    released = as_json(slicectl("release", grant_id, "--json", env=mesh.env))
    assert (released["state"], released["end_reason"]) == ("ended", "released")
    again = slicectl("renew", grant_id, "--lease", "2h", env=mesh.env)
    assert again.exit_code == 1
    assert "(reason: GRANT_NOT_ACTIVE)" in again.stderr


def test_inventory_capacity_per_sku_and_per_hall_with_bars(mesh: FakeMesh) -> None:
    result = slicectl("inventory", env=mesh.env)
    assert result.exit_code == 0, result.output
    header = ["SKU", "NODES", "DEVICES", "USED", "FREE", "UNHEALTHY", "CORDONED", "FREE", "UNITS", "UTILISATION"]
    assert header == next(line.split() for line in result.stdout.splitlines() if line.split()[:1] == ["SKU"])
    # 8 devices, 5 free, 1 unhealthy: 2 of the 7 healthy ones are used.
    h100 = lines_with(result.stdout, "H100-SXM-80GB")
    assert h100[0][:8] == ["H100-SXM-80GB", "2", "8", "2", "5", "1", "0", "5.0"]
    assert h100[0][-1] == "28.6%" and "█" in h100[0][8]
    assert h100[1][:3] == ["hall-a", "H100-SXM-80GB", "2"]
    assert lines_with(result.stdout, "RNGD")[1][:2] == ["hall-n", "RNGD"]
    only = as_json(slicectl("inventory", "--sku", "RNGD", "--by", "rack", "--json", env=mesh.env))
    assert [(r["group"], r["sku"], r["free"]) for r in only["rack"]] == [("rngd-r02", "RNGD", 2)]
    assert [r["sku"] for r in only["skus"]] == ["RNGD"]
    bad = slicectl("inventory", "--by", "row", env=mesh.env)
    assert bad.exit_code == 2


def test_admin_facility_generate_writes_yaml_the_inventory_reads(tmp_path: Any) -> None:
    out = tmp_path / "centre.yaml"
    result = slicectl(
        "admin", "facility", "generate", "--gpus", "18000", "--npus", "800", "--sku", "ATOM=16", "-o", str(out)
    )
    assert result.exit_code == 0, result.output
    import yaml

    doc = yaml.safe_load(out.read_text())
    halls = doc["sites"][0]["halls"]
    assert len(halls) == 7  # 5 of H100 (16 leaves of 32 nodes each), 1 of RNGD, 1 of ATOM
    bad = slicectl("admin", "facility", "generate", "--sku", "V100=8")
    assert bad.exit_code == 2 and "unknown SKU" in bad.output


def test_inventory_nodes(mesh: FakeMesh) -> None:
    result = slicectl("inventory", "--nodes", env=mesh.env)
    assert lines_with(result.stdout, "h100-r01-n02")[0] == [
        "h100-r01-n02",
        "daejeon",
        "h100-r01",
        "H100-SXM-80GB",
        "4",
        "3",
        "1",
        "7",
        "yes",
    ]
    nodes = as_json(slicectl("inventory", "--nodes", "--sku", "RNGD", "--json", env=mesh.env))
    assert [n["id"] for n in nodes] == ["rngd-r02-n01"]
    assert nodes[0]["devices"][0] == {
        "id": "rngd-r02-n01/npu0",
        "sku": "RNGD",
        "index": 0,
        "healthy": True,
        "holder": None,
    }


def test_inventory_nodes_show_a_fixed_mig_layout(mesh: FakeMesh) -> None:
    mesh.inventory.nodes[1].mig_layout.update({"3g.40gb": 2, "1g.10gb": 1})
    result = slicectl("inventory", "--nodes", env=mesh.env)
    assert lines_with(result.stdout, "h100-r01-n02")[0][-2:] == ["yes", "1g.10gb:1,3g.40gb:2"]
    assert lines_with(result.stdout, "h100-r01-n01")[0][-1] == "yes"
    nodes = as_json(slicectl("inventory", "--nodes", "--json", env=mesh.env))
    assert [n["mig_layout"] for n in nodes] == [{}, {"1g.10gb": 1, "3g.40gb": 2}, {}]


def test_usage_table_has_totals(mesh: FakeMesh) -> None:
    result = slicectl("usage", env=mesh.env)
    assert result.exit_code == 0, result.output
    assert lines_with(result.stdout, "snu-llm")[0] == ["snu", "snu-llm", "H100-SXM-80GB", "8.00", "0.50", "3", "1"]
    assert lines_with(result.stdout, "total")[0] == ["total", "9.50", "0.50", "4", "1"]
    assert "as of 2026-03-01 09:00:00Z" in result.stdout
    document = as_json(slicectl("usage", "--institution", "kaist", "--json", env=mesh.env))
    assert document["as_of"] == "2026-03-01T09:00:00Z"
    assert [r["project"] for r in document["rows"]] == ["kaist-vision"]


def test_projects_institutions_and_skus(mesh: FakeMesh) -> None:
    projects = slicectl("projects", env=mesh.env)
    assert "H100-SXM-80GB 2/64, RNGD 0/8" in projects.stdout
    assert "Vision [foundation] models" in projects.stdout  # names are never read as markup
    assert as_json(slicectl("projects", "-i", "kaist", "--json", env=mesh.env))[0]["device_caps"] == {}
    assert lines_with(slicectl("institutions", env=mesh.env).stdout, "snu")[0] == [
        "snu",
        "Seoul",
        "National",
        "University",
    ]
    skus = slicectl("skus", env=mesh.env)
    assert lines_with(skus.stdout, "RNGD")[0] == ["RNGD", "npu", "furiosa", "RNGD", "48"]
    assert [s["name"] for s in as_json(slicectl("--json", "skus", env=mesh.env))] == ["H100-SXM-80GB", "RNGD"]


def test_a_service_error_goes_to_stderr_with_reason_and_hint(mesh: FakeMesh) -> None:
    result = slicectl("grants", "gr_nope", env=mesh.env)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: no grant gr_nope (reason: GRANT_NOT_FOUND)",
        "hint: `slicectl grants` lists your grants",
    ]


def test_a_bad_argument_names_its_field(mesh: FakeMesh) -> None:
    result = slicectl("request", "-p", "snu-llm", "-s", "V100", env=mesh.env)
    assert result.exit_code == 1
    assert "error: sku: unknown SKU 'V100'; known: H100-SXM-80GB, RNGD (reason: UNKNOWN_SKU)" in result.stderr
    assert "hint: `slicectl skus` lists the SKUs" in result.stderr


def test_json_errors_are_one_document_on_stderr(mesh: FakeMesh) -> None:
    mesh.recorder.fail(
        "RequestGrant",
        rich_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "QUOTA_EXCEEDED", "cap of 8 RNGD reached", cap="8"),
    )
    result = slicectl("--json", "request", "-p", "snu-llm", "-s", "RNGD", "-n", "9", env=mesh.env)
    assert result.exit_code == 1
    assert result.stdout == ""
    error = json.loads(result.stderr)["error"]
    assert (error["code"], error["reason"], error["message"], error["metadata"]) == (
        "RESOURCE_EXHAUSTED",
        "QUOTA_EXCEEDED",
        "cap of 8 RNGD reached",
        {"cap": "8"},
    )
    assert "slicectl projects" in error["hint"]
    assert error["request_id"] == mesh.recorder.calls[-1].metadata["x-request-id"]


def test_an_unreachable_mesh_suggests_starting_it() -> None:
    with closed_port() as address:
        result = slicectl("skus", "--json", env={"SLICEBROKER_INVENTORY_ADDR": address, "SLICEBROKER_TIMEOUT_S": "2"})
    assert result.exit_code == 1
    hint = json.loads(result.stderr)["error"]["hint"]
    assert hint == "is the mesh running and the address right? (make run; source .run/env; `slicectl config show`)"


def test_no_address_at_all_names_the_variable() -> None:
    result = slicectl("grants")
    assert result.exit_code == 1
    assert "error: no address for the broker service (reason: CLIENT_NOT_CONFIGURED)" in result.stderr
    assert "SLICEBROKER_BROKER_ADDR" in result.stderr and "--broker-addr" in result.stderr


def test_flags_override_the_environment(mesh: FakeMesh) -> None:
    with closed_port() as dead:
        env = {"SLICEBROKER_INVENTORY_ADDR": dead, "SLICEBROKER_TOKEN": "from-env"}
        result = slicectl("--inventory-addr", mesh.address, "--token", "from-flag", "skus", env=env)
        assert result.exit_code == 0, result.output
        assert mesh.recorder.calls[-1].metadata["authorization"] == "Bearer from-flag"
        env_only = slicectl("skus", env={"SLICEBROKER_INVENTORY_ADDR": mesh.address, "SLICEBROKER_TOKEN": "from-env"})
        assert env_only.exit_code == 0
        assert mesh.recorder.calls[-1].metadata["authorization"] == "Bearer from-env"
        flag_dead = slicectl("--inventory-addr", dead, "skus", env={"SLICEBROKER_INVENTORY_ADDR": mesh.address})
        assert flag_dead.exit_code == 1


def test_timeout_flag_is_the_deadline(mesh: FakeMesh) -> None:
    slicectl("--timeout", "3", "skus", env=mesh.env)
    remaining = mesh.recorder.calls[-1].time_remaining
    assert remaining is not None and 2 < remaining <= 3.1


@pytest.mark.parametrize(
    "command", ["request", "grants", "release", "renew", "inventory", "usage", "projects", "institutions", "skus"]
)
def test_every_command_has_help_with_examples(command: str) -> None:
    result = slicectl(command, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.stdout
    assert f"$ slicectl {command}" in result.stdout
    assert "--json" in result.stdout


def test_top_level_help_documents_precedence_and_completion() -> None:
    result = slicectl("--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "flags > environment" in text
    assert "SLICEBROKER_BROKER_ADDR" in text and "SLICEBROKER_TOKEN" in text
    assert "--install-completion" in text


@pytest.mark.parametrize(
    ("left", "shown"),
    [
        (timedelta(hours=1, minutes=59, seconds=59), "in 1h59m"),
        (timedelta(minutes=4, seconds=30), "in 4m30s"),
        (timedelta(0), "expired"),
        (timedelta(seconds=-5), "expired"),
    ],
)
def test_time_left_is_shown_coarsely(left: timedelta, shown: str) -> None:
    assert render.until(NOW + left, NOW) == shown
    assert render.until(None, NOW) == "—"
