"""A mesh of the four real service processes with mTLS and tokens (what `make run` starts), loaded
with a small facility (facility.yaml here) and the demo tenants, shared by the SDK tests of this package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from slicebroker.client import ClientOptions
from slicebroker.mesh.demo import load_demo
from slicebroker.mesh.launcher import Mesh

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="package")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    # Its own Redis (other tests flush the shared one); a fast reaper so that lapsed leases end quickly.
    m = Mesh(
        run_dir=tmp_path_factory.mktemp("sdk-run"),
        extra_env={"broker": {"SLICEBROKER_BROKER_REAPER_INTERVAL_S": "0.05"}},
    )
    m.start()
    try:
        m.wait_serving()
        load_demo(m, Path(__file__).with_name("facility.yaml"), ROOT / "examples" / "tenants.yaml")
        yield m
    finally:
        m.stop()


@pytest.fixture
def env(mesh: Mesh) -> dict[str, str]:
    """The SLICEBROKER_* variables of `.run/env` for this mesh."""
    lines = [line.removeprefix("export ") for line in mesh.env_file().splitlines()]
    return dict(line.split("=", 1) for line in lines)


@pytest.fixture
def options(env: dict[str, str]) -> ClientOptions:
    return ClientOptions.from_env(env)
