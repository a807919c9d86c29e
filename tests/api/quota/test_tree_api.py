"""The tenant tree, quota entries, budgets, burn, standings and fair-share ordering over gRPC: a
facility admin sets up a cohort, institutions, per-model quotas and an hour budget; reservations
of MIG slices and priority classes honour them; conflicting and bad edits are refused with the
right status, reason and field, and change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from slicebroker.core.ids import new_grant_id
from slicebroker.quota.main import build
from slicebroker.quota.settings import QuotaSettings
from slicebroker.runtime.status import from_rpc_error, from_status
from slicebroker.v1 import quota_pb2 as pb
from slicebroker.v1 import quota_pb2_grpc

H100 = "H100-SXM-80GB"
COHORT, INSTITUTION, PROJECT = pb.TENANT_KIND_COHORT, pb.TENANT_KIND_INSTITUTION, pb.TENANT_KIND_PROJECT


@pytest.fixture
async def stub(start_service: Any, redis_url: str) -> AsyncIterator[Any]:
    """universities → snu (nominal 2 H100, may borrow 1) → snu-llm; kaist (nominal 2) → kaist-cv."""
    running = await start_service(build, QuotaSettings(redis_url=redis_url, listen="127.0.0.1:0"))
    async with grpc.aio.insecure_channel(running.address) as channel:
        s = quota_pb2_grpc.QuotaServiceStub(channel)
        await s.UpsertTenant(pb.UpsertTenantRequest(id="universities", kind=COHORT))
        for inst, project, borrow in (("snu", "snu-llm", "1"), ("kaist", "kaist-cv", "")):
            await s.UpsertTenant(pb.UpsertTenantRequest(id=inst, kind=INSTITUTION, parent="universities"))
            entry = pb.QuotaEntry(resource_class=H100, nominal="2", borrowing_limit=borrow)
            await s.SetQuota(pb.SetQuotaRequest(tenant=inst, entries=[entry]))
            await s.UpsertTenant(pb.UpsertTenantRequest(id=project, kind=PROJECT, parent=inst))
        yield s


def reservation(project: str, count: int = 1, shape: str = "", priority: int = 0) -> Any:
    return pb.Reservation(
        grant_id=new_grant_id(), project=project, sku=H100, count=count, ttl_seconds=30, shape=shape, priority=priority
    )


async def test_slices_count_by_real_size_and_borrowing_is_bounded(stub: Any) -> None:
    # 21 slices of 1/7 = 3 devices: snu's 2 plus the 1 it may borrow.
    answer = await stub.Reserve(pb.ReserveRequest(reservations=[reservation("snu-llm", 21, "1g.10gb")]))
    (ok,) = answer.results
    assert ok.status.code == 0 and ok.institution == "snu" and ok.preemptible
    answer = await stub.Reserve(pb.ReserveRequest(reservations=[reservation("snu-llm", 1, "1g.10gb")]))
    err = from_status(answer.results[0].status)
    assert err is not None and err.metadata["limit_kind"] == "borrowing_limit" and err.metadata["node"] == "snu"
    (standing,) = (await stub.GetStandings(pb.GetStandingsRequest(tenants=["snu"]))).standings
    assert standing.in_use[H100] == "3" and standing.borrowed[H100] == "1" and standing.entitlement[H100] == "2"
    assert standing.fair_share > 0


async def test_guaranteed_priority_may_not_borrow(stub: Any) -> None:
    guaranteed = reservation("kaist-cv", 3, priority=pb.PRIORITY_CLASS_GUARANTEED)
    (refused,) = (await stub.Reserve(pb.ReserveRequest(reservations=[guaranteed]))).results
    assert from_status(refused.status) is not None
    within = reservation("kaist-cv", 2, priority=pb.PRIORITY_CLASS_GUARANTEED)
    (ok,) = (await stub.Reserve(pb.ReserveRequest(reservations=[within]))).results
    assert ok.status.code == 0 and not ok.preemptible


async def test_a_stale_generation_is_refused_and_changes_nothing(stub: Any) -> None:
    snu = await stub.GetTenant(pb.GetTenantRequest(id="snu"))
    entry = pb.QuotaEntry(resource_class="gpu", nominal="4")
    await stub.SetQuota(pb.SetQuotaRequest(tenant="snu", entries=[entry], expected_generation=snu.generation))
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.SetQuota(pb.SetQuotaRequest(tenant="snu", remove=["gpu"], expected_generation=snu.generation))
    assert exc.value.code() is grpc.StatusCode.ABORTED
    assert from_rpc_error(exc.value).reason == "GENERATION_CONFLICT"
    after = await stub.GetTenant(pb.GetTenantRequest(id="snu"))
    assert {q.resource_class for q in after.quotas} == {H100, "gpu"}


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (
            pb.SetQuotaRequest(tenant="snu", entries=[pb.QuotaEntry(resource_class=H100, nominal="-1")]),
            "entries[0].nominal",
        ),
        (pb.SetQuotaRequest(tenant="snu", entries=[pb.QuotaEntry(resource_class="TPU", nominal="1")]), "entries[TPU]"),
        (
            pb.SetQuotaRequest(
                tenant="universities", entries=[pb.QuotaEntry(resource_class=H100, borrowing_limit="3")]
            ),
            f"entries[{H100}].borrowing_limit",
        ),
        (pb.UpsertTenantRequest(id="universities", kind=COHORT, parent="universities"), "parent"),
        (pb.UpsertTenantRequest(id="x", kind=PROJECT, parent="universities"), "parent"),
    ],
)
async def test_bad_admin_input_names_the_field(stub: Any, request_: Any, field: str) -> None:
    before = await stub.ListTenants(pb.ListTenantsRequest())
    method = stub.SetQuota if isinstance(request_, pb.SetQuotaRequest) else stub.UpsertTenant
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await method(request_)
    assert exc.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert from_rpc_error(exc.value).metadata["field"] == field
    assert await stub.ListTenants(pb.ListTenantsRequest()) == before


async def test_a_cycle_of_cohorts_is_refused(stub: Any) -> None:
    await stub.UpsertTenant(pb.UpsertTenantRequest(id="sub", kind=COHORT, parent="universities"))
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.UpsertTenant(pb.UpsertTenantRequest(id="universities", kind=COHORT, parent="sub"))
    assert exc.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "cycle" in exc.value.details()


def ts(seconds: int) -> Timestamp:
    return Timestamp(seconds=seconds)


async def test_a_hard_budget_stops_and_a_top_up_reopens(stub: Any) -> None:
    budget = pb.Budget(
        mode=pb.BUDGET_MODE_HARD, start=ts(0), end=ts(4_000_000_000), expiry=ts(4_000_000_000), award_hours=2
    )
    await stub.SetBudget(pb.SetBudgetRequest(tenant="kaist", budget=budget))
    burn = pb.BurnEvent(event_id="ev-1", project="kaist-cv", accelerator_hours=2.5)
    assert list((await stub.RecordBurn(pb.RecordBurnRequest(events=[burn]))).applied) == [True]
    assert list((await stub.RecordBurn(pb.RecordBurnRequest(events=[burn]))).applied) == [False]
    (refused,) = (await stub.Reserve(pb.ReserveRequest(reservations=[reservation("kaist-cv")]))).results
    err = from_status(refused.status)
    assert err is not None and err.reason == "BUDGET_EXHAUSTED" and err.metadata["budget"] == "kaist"
    await stub.TopUpBudget(pb.TopUpBudgetRequest(tenant="kaist", hours=10))
    (ok,) = (await stub.Reserve(pb.ReserveRequest(reservations=[reservation("kaist-cv")]))).results
    assert ok.status.code == 0
    (standing,) = (await stub.GetStandings(pb.GetStandingsRequest(tenants=["kaist"]))).standings
    assert standing.budget_left_hours == pytest.approx(9.5)


async def test_fair_share_serves_the_less_served_institution_first(stub: Any) -> None:
    await stub.Reserve(pb.ReserveRequest(reservations=[reservation("snu-llm", 2)]))
    pending = [
        pb.PendingRequest(id="a", project="snu-llm", sku=H100, count=1),
        pb.PendingRequest(id="b", project="snu-llm", sku=H100, count=1),
        pb.PendingRequest(id="c", project="kaist-cv", sku=H100, count=1),
    ]
    answer = await stub.FairShareOrder(pb.FairShareOrderRequest(requests=pending))
    assert list(answer.ids) == ["c", "a", "b"]


async def test_a_refusal_within_own_quota_lent_to_a_borrower_is_reclaimable(stub: Any) -> None:
    """uni: p1 (nominal 8, may borrow 8) borrows all that p2 (nominal 8, lends 8) lends; p2's own
    8 are refused as reclaimable from pool uni, 9 are not; p1's borrowing grant is preemptible."""
    await stub.UpsertTenant(pb.UpsertTenantRequest(id="uni", kind=INSTITUTION))
    for project, entry in (
        ("p1", pb.QuotaEntry(resource_class=H100, nominal="8", borrowing_limit="8")),
        ("p2", pb.QuotaEntry(resource_class=H100, nominal="8", lending_limit="8")),
    ):
        await stub.UpsertTenant(pb.UpsertTenantRequest(id=project, kind=PROJECT, parent="uni"))
        await stub.SetQuota(pb.SetQuotaRequest(tenant=project, entries=[entry]))
    (held,) = (await stub.Reserve(pb.ReserveRequest(reservations=[reservation("p1", 16)]))).results
    assert held.status.code == 0 and held.preemptible
    answer = await stub.Reserve(
        pb.ReserveRequest(
            reservations=[
                reservation("p2", 8, priority=pb.PRIORITY_CLASS_GUARANTEED),
                reservation("p2", 9, priority=pb.PRIORITY_CLASS_GUARANTEED),
                reservation("p2", 2, priority=pb.PRIORITY_CLASS_PREEMPTIBLE),
            ]
        )
    )
    within, beyond, preemptible = (from_status(r.status) for r in answer.results)
    assert within is not None and within.metadata["limit_kind"] == "nominal"
    assert (within.metadata["reclaimable"], within.metadata["pool"], within.metadata["short_by"]) == ("1", "uni", "8")
    assert "lent to borrowers in uni" in within.message
    assert beyond is not None and beyond.metadata["limit_kind"] == "nominal" and "reclaimable" not in beyond.metadata
    assert preemptible is not None and "reclaimable" not in preemptible.metadata
