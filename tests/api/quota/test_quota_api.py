"""The quota service over gRPC, as the broker and operators see it: status codes, ErrorInfo
reasons and metadata, named fields, per-item statuses, and refusals that change nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from slicebroker.core.errors import InvalidArgument, SlicebrokerError
from slicebroker.core.ids import new_grant_id
from slicebroker.quota.main import build
from slicebroker.quota.settings import QuotaSettings
from slicebroker.runtime.status import from_rpc_error, from_status
from slicebroker.v1 import quota_pb2 as pb
from slicebroker.v1 import quota_pb2_grpc

H100 = "H100-SXM-80GB"


async def _stub(start_service: Any, settings: QuotaSettings) -> AsyncIterator[Any]:
    running = await start_service(build, settings)
    async with grpc.aio.insecure_channel(running.address) as channel:
        yield quota_pb2_grpc.QuotaServiceStub(channel), channel


@pytest.fixture
async def quota(start_service: Any, redis_url: str) -> AsyncIterator[Any]:
    """A quota server with institution "snu" and project "p" (8 H100, 64 RNGD)."""
    async for stub, _ in _stub(start_service, QuotaSettings(redis_url=redis_url, listen="127.0.0.1:0")):
        await stub.UpsertInstitution(pb.UpsertInstitutionRequest(id="snu", display_name="Seoul National University"))
        await stub.UpsertProject(pb.UpsertProjectRequest(id="p", institution="snu", device_caps={H100: 8, "RNGD": 64}))
        yield stub


async def refused(call: Any) -> tuple[grpc.StatusCode, SlicebrokerError]:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await call
    return exc.value.code(), from_rpc_error(exc.value)


def item(count: int = 1, sku: str = H100, project: str = "p", ttl: int = 30, grant: str = "") -> Any:
    return pb.Reservation(grant_id=grant or new_grant_id(), project=project, sku=sku, count=count, ttl_seconds=ttl)


async def in_use(stub: Any, project: str = "p") -> dict[str, int]:
    return dict((await stub.GetProject(pb.GetProjectRequest(id=project))).devices_in_use)


async def test_serving_with_health_and_reflection(start_service: Any, redis_url: str) -> None:
    async for _, channel in _stub(start_service, QuotaSettings(redis_url=redis_url, listen="127.0.0.1:0")):
        health = health_pb2_grpc.HealthStub(channel)
        answer = await health.Check(health_pb2.HealthCheckRequest(service="slicebroker.v1.QuotaService"))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_tenants_and_generations(quota: Any) -> None:
    same = await quota.UpsertInstitution(
        pb.UpsertInstitutionRequest(id="snu", display_name="Seoul National University")
    )
    assert same.generation == 1
    project = await quota.UpsertProject(
        pb.UpsertProjectRequest(id="p", institution="snu", display_name="P", device_caps={H100: 8, "RNGD": 64})
    )
    assert (project.generation, dict(project.device_caps), project.institution) == (
        2,
        {H100: 8, "RNGD": 64},
        "snu",
    )
    await quota.UpsertInstitution(pb.UpsertInstitutionRequest(id="kaist"))
    await quota.UpsertProject(pb.UpsertProjectRequest(id="k", institution="kaist"))
    listed = await quota.ListProjects(pb.ListProjectsRequest(institution="kaist"))
    assert [p.id for p in listed.projects] == ["k"]
    assert [p.id for p in (await quota.ListProjects(pb.ListProjectsRequest())).projects] == ["k", "p"]
    institutions = (await quota.ListInstitutions(pb.ListInstitutionsRequest())).institutions
    assert [(i.id, i.generation) for i in institutions] == [("kaist", 1), ("snu", 1)]


async def test_missing_things_are_not_found(quota: Any) -> None:
    code, err = await refused(quota.GetProject(pb.GetProjectRequest(id="nope")))
    assert (code, err.reason, err.metadata) == (
        grpc.StatusCode.NOT_FOUND,
        "PROJECT_NOT_FOUND",
        {"project": "nope"},
    )
    code, err = await refused(quota.UpsertProject(pb.UpsertProjectRequest(id="x", institution="nowhere")))
    assert (code, err.reason) == (grpc.StatusCode.NOT_FOUND, "INSTITUTION_NOT_FOUND")
    code, err = await refused(quota.ListProjects(pb.ListProjectsRequest(institution="nowhere")))
    assert (code, err.reason) == (grpc.StatusCode.NOT_FOUND, "INSTITUTION_NOT_FOUND")
    assert [p.id for p in (await quota.ListProjects(pb.ListProjectsRequest())).projects] == ["p"]


@pytest.mark.parametrize(
    ("project_id", "caps", "field", "reason"),
    [
        ("q", {"TPU-v5": 1}, "device_caps[TPU-v5]", "UNKNOWN_SKU"),
        ("p", {"TPU-v5": 1, H100: 8}, "device_caps[TPU-v5]", "UNKNOWN_SKU"),
        ("q", {"RNGD": 1_000_001}, "device_caps[RNGD]", "INVALID_FIELD"),
        ("p", {"RNGD": -1}, "device_caps[RNGD]", "INVALID_FIELD"),
        ("Q!", {}, "id", "INVALID_FIELD"),
    ],
)
async def test_bad_projects_are_refused_and_change_nothing(
    quota: Any, project_id: str, caps: dict[str, int], field: str, reason: str
) -> None:
    code, err = await refused(
        quota.UpsertProject(pb.UpsertProjectRequest(id=project_id, institution="snu", device_caps=caps))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert isinstance(err, InvalidArgument) and (err.field, err.reason) == (field, reason)
    listed = (await quota.ListProjects(pb.ListProjectsRequest())).projects
    assert [(p.id, p.generation, dict(p.device_caps)) for p in listed] == [("p", 1, {H100: 8, "RNGD": 64})]


async def test_reserve_answers_each_item(quota: Any) -> None:
    grant = new_grant_id()
    answer = await quota.Reserve(
        pb.ReserveRequest(
            reservations=[
                item(7, grant=grant),
                item(2),
                item(1, project="nope"),
                item(3, grant=grant),
                item(7, grant=grant),
            ]
        )
    )
    errors = [from_status(r.status) for r in answer.results]
    assert errors[0] is None and errors[4] is None
    assert [r.institution for r in answer.results] == ["snu", "", "", "", "snu"]
    assert answer.results[0].grant_id == grant
    exceeded, missing, mismatch = errors[1], errors[2], errors[3]
    assert answer.results[1].status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert exceeded is not None and exceeded.reason == "QUOTA_EXCEEDED"
    assert exceeded.metadata == {
        "project": "p",
        "sku": H100,
        "limit": "8",
        "limit_kind": "hard_cap",
        "in_use": "7",
        "node": "p",
        "resource": H100,
        "requested": "2",
        "available": "1",
        "short_by": "1",
    }
    assert exceeded.message == "2 H100-SXM-80GB for project p: the hard cap of p on H100-SXM-80GB leaves 1, 1 short"
    assert missing is not None and missing.reason == "PROJECT_NOT_FOUND"
    assert answer.results[3].status.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert mismatch is not None and mismatch.reason == "RESERVATION_MISMATCH"
    assert await in_use(quota) == {H100: 7}


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (item(0), "reservations[1].count"),
        (item(100_001), "reservations[1].count"),
        (item(ttl=0), "reservations[1].ttl_seconds"),
        (item(ttl=3601), "reservations[1].ttl_seconds"),
        (item(sku="h100"), "reservations[1].sku"),
        (item(project=""), "reservations[1].project"),
        (
            pb.Reservation(grant_id="gr_bad", project="p", sku=H100, count=1, ttl_seconds=5),
            "reservations[1].grant_id",
        ),
    ],
)
async def test_a_bad_reserve_item_refuses_the_whole_call(quota: Any, bad: Any, field: str) -> None:
    code, err = await refused(quota.Reserve(pb.ReserveRequest(reservations=[item(1), bad, item(1)])))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert isinstance(err, InvalidArgument) and err.field == field
    assert await in_use(quota) == {}
    assert list((await quota.ListReservations(pb.ListReservationsRequest())).reservations) == []


async def held_state(stub: Any) -> tuple[Any, ...]:
    """Everything a write would change: reservations held, use and standings of the tree."""
    held = (await stub.ListReservations(pb.ListReservationsRequest())).reservations
    standings = (await stub.GetStandings(pb.GetStandingsRequest(tenants=["p", "snu"]))).standings
    return (
        sorted((r.grant_id, r.count, r.phase) for r in held),
        await in_use(stub),
        [(dict(s.in_use), dict(s.entitlement)) for s in standings],
    )


async def test_check_reserve_answers_what_reserve_would_and_writes_nothing(quota: Any) -> None:
    held = item(5)
    await quota.Reserve(pb.ReserveRequest(reservations=[held]))
    before = await held_state(quota)
    # Grant ids are ignored (empty, or one that holds something else: no RESERVATION_MISMATCH),
    # and each item is answered on the state as it is: 3 and 3 both fit the 3 left.
    asked = [
        pb.Reservation(project="p", sku=H100, count=3, ttl_seconds=30),
        item(3, grant=held.grant_id),
        item(4),
        item(1, project="nope"),
        pb.Reservation(grant_id="gr_bad", project="p", sku="RNGD", count=64, ttl_seconds=30),
    ]
    checked = (await quota.CheckReserve(pb.ReserveRequest(reservations=asked))).results
    assert await held_state(quota) == before
    errors = [from_status(r.status) for r in checked]
    assert [e and e.reason for e in errors] == [None, None, "QUOTA_EXCEEDED", "PROJECT_NOT_FOUND", None]
    assert [r.institution for r in checked] == ["snu", "snu", "", "", "snu"]
    assert errors[2] is not None
    assert errors[2].message == "4 H100-SXM-80GB for project p: the hard cap of p on H100-SXM-80GB leaves 3, 1 short"
    # Reserve, asked the same one item at a time on the same state, says the same.
    for request, answer in zip(asked, checked, strict=True):
        (reserved,) = (
            await quota.Reserve(pb.ReserveRequest(reservations=[item(request.count, request.sku, request.project)]))
        ).results
        assert reserved.status.code == answer.status.code and reserved.institution == answer.institution
        assert reserved.status.message == answer.status.message
        assert (reserved.preemptible, list(reserved.warnings)) == (answer.preemptible, list(answer.warnings))
        await quota.Cancel(pb.CancelRequest(grant_ids=[reserved.grant_id]))
    assert await held_state(quota) == before


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (item(0), "reservations[1].count"),
        (item(ttl=0), "reservations[1].ttl_seconds"),
        (item(sku="h100"), "reservations[1].sku"),
        (item(project=""), "reservations[1].project"),
        (pb.Reservation(project="p", sku="RNGD", count=1, ttl_seconds=5, shape="9g.99gb"), "reservations[1].shape"),
    ],
)
async def test_a_bad_check_reserve_item_is_invalid_argument_naming_the_field(quota: Any, bad: Any, field: str) -> None:
    code, err = await refused(quota.CheckReserve(pb.ReserveRequest(reservations=[item(1), bad, item(1)])))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert isinstance(err, InvalidArgument) and err.field == field
    assert list((await quota.ListReservations(pb.ListReservationsRequest())).reservations) == []


async def test_commit_cancel_and_listing(quota: Any) -> None:
    a, b = item(2), item(30, sku="RNGD")
    await quota.Reserve(pb.ReserveRequest(reservations=[a, b]))
    unknown = new_grant_id()
    committed = await quota.Commit(pb.CommitRequest(grant_ids=[a.grant_id, unknown, a.grant_id]))
    errors = [from_status(r.status) for r in committed.results]
    assert [e.reason if e else None for e in errors] == [None, "RESERVATION_NOT_FOUND", None]
    assert committed.results[1].status.code == grpc.StatusCode.NOT_FOUND.value[0]
    held = {r.grant_id: r for r in (await quota.ListReservations(pb.ListReservationsRequest())).reservations}
    assert held[a.grant_id].phase == pb.RESERVATION_PHASE_COMMITTED
    assert (held[b.grant_id].phase, held[b.grant_id].count, held[b.grant_id].sku) == (
        pb.RESERVATION_PHASE_RESERVED,
        30,
        "RNGD",
    )
    assert held[a.grant_id].created_at.seconds > 1_700_000_000
    assert await in_use(quota) == {H100: 2, "RNGD": 30}
    cancelled = await quota.Cancel(pb.CancelRequest(grant_ids=[a.grant_id, b.grant_id, a.grant_id, unknown]))
    assert [r.status.code for r in cancelled.results] == [0, 0, 0, 0]
    assert await in_use(quota) == {}
    code, err = await refused(quota.Commit(pb.CommitRequest(grant_ids=[a.grant_id, "nope"])))
    assert (code, getattr(err, "field", "")) == (grpc.StatusCode.INVALID_ARGUMENT, "grant_ids[1]")
    code, err = await refused(quota.Cancel(pb.CancelRequest(grant_ids=[""])))
    assert (code, getattr(err, "field", "")) == (grpc.StatusCode.INVALID_ARGUMENT, "grant_ids[0]")


async def test_a_reservation_not_committed_in_time_expires(quota: Any) -> None:
    lapsing = item(8, ttl=1)
    await quota.Reserve(pb.ReserveRequest(reservations=[lapsing]))
    await asyncio.sleep(1.05)
    answer = await quota.Commit(pb.CommitRequest(grant_ids=[lapsing.grant_id]))
    err = from_status(answer.results[0].status)
    assert answer.results[0].status.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert err is not None and err.reason == "RESERVATION_EXPIRED"
    assert await in_use(quota) == {}


async def test_concurrent_reserves_through_the_server_get_exactly_the_cap(quota: Any) -> None:
    answers = await asyncio.gather(
        *(quota.Reserve(pb.ReserveRequest(reservations=[item(1, sku="RNGD")])) for _ in range(200))
    )
    codes = [a.results[0].status.code for a in answers]
    assert codes.count(0) == 64
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]) == 136
    assert await in_use(quota) == {"RNGD": 64}


async def test_a_tenants_file_is_applied_at_start(start_service: Any, redis_url: str, examples_dir: Path) -> None:
    settings = QuotaSettings(redis_url=redis_url, listen="127.0.0.1:0", tenants_file=examples_dir / "tenants.yaml")
    async for stub, _ in _stub(start_service, settings):
        institutions = (await stub.ListInstitutions(pb.ListInstitutionsRequest())).institutions
        assert len(institutions) >= 4
        project = await stub.GetProject(pb.GetProjectRequest(id="snu-llm"))
        assert project.institution == "snu" and project.device_caps[H100] > 0
        # Cohorts, institution quotas, renewing budgets (in the current period) and users.
        snu = await stub.GetTenant(pb.GetTenantRequest(id="snu"))
        assert snu.parent == "universities" and snu.weight == 2
        assert {q.resource_class for q in snu.quotas} == {"gpu", "npu"}
        now = time.time()
        assert snu.budget.renews and snu.budget.start.seconds <= now < snu.budget.expiry.seconds
        users = await stub.ListTenants(pb.ListTenantsRequest(kind=pb.TENANT_KIND_USER, parent="snu-llm"))
        assert {u.id for u in users.tenants} == {"snu-llm/jiwoo", "snu-llm/minseo"}
