"""Guarantees against capacity over real gRPC: quota asks a real inventory (64 H100, 16 RNGD)
for its capacity. A SetQuota or UpsertProject that makes the nominal guarantees of a class exceed
it is applied and answers with a warning; CheckCapacity lists every over-committed class; without
an inventory, or with one that does not answer, nothing is refused."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from typer.testing import CliRunner

from slicebroker.cli.main import app
from slicebroker.client import AsyncClient, ClientOptions
from slicebroker.client._quota import QuotaEntry
from slicebroker.inventory.main import build as build_inventory
from slicebroker.inventory.settings import InventorySettings
from slicebroker.quota.main import build as build_quota
from slicebroker.quota.settings import QuotaSettings
from slicebroker.runtime.redis_server import free_port
from slicebroker.v1 import inventory_pb2, inventory_pb2_grpc, quota_pb2_grpc
from slicebroker.v1 import quota_pb2 as pb
from tests.mesh_fixtures import SMALL_FACILITY

H100 = "H100-SXM-80GB"


async def _quota(start_service: Any, redis_url: str, inventory_addr: str) -> Any:
    settings = QuotaSettings(redis_url=redis_url, listen="127.0.0.1:0", inventory_addr=inventory_addr)
    return await start_service(build_quota, settings)


@pytest.fixture
async def quota_address(start_service: Any, redis_url: str) -> str:
    """A quota that asks a real inventory holding SMALL_FACILITY; two institutions of a cohort."""
    inventory = await start_service(build_inventory, InventorySettings(redis_url=redis_url, listen="127.0.0.1:0"))
    async with grpc.aio.insecure_channel(inventory.address) as channel:
        await inventory_pb2_grpc.InventoryServiceStub(channel).LoadFacility(
            inventory_pb2.LoadFacilityRequest(yaml=SMALL_FACILITY)
        )
    quota = await _quota(start_service, redis_url, inventory.address)
    async with grpc.aio.insecure_channel(quota.address) as channel:
        s = quota_pb2_grpc.QuotaServiceStub(channel)
        await s.UpsertTenant(pb.UpsertTenantRequest(id="universities", kind=pb.TENANT_KIND_COHORT))
        for inst in ("snu", "kaist"):
            await s.UpsertTenant(
                pb.UpsertTenantRequest(id=inst, kind=pb.TENANT_KIND_INSTITUTION, parent="universities")
            )
    return str(quota.address)


@pytest.fixture
async def stub(quota_address: str) -> AsyncIterator[Any]:
    async with grpc.aio.insecure_channel(quota_address) as channel:
        yield quota_pb2_grpc.QuotaServiceStub(channel)


def entry(cls: str, nominal: str) -> Any:
    return pb.QuotaEntry(resource_class=cls, nominal=nominal)


async def test_guarantees_within_capacity_answer_without_warning(stub: Any) -> None:
    answer = await stub.SetQuota(pb.SetQuotaRequest(tenant="snu", entries=[entry(H100, "40")]))
    assert list(answer.warnings) == []
    report = await stub.CheckCapacity(pb.CheckCapacityRequest())
    (row,) = report.classes
    assert (row.resource_class, row.guaranteed, row.capacity, row.over_committed) == (H100, "40", "64", False)


async def test_over_committing_is_applied_with_a_warning_and_reported(stub: Any) -> None:
    await stub.SetQuota(pb.SetQuotaRequest(tenant="snu", entries=[entry(H100, "40")]))
    answer = await stub.SetQuota(pb.SetQuotaRequest(tenant="kaist", entries=[entry(H100, "30"), entry("npu", "4")]))
    # Applied, not refused.
    assert {q.resource_class: q.nominal for q in answer.quotas} == {H100: "30", "npu": "4"}
    (warning,) = answer.warnings
    assert H100 in warning and "(70)" in warning and "(64)" in warning and "by 6" in warning
    report = await stub.CheckCapacity(pb.CheckCapacityRequest())
    rows = {r.resource_class: r for r in report.classes}
    assert report.classes[0].resource_class == H100
    assert rows[H100].over_committed and rows[H100].over_by == "6"
    assert not rows["npu"].over_committed and rows["npu"].capacity == "16"


async def test_a_project_device_cap_counts_as_a_guarantee(stub: Any) -> None:
    await stub.UpsertInstitution(pb.UpsertInstitutionRequest(id="lab"))
    fits = await stub.UpsertProject(pb.UpsertProjectRequest(id="lab-a", institution="lab", device_caps={"RNGD": 16}))
    assert list(fits.warnings) == []
    over = await stub.UpsertProject(pb.UpsertProjectRequest(id="lab-b", institution="lab", device_caps={"RNGD": 1}))
    assert over.device_caps["RNGD"] == 1
    (warning,) = over.warnings
    assert "RNGD" in warning and "by 1" in warning


async def test_the_normalised_unit_is_checked_against_weighted_devices(stub: Any) -> None:
    # 64 H100 (weight 1) + 16 RNGD (256/989 each) = 68.14 accelerators.
    answer = await stub.SetQuota(pb.SetQuotaRequest(tenant="snu", entries=[entry("accel", "68")]))
    assert list(answer.warnings) == []
    answer = await stub.SetQuota(pb.SetQuotaRequest(tenant="kaist", entries=[entry("accel", "1")]))
    assert len(answer.warnings) == 1 and "accel" in answer.warnings[0]


async def test_without_inventory_nothing_is_checked_and_the_check_says_why(start_service: Any, redis_url: str) -> None:
    quota = await _quota(start_service, redis_url, "")
    async with grpc.aio.insecure_channel(quota.address) as channel:
        s = quota_pb2_grpc.QuotaServiceStub(channel)
        await s.UpsertTenant(pb.UpsertTenantRequest(id="snu", kind=pb.TENANT_KIND_INSTITUTION))
        answer = await s.SetQuota(pb.SetQuotaRequest(tenant="snu", entries=[entry(H100, "100000")]))
        assert list(answer.warnings) == []
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await s.CheckCapacity(pb.CheckCapacityRequest())
        assert exc.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "inventory_addr" in (exc.value.details() or "")


async def test_an_unreachable_inventory_is_a_warning_not_a_refusal(start_service: Any, redis_url: str) -> None:
    quota = await _quota(start_service, redis_url, f"127.0.0.1:{free_port()}")
    async with grpc.aio.insecure_channel(quota.address) as channel:
        s = quota_pb2_grpc.QuotaServiceStub(channel)
        await s.UpsertTenant(pb.UpsertTenantRequest(id="snu", kind=pb.TENANT_KIND_INSTITUTION))
        answer = await s.SetQuota(pb.SetQuotaRequest(tenant="snu", entries=[entry(H100, "8")]))
        assert [q.nominal for q in answer.quotas] == ["8"]
        (warning,) = answer.warnings
        assert "not checked" in warning


async def test_sdk_and_slicectl_admin_quota_check(quota_address: str) -> None:
    async with AsyncClient(ClientOptions(quota_addr=quota_address)) as sb:
        t = await sb.set_quota("snu", [QuotaEntry(H100, "65")])
        assert len(t.warnings) == 1 and H100 in t.warnings[0]
        (row,) = await sb.check_capacity()
        assert row.over_committed and row.over_by == "1"

    def run(*args: str) -> Any:
        return CliRunner().invoke(app, ["--quota-addr", quota_address, "admin", "quota", *args])

    over = await asyncio.to_thread(run, "check", "--json")
    assert over.exit_code == 1
    assert json.loads(over.output)[0]["resource_class"] == H100
    fixed = await asyncio.to_thread(run, "set", "snu", H100, "--nominal", "64")
    assert fixed.exit_code == 0 and "warning" not in fixed.output
    ok = await asyncio.to_thread(run, "check")
    assert ok.exit_code == 0 and "ok" in ok.output


async def test_the_example_tenants_promise_no_more_than_the_example_facility(
    start_service: Any, redis_url: str, examples_dir: Any
) -> None:
    inventory = await start_service(build_inventory, InventorySettings(redis_url=redis_url, listen="127.0.0.1:0"))
    async with grpc.aio.insecure_channel(inventory.address) as channel:
        facility = (examples_dir / "facility.yaml").read_text()
        await inventory_pb2_grpc.InventoryServiceStub(channel).LoadFacility(
            inventory_pb2.LoadFacilityRequest(yaml=facility), timeout=60
        )
    settings = QuotaSettings(
        redis_url=redis_url,
        listen="127.0.0.1:0",
        inventory_addr=inventory.address,
        tenants_file=examples_dir / "tenants.yaml",
    )
    quota = await start_service(build_quota, settings)
    async with grpc.aio.insecure_channel(quota.address) as channel:
        report = await quota_pb2_grpc.QuotaServiceStub(channel).CheckCapacity(pb.CheckCapacityRequest())
    assert {"gpu", "npu", H100} <= {r.resource_class for r in report.classes}
    assert [r.resource_class for r in report.classes if r.over_committed] == []
