"""kill -9 each service and Redis at random moments under a steady load of grants, renewals and
releases; after restarts the DESIGN.md invariants hold: no device held twice, no project over its
cap, every ended grant once in the ledger, replays idempotent. The CI run is short; `make soak` runs
the long one (bench/soak.py)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fault.harness import TARGETS, FaultMesh, fault_run

pytestmark = pytest.mark.slow

SECONDS = float(os.environ.get("SLICEBROKER_FAULT_SECONDS", "20"))
FAULTS = int(os.environ.get("SLICEBROKER_FAULT_KILLS", "5"))


@pytest.fixture
async def fault_mesh(tmp_path: Path) -> AsyncIterator[FaultMesh]:
    fm = FaultMesh.start(tmp_path)
    try:
        await fm.load_demo()
        yield fm
    finally:
        fm.stop()


async def test_kill9_under_load_breaks_no_invariant(fault_mesh: FaultMesh) -> None:
    stats, violations = await fault_run(
        fault_mesh, SECONDS, FAULTS, seed=int(os.environ.get("SLICEBROKER_FAULT_SEED", "1"))
    )
    print(
        f"faults={stats.faults} requests={stats.requests} granted={stats.granted} renewed={stats.renewed} "
        f"released={stats.released} errors={dict(stats.errors)}"
    )
    assert len(stats.faults) == FAULTS and set(stats.faults) == set(TARGETS[:FAULTS]) | set(stats.faults)
    assert stats.granted > 0 and stats.released > 0
    assert violations == []
