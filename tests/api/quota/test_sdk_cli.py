"""The SDK's quota methods and `slicectl admin` / `slicectl quota` against a real quota server: a
facility admin sets up a cohort, an institution with a per-model quota and an hour budget, a
stale generation is refused, and `slicectl quota` shows entitlement, use and budget left."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from typer.testing import CliRunner

from slicebroker.cli.main import app
from slicebroker.client import AsyncClient, ClientOptions, ConflictError
from slicebroker.client._quota import Budget, QuotaEntry, TenantKind
from slicebroker.core.ids import new_grant_id
from slicebroker.quota.main import build
from slicebroker.quota.settings import QuotaSettings
from slicebroker.v1 import quota_pb2 as pb
from slicebroker.v1 import quota_pb2_grpc

H100 = "H100-SXM-80GB"


@pytest.fixture
async def address(start_service: Any, redis_url: str) -> str:
    running = await start_service(build, QuotaSettings(redis_url=redis_url, listen="127.0.0.1:0"))
    return str(running.address)


async def slicectl(address: str, *args: str) -> Any:
    result = await asyncio.to_thread(CliRunner().invoke, app, ["--quota-addr", address, *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


async def test_sdk_sets_up_tenants_and_refuses_a_stale_generation(address: str) -> None:
    async with AsyncClient(ClientOptions(quota_addr=address)) as sb:
        await sb.upsert_tenant("universities", TenantKind.COHORT)
        snu = await sb.upsert_tenant("snu", TenantKind.INSTITUTION, parent="universities", display_name="SNU")
        updated = await sb.set_quota(
            "snu", [QuotaEntry(H100, nominal="4", hard_cap="6")], expected_generation=snu.generation
        )
        assert updated.quotas == (QuotaEntry(H100, "4", "", "", "6"),)
        with pytest.raises(ConflictError):
            await sb.set_quota("snu", remove=[H100], expected_generation=snu.generation)
        budget = Budget(
            True,
            datetime(2026, 1, 1, tzinfo=UTC),
            datetime(2027, 1, 1, tzinfo=UTC),
            datetime(2027, 1, 1, tzinfo=UTC),
            100,
        )
        with_budget = await sb.set_budget("snu", budget)
        assert with_budget.budget == budget
        assert [t.id for t in await sb.tenants(TenantKind.INSTITUTION)] == ["snu"]


async def test_slicectl_admin_then_quota(address: str) -> None:
    await slicectl(address, "admin", "tenant", "set", "universities", "--kind", "cohort")
    await slicectl(address, "admin", "tenant", "set", "kaist", "--kind", "institution", "--parent", "universities")
    await slicectl(address, "admin", "tenant", "set", "kaist-cv", "--kind", "project", "--parent", "kaist")
    await slicectl(address, "admin", "quota", "set", "kaist", H100, "--nominal", "8", "--hard-cap", "10")
    await slicectl(
        address, "admin", "budget", "set", "kaist", "--hours", "1000", "--start", "2026-01-01", "--end", "2030-01-01"
    )
    topped = await slicectl(address, "admin", "budget", "top-up", "kaist", "50")
    assert topped["budget"]["top_up_hours"] == 50
    async with grpc.aio.insecure_channel(address) as channel:
        stub = quota_pb2_grpc.QuotaServiceStub(channel)
        item = pb.Reservation(
            grant_id=new_grant_id(), project="kaist-cv", sku=H100, count=4, shape="3g.40gb", ttl_seconds=30
        )
        (ok,) = (await stub.Reserve(pb.ReserveRequest(reservations=[item]))).results
        assert ok.status.code == 0
    (standing,) = await slicectl(address, "quota", "kaist")
    assert standing["entitlement"] == {H100: "8"}
    assert standing["in_use"][H100] == "1.714286"  # four 3/7 slices
    assert standing["in_use"][H100 + "#mem"] == "2"  # four 40/80 slices
    assert standing["budget_left_hours"] == 1050
    assert standing["fair_share"] > 0
