"""Golden files of what scripts and people read: the `--json` documents of each command and the
human error messages of the common refusals. A change to either is a change to the product's
interface: look at the diff, then rewrite the files with `SLICEBROKER_UPDATE_GOLDEN=1 pytest
tests/unit/cli/test_golden.py`.

Values that differ between runs (ports, request ids, the clock of `usage`) are replaced by
placeholders before comparing."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.unit.cli.test_slicectl import slicectl
from tests.unit.client.fakemesh import FakeMesh, closed_port, rich_status

GOLDEN = Path(__file__).with_name("golden")
UPDATE = bool(os.environ.get("SLICEBROKER_UPDATE_GOLDEN"))


def _normalise(text: str) -> str:
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
    text = re.sub(r'"request_id": "[0-9a-f]+"', '"request_id": "REQUEST_ID"', text)
    return text


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    actual = _normalise(actual)
    if UPDATE or not path.exists():
        path.write_text(actual)
        if not UPDATE:
            pytest.fail(f"wrote the new golden file {path}; check it in and run again")
    assert actual == path.read_text(), f"{name} differs from its golden file (see the module docstring)"


def _shape(value: Any) -> Any:
    """The shape of a JSON value: keys and the types of leaves, lists reduced to their first item."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


JSON_COMMANDS = {
    "request": ["request", "-p", "snu-llm", "-s", "RNGD", "-n", "1", "--idempotency-key", "golden-1"],
    "grants": ["grants"],
    "inventory": ["inventory"],
    "usage": ["usage"],
    "projects": ["projects"],
    "institutions": ["institutions"],
    "skus": ["skus"],
    "quote": ["quote", "-p", "snu-llm", "-s", "H100-SXM-80GB", "-n", "6", "--lease", "2h", "--cpu", "4"],
}


@pytest.mark.parametrize("command", sorted(JSON_COMMANDS))
def test_json_output_shape(mesh: FakeMesh, command: str) -> None:
    if command == "grants":
        slicectl(*JSON_COMMANDS["request"], env=mesh.env)
    result = slicectl("--json", *JSON_COMMANDS[command], env=mesh.env)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    check_golden(f"json-shape-{command}.json", json.dumps(_shape(document), indent=2) + "\n")


def test_json_quote_document(mesh: FakeMesh) -> None:
    result = slicectl("--json", *JSON_COMMANDS["quote"], env=mesh.env)
    assert result.exit_code == 0, result.output
    check_golden("json-quote.json", result.stdout)
    [call] = mesh.recorder.calls_of("Quote")
    assert call.request.host_per_slice.cpu_milli == 4000


def test_watch_json_lines(mesh: FakeMesh) -> None:
    slicectl(*JSON_COMMANDS["request"], env=mesh.env)
    result = slicectl("watch", "--json", "-p", "snu-llm", env=mesh.env)
    # The fake ends its story by refusing the resumed watch: everything before it was printed.
    assert result.exit_code == 1 and "WATCH_OVER" in result.stderr
    lines = result.stdout.splitlines()
    assert [json.loads(line)["type"] for line in lines] == [
        "snapshot_begin",
        "snapshot",
        "snapshot_end",
        "preemption_notice",
    ]
    check_golden("jsonl-watch.jsonl", result.stdout)
    calls = mesh.recorder.calls_of("WatchGrants")
    assert [c.request.from_revision for c in calls] == ["", "1700000000001-0"]  # resumed where it left off


def test_watch_lines(mesh: FakeMesh) -> None:
    slicectl(*JSON_COMMANDS["request"], env=mesh.env)
    result = slicectl("watch", "-p", "snu-llm", env=mesh.env)
    assert result.exit_code == 1
    check_golden("watch.txt", result.stdout)


def test_json_grant_document(mesh: FakeMesh) -> None:
    # The whole document, values included: the fake mesh's clock and ids are fixed.
    result = slicectl("--json", *JSON_COMMANDS["request"], env=mesh.env)
    assert result.exit_code == 0, result.output
    check_golden("json-request.json", result.stdout)


REFUSALS = {
    "quota-exceeded": rich_status(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "QUOTA_EXCEEDED",
        "9 H100-SXM-80GB for project snu-class: the hard cap of snu-class on H100-SXM-80GB leaves 4, 5 short",
        project="snu-class",
        sku="H100-SXM-80GB",
        limit="8",
        limit_kind="hard_cap",
        in_use="4",
        node="snu-class",
        resource="H100-SXM-80GB",
        requested="9",
        available="4",
        short_by="5",
    ),
    "insufficient-capacity": rich_status(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "INSUFFICIENT_CAPACITY",
        "16 x H100-SXM-80GB requested; 6 free now",
        sku="H100-SXM-80GB",
        requested="16",
        free="6",
    ),
    "unknown-sku": rich_status(
        grpc.StatusCode.INVALID_ARGUMENT,
        "UNKNOWN_SKU",
        "sku: unknown SKU 'H900'; known: A100-SXM-80GB, ATOM, B200-SXM-180GB, H100-SXM-80GB, H200-SXM-141GB, "
        "REBEL, RNGD",
        field="sku",
    ),
    "unauthenticated": rich_status(grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED", "unknown token"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
@pytest.mark.parametrize("as_json", [False, True], ids=["human", "json"])
def test_refusal_messages(mesh: FakeMesh, case: str, as_json: bool) -> None:
    mesh.recorder.fail("RequestGrant", REFUSALS[case])
    flags = ["--json"] if as_json else []
    result = slicectl(*flags, "request", "-p", "snu-class", "-s", "H100-SXM-80GB", "-n", "9", env=mesh.env)
    assert result.exit_code == 1
    assert result.stdout == ""
    check_golden(f"error-{case}.{'json' if as_json else 'txt'}", result.stderr)


@pytest.mark.parametrize("as_json", [False, True], ids=["human", "json"])
def test_unavailable_message(as_json: bool) -> None:
    flags = ["--json"] if as_json else []
    with closed_port() as address:
        env = {"SLICEBROKER_BROKER_ADDR": address, "SLICEBROKER_TIMEOUT_S": "1"}
        result = slicectl(*flags, "request", "-p", "snu-llm", "-s", "RNGD", env=env)
    assert result.exit_code == 1
    # The transport's own wording varies with the gRPC version: keep our part of the message.
    stderr = re.sub(
        r"(broker at 127\.0\.0\.1:\d+: ).*?( \(reason| ---|\"|$)", r"\1<transport error>\2", result.stderr, flags=re.M
    )
    check_golden(f"error-unavailable.{'json' if as_json else 'txt'}", stderr)


def test_config_show_json(mesh: FakeMesh, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        'default_profile = "lab"\n'
        "[profiles.lab]\n"
        f'broker_addr = "{mesh.address}"\n'
        'quota_addr = "10.0.0.1:50052"\n'
        'token = "sbadm_from_the_config_file"\n'
        "timeout = 7\n"
    )
    env = {"SLICEBROKER_CONFIG": str(config), "SLICEBROKER_QUOTA_ADDR": "10.0.0.2:50052"}
    result = slicectl("--json", "--timeout", "3", "config", "show", env=env)
    assert result.exit_code == 0, result.output
    check_golden("json-config-show.json", result.stdout.replace(str(config), "CONFIG_FILE"))
