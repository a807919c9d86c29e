"""The Go client (clients/go) against the real mesh: `go test ./...` with the SLICEBROKER_* variables
pointing at it, so its mesh tests run instead of skipping."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.api.sdk.conftest import ROOT

GO = shutil.which("go")


@pytest.mark.skipif(GO is None, reason="`go` is not on PATH: the Go client's tests need Go 1.24+")
def test_go_client_against_the_mesh(env: dict[str, str]) -> None:
    assert GO is not None
    result = subprocess.run(
        [GO, "test", "-count=1", "-v", "./..."],
        cwd=ROOT / "clients" / "go",
        env={**os.environ, **env, "SLICEBROKER_TEST_PROJECT": "hanbit-serving"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--- PASS: TestRequestListRelease" in result.stdout
    assert "--- PASS: TestRefusalCarriesTheReason" in result.stdout
    assert "--- PASS: TestQuoteThenWatchAGrantFromRequestToRelease" in result.stdout
    assert "SKIP" not in result.stdout
