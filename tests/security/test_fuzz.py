"""Hypothesis-driven fuzz of every RPC of the four services (and each one's AuditService) against
the real servers in this process, with tokens on: a clear status for every input, no crash, no
state change on refusal. SLICEBROKER_FUZZ_EXAMPLES sets the inputs per RPC (CI keeps it small)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.security.fuzzing import run_fuzz
from tests.security.secure_mesh import start_secure_mesh

EXAMPLES = int(os.environ.get("SLICEBROKER_FUZZ_EXAMPLES", "10"))


@pytest.mark.parametrize("service", ["inventory", "quota", "accounting", "broker"])
async def test_every_rpc_answers_every_input_with_a_clear_status(
    service: str, start_service: Any, redis_url: str, tmp_path: Path
) -> None:
    # Generous limits: the fuzzer itself must not be rate limited into sameness.
    mesh = await start_secure_mesh(start_service, redis_url, tmp_path, rate_limit_per_s=0)
    addresses = {name: s.address for name, s in mesh.servers.items()}
    metadata = {who: mesh.md(who) for who in ("admin", "broker", "uni-a", "uni-a-llm")} | {"nobody": []}
    report = await asyncio.to_thread(
        run_fuzz, lambda name: grpc.insecure_channel(addresses[name]), metadata, redis_url, EXAMPLES, [service]
    )
    print(f"fuzz {service}: {report.inputs} inputs, {report.by_code}")
    assert report.inputs >= EXAMPLES
    assert not report.failures, "\n".join(report.failures[:20])
