"""Tenants see and act on only their own things; admin and service methods are refused to others;
every refusal is UNAUTHENTICATED or PERMISSION_DENIED with a reason and is audited; the audit log
pages and filters; rate limits and request bounds refuse with RESOURCE_EXHAUSTED / the field."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from slicebroker.core.errors import InvalidArgument, PermissionDenied, ResourceExhausted, Unauthenticated
from slicebroker.core.reasons import Reason
from slicebroker.quota.main import build as build_quota
from slicebroker.quota.settings import QuotaSettings
from slicebroker.runtime.status import from_rpc_error
from slicebroker.v1 import (
    accounting_pb2,
    accounting_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    broker_pb2,
    broker_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
    quota_pb2,
    quota_pb2_grpc,
)
from tests.security.secure_mesh import SecureMesh, start_secure_mesh, write_tokens


@pytest.fixture
async def mesh(start_service: Any, redis_url: str, tmp_path: Path) -> SecureMesh:
    return await start_secure_mesh(start_service, redis_url, tmp_path)


async def refused(call: Awaitable[Any]) -> Any:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    err = from_rpc_error(info.value)
    assert info.value.code() not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)
    assert err.message
    return err


async def test_tenants_see_only_their_own_quota_tree(mesh: SecureMesh) -> None:
    async with mesh.channel("quota") as ch:
        quota = quota_pb2_grpc.QuotaServiceStub(ch)
        a, member = mesh.md("uni-a"), mesh.md("uni-a-llm")
        own = await quota.ListProjects(quota_pb2.ListProjectsRequest(), metadata=a)
        assert {p.id for p in own.projects} == {"uni-a-llm", "uni-a-vision"}
        mine = await quota.ListProjects(quota_pb2.ListProjectsRequest(), metadata=member)
        assert [p.id for p in mine.projects] == ["uni-a-llm"]
        institutions = await quota.ListInstitutions(quota_pb2.ListInstitutionsRequest(), metadata=a)
        assert [i.id for i in institutions.institutions] == ["uni-a"]
        tenants = await quota.ListTenants(quota_pb2.ListTenantsRequest(), metadata=a)
        assert {t.id for t in tenants.tenants} == {"uni-a", "uni-a-llm", "uni-a-vision"}
        assert (await quota.GetProject(quota_pb2.GetProjectRequest(id="uni-a-vision"), metadata=a)).id
        for call in (
            quota.GetProject(quota_pb2.GetProjectRequest(id="lab-b-bio"), metadata=a),
            quota.GetProject(quota_pb2.GetProjectRequest(id="uni-a-vision"), metadata=member),
            quota.ListProjects(quota_pb2.ListProjectsRequest(institution="lab-b"), metadata=a),
            quota.GetTenant(quota_pb2.GetTenantRequest(id="lab-b"), metadata=a),
            quota.GetStandings(quota_pb2.GetStandingsRequest(tenants=["lab-b-chem"]), metadata=a),
        ):
            assert isinstance(await refused(call), PermissionDenied)
        everything = await quota.ListProjects(quota_pb2.ListProjectsRequest(), metadata=mesh.md("admin"))
        assert {p.institution for p in everything.projects} >= {"uni-a", "lab-b"}


async def test_tenants_see_only_their_own_usage_and_bills(mesh: SecureMesh) -> None:
    async with mesh.channel("accounting") as ch:
        acc = accounting_pb2_grpc.AccountingServiceStub(ch)
        a, member = mesh.md("uni-a"), mesh.md("uni-a-llm")
        await acc.GetUsage(accounting_pb2.GetUsageRequest(), metadata=a)
        await acc.GetUsage(accounting_pb2.GetUsageRequest(), metadata=member)
        for call in (
            acc.GetUsage(accounting_pb2.GetUsageRequest(institution="lab-b"), metadata=a),
            acc.GetUsage(accounting_pb2.GetUsageRequest(project="uni-a-vision"), metadata=member),
            acc.GetStatements(accounting_pb2.GetStatementsRequest(period="2025-11"), metadata=member),
            acc.ClosePeriod(accounting_pb2.ClosePeriodRequest(period="2025-11"), metadata=a),
            acc.IngestEvents(accounting_pb2.IngestEventsRequest(), metadata=a),
        ):
            assert isinstance(await refused(call), PermissionDenied)


async def test_admin_and_service_methods_are_refused_to_others_and_change_nothing(mesh: SecureMesh) -> None:
    async with mesh.channel("quota") as qch, mesh.channel("inventory") as ich:
        quota, inventory = quota_pb2_grpc.QuotaServiceStub(qch), inventory_pb2_grpc.InventoryServiceStub(ich)
        a, admin = mesh.md("uni-a"), mesh.md("admin")
        before = await quota.GetProject(quota_pb2.GetProjectRequest(id="uni-a-llm"), metadata=a)
        for call in (
            quota.UpsertProject(
                quota_pb2.UpsertProjectRequest(id="uni-a-llm", institution="uni-a", device_caps={"H100-SXM-80GB": 64}),
                metadata=a,
            ),
            quota.SetQuota(quota_pb2.SetQuotaRequest(tenant="uni-a-llm"), metadata=a),
            inventory.LoadFacility(inventory_pb2.LoadFacilityRequest(yaml="sites: []"), metadata=a),
            inventory.ListNodes(inventory_pb2.ListNodesRequest(), metadata=a),
            # Claims and reservations belong to the broker alone, not even to facility admins.
            inventory.Claim(inventory_pb2.ClaimRequest(), metadata=admin),
            quota.Reserve(quota_pb2.ReserveRequest(), metadata=admin),
        ):
            err = await refused(call)
            assert isinstance(err, PermissionDenied) and err.reason is Reason.PERMISSION_DENIED
            assert "not allowed for role" in err.message
        after = await quota.GetProject(quota_pb2.GetProjectRequest(id="uni-a-llm"), metadata=a)
        assert after == before
        await inventory.GetCapacity(inventory_pb2.GetCapacityRequest(), metadata=a)
        for md in ((), [("authorization", "Bearer sb_nope.nope")]):
            assert isinstance(
                await refused(quota.ListProjects(quota_pb2.ListProjectsRequest(), metadata=md)), Unauthenticated
            )


async def test_refusals_and_mutations_are_audited_and_admins_can_page_through_them(mesh: SecureMesh) -> None:
    async with mesh.channel("quota") as ch:
        quota, audit = quota_pb2_grpc.QuotaServiceStub(ch), audit_pb2_grpc.AuditServiceStub(ch)
        a, admin = mesh.md("uni-a"), mesh.md("admin")
        await refused(
            quota.GetProject(
                quota_pb2.GetProjectRequest(id="lab-b-bio"), metadata=[*a, ("x-request-id", "rid-cross-1")]
            )
        )
        await refused(quota.SetQuota(quota_pb2.SetQuotaRequest(tenant="uni-a"), metadata=a))
        await refused(quota.ListProjects(quota_pb2.ListProjectsRequest(), metadata=()))
        await quota.UpsertInstitution(quota_pb2.UpsertInstitutionRequest(id="new-inst"), metadata=admin)
        await quota.ListProjects(quota_pb2.ListProjectsRequest(), metadata=admin)  # a read: not audited

        assert isinstance(await refused(audit.ListAudit(audit_pb2.ListAuditRequest(), metadata=a)), PermissionDenied)
        log = await audit.ListAudit(audit_pb2.ListAuditRequest(), metadata=admin)
        entries = list(log.entries)[:5]
        # Newest first; every entry of this test, and the tenant's refused ListAudit too.
        assert [(e.method, e.outcome) for e in entries] == [
            ("ListAudit", "PERMISSION_DENIED"),
            ("UpsertInstitution", "OK"),
            ("ListProjects", "UNAUTHENTICATED"),
            ("SetQuota", "PERMISSION_DENIED"),
            ("GetProject", "PERMISSION_DENIED"),
        ]
        cross = entries[-1]
        assert (cross.principal, cross.role, cross.institution) == ("uni-a-admin", "institution-admin", "uni-a")
        assert cross.request_id == "rid-cross-1" and cross.reason == "PERMISSION_DENIED"
        assert cross.target == "id=lab-b-bio" and cross.service == "quota" and cross.time.seconds > 0
        assert entries[1].principal == "ops" and entries[1].target == "id=new-inst"

        only = await audit.ListAudit(audit_pb2.ListAuditRequest(principal="uni-a-admin"), metadata=admin)
        assert len(only.entries) == 3
        assert {e.method for e in only.entries} == {"ListAudit", "SetQuota", "GetProject"}
        by_method = await audit.ListAudit(audit_pb2.ListAuditRequest(method="SetQuota"), metadata=admin)
        assert [e.outcome for e in by_method.entries] == ["PERMISSION_DENIED"]
        ok = await audit.ListAudit(audit_pb2.ListAuditRequest(outcome="OK"), metadata=admin)
        assert ok.entries[0].method == "UpsertInstitution" and {e.outcome for e in ok.entries} == {"OK"}
        future = audit_pb2.ListAuditRequest(since={"seconds": cross.time.seconds + 3600})
        assert not (await audit.ListAudit(future, metadata=admin)).entries
        past = audit_pb2.ListAuditRequest(until={"seconds": cross.time.seconds - 3600})
        assert not (await audit.ListAudit(past, metadata=admin)).entries

        paged, token = [], ""
        while True:
            page = await audit.ListAudit(audit_pb2.ListAuditRequest(page_size=2, page_token=token), metadata=admin)
            paged.extend(e.id for e in page.entries)
            token = page.next_page_token
            if not token:
                break
        assert paged[: len(entries)] == [e.id for e in entries]
        err = await refused(audit.ListAudit(audit_pb2.ListAuditRequest(page_token="junk"), metadata=admin))
        assert isinstance(err, InvalidArgument) and err.field == "page_token"


async def test_every_service_serves_its_own_audit_log(mesh: SecureMesh) -> None:
    for service in ("inventory", "accounting", "broker"):
        async with mesh.channel(service) as ch:
            log = await audit_pb2_grpc.AuditServiceStub(ch).ListAudit(
                audit_pb2.ListAuditRequest(), metadata=mesh.md("admin")
            )
            assert all(e.service == service for e in log.entries)


async def test_request_bounds_refuse_with_the_field_before_the_handler(mesh: SecureMesh) -> None:
    async with mesh.channel("quota") as ch:
        quota = quota_pb2_grpc.QuotaServiceStub(ch)
        err = await refused(quota.GetProject(quota_pb2.GetProjectRequest(id="x" * 5000), metadata=mesh.md("uni-a")))
        assert isinstance(err, InvalidArgument) and err.field == "id" and "at most 4096" in err.message


async def test_rate_limit_per_principal(start_service: Any, redis_url: str, tmp_path: Path) -> None:
    tokens = write_tokens(tmp_path / "tokens.yaml")
    settings = QuotaSettings(
        redis_url=redis_url,
        listen="127.0.0.1:0",
        auth_tokens_file=tmp_path / "tokens.yaml",
        rate_limit_per_s=0.5,
        rate_limit_burst=3,
    )
    running = await start_service(build_quota, settings)
    async with grpc.aio.insecure_channel(running.address) as ch:
        quota = quota_pb2_grpc.QuotaServiceStub(ch)
        a = [("authorization", f"Bearer {tokens['uni-a']}")]
        for _ in range(3):
            await quota.ListInstitutions(quota_pb2.ListInstitutionsRequest(), metadata=a)
        err = await refused(quota.ListInstitutions(quota_pb2.ListInstitutionsRequest(), metadata=a))
        assert isinstance(err, ResourceExhausted) and err.reason is Reason.RATE_LIMITED
        assert int(err.metadata["retry_after_ms"]) > 0
        # Others are not starved by one noisy tenant, and the mesh's services are never limited.
        await quota.ListInstitutions(
            quota_pb2.ListInstitutionsRequest(), metadata=[("authorization", f"Bearer {tokens['lab-b']}")]
        )
        svc = [("authorization", f"Bearer {tokens['broker']}")]
        for _ in range(10):
            await quota.ListReservations(quota_pb2.ListReservationsRequest(), metadata=svc)


@pytest.fixture
async def foreign_grant(mesh: SecureMesh) -> str:
    async with mesh.channel("broker") as ch:
        grant = await broker_pb2_grpc.BrokerServiceStub(ch).RequestGrant(
            broker_pb2.RequestGrantRequest(
                project="uni-a-llm", sku="H100-SXM-80GB", count=1, lease=Duration(seconds=600), idempotency_key="iso-1"
            ),
            metadata=mesh.md("uni-a"),
            timeout=10,
        )
    return str(grant.id)


async def test_the_owner_can_use_its_grant(mesh: SecureMesh, foreign_grant: str) -> None:
    async with mesh.channel("broker") as ch:
        broker = broker_pb2_grpc.BrokerServiceStub(ch)
        a = mesh.md("uni-a")
        assert (await broker.GetGrant(broker_pb2.GetGrantRequest(id=foreign_grant), metadata=a)).id == foreign_grant
        renewed = broker_pb2.RenewGrantRequest(id=foreign_grant, lease=Duration(seconds=600))
        await broker.RenewGrant(renewed, metadata=a)
        await broker.ReleaseGrant(broker_pb2.ReleaseGrantRequest(id=foreign_grant), metadata=a)


@pytest.mark.parametrize("rpc", ["GetGrant", "RenewGrant", "ReleaseGrant"])
async def test_another_tenant_cannot_touch_a_grant(mesh: SecureMesh, foreign_grant: str, rpc: str) -> None:
    requests = {
        "GetGrant": broker_pb2.GetGrantRequest(id=foreign_grant),
        "RenewGrant": broker_pb2.RenewGrantRequest(id=foreign_grant, lease=Duration(seconds=600)),
        "ReleaseGrant": broker_pb2.ReleaseGrantRequest(id=foreign_grant),
    }
    async with mesh.channel("broker") as ch:
        broker = broker_pb2_grpc.BrokerServiceStub(ch)
        err = await refused(getattr(broker, rpc)(requests[rpc], metadata=mesh.md("lab-b")))
        assert isinstance(err, PermissionDenied)
        # Still there and still active for its owner.
        grant = await broker.GetGrant(broker_pb2.GetGrantRequest(id=foreign_grant), metadata=mesh.md("uni-a"))
        assert grant.state == broker_pb2.GRANT_STATE_ACTIVE


async def test_another_tenant_cannot_list_or_request_for_a_foreign_project(
    mesh: SecureMesh, foreign_grant: str
) -> None:
    async with mesh.channel("broker") as ch:
        broker = broker_pb2_grpc.BrokerServiceStub(ch)
        b = mesh.md("lab-b")
        listed = broker.ListGrants(broker_pb2.ListGrantsRequest(project="uni-a-llm"), metadata=b)
        assert isinstance(await refused(listed), PermissionDenied)
        everything = await broker.ListGrants(broker_pb2.ListGrantsRequest(), metadata=b)
        assert foreign_grant not in {g.id for g in everything.grants}
        request = broker_pb2.RequestGrantRequest(
            project="uni-a-llm", sku="H100-SXM-80GB", count=1, lease=Duration(seconds=60), idempotency_key="iso-2"
        )
        assert isinstance(await refused(broker.RequestGrant(request, metadata=b)), PermissionDenied)


async def test_audit_until_the_epoch_is_an_empty_page_not_an_error(mesh: SecureMesh) -> None:
    """A regression the soak's fuzzing found: `until` at 0 made an invalid stream range (INTERNAL)."""
    from google.protobuf.timestamp_pb2 import Timestamp

    from slicebroker.v1 import audit_pb2, audit_pb2_grpc

    async with mesh.channel("accounting") as ch:
        stub = audit_pb2_grpc.AuditServiceStub(ch)
        response = await stub.ListAudit(audit_pb2.ListAuditRequest(until=Timestamp()), metadata=mesh.md("admin"))
        assert list(response.entries) == []


async def test_a_burst_is_answered_with_clear_statuses_and_the_mesh_is_never_held_back(
    start_service: Any, redis_url: str, tmp_path: Path
) -> None:
    """Far more simultaneous tenant calls than the server admits: every call gets an answer — served,
    or refused at once with OVERLOADED and a retry hint — none is dropped as a bare CANCELLED, and
    the mesh's own calls pass regardless."""
    tokens = write_tokens(tmp_path / "tokens.yaml")
    settings = QuotaSettings(
        redis_url=redis_url,
        listen="127.0.0.1:0",
        auth_tokens_file=tmp_path / "tokens.yaml",
        rate_limit_per_s=0,
        admission_max_in_flight=1,
        admission_max_queue=20,
        admission_max_wait_s=0.001,
    )
    running = await start_service(build_quota, settings)
    tenant = [("authorization", f"Bearer {tokens['uni-a']}")]
    svc = [("authorization", f"Bearer {tokens['broker']}")]
    outcomes: Counter[str] = Counter()
    async with grpc.aio.insecure_channel(running.address) as ch:
        quota = quota_pb2_grpc.QuotaServiceStub(ch)
        await quota.ListInstitutions(quota_pb2.ListInstitutionsRequest(), metadata=tenant)

        async def one() -> None:
            try:
                await quota.ListInstitutions(quota_pb2.ListInstitutionsRequest(), metadata=tenant, timeout=30)
                outcomes["OK"] += 1
            except grpc.aio.AioRpcError as exc:
                err = from_rpc_error(exc)
                outcomes[f"{exc.code().name}:{getattr(err, 'reason', '')}"] += 1
                if isinstance(err, ResourceExhausted):
                    assert int(err.metadata["retry_after_ms"]) >= 1

        async def mesh_call() -> None:
            await quota.ListReservations(quota_pb2.ListReservationsRequest(), metadata=svc, timeout=30)

        results = await asyncio.gather(*(one() for _ in range(3000)), *(mesh_call() for _ in range(50)))
    assert len(results) == 3050
    assert set(outcomes) <= {"OK", f"RESOURCE_EXHAUSTED:{Reason.OVERLOADED}"}, outcomes
    assert outcomes["OK"] >= 2 and outcomes[f"RESOURCE_EXHAUSTED:{Reason.OVERLOADED}"] > 0


async def test_a_grant_carries_the_user_who_asked_to_quota_and_the_ledger(mesh: SecureMesh) -> None:
    """A project member's requests count against "<project>/<user>" in quota (its cap binds), and the
    ledger bills them to that user."""
    admin = mesh.md("admin")
    await mesh.cap_user("uni-a-llm", "ana", "H100-SXM-80GB", "1")
    async with mesh.channel("broker") as bch, mesh.channel("accounting") as ach:
        broker = broker_pb2_grpc.BrokerServiceStub(bch)

        def ask(key: str) -> broker_pb2.RequestGrantRequest:
            return broker_pb2.RequestGrantRequest(
                project="uni-a-llm", sku="H100-SXM-80GB", count=1, lease=Duration(seconds=60), idempotency_key=key
            )

        grant = await broker.RequestGrant(ask("ana-1"), metadata=mesh.md("uni-a-llm"))
        assert grant.user == "ana"
        err = await refused(broker.RequestGrant(ask("ana-2"), metadata=mesh.md("uni-a-llm")))
        assert isinstance(err, ResourceExhausted) and err.metadata["node"] == "uni-a-llm/ana"
        # The institution admin is not that user: the project still has room for them.
        other = await broker.RequestGrant(ask("admin-1"), metadata=mesh.md("uni-a"))
        assert other.user == "uni-a-admin"
        for g in (grant, other):
            await broker.ReleaseGrant(broker_pb2.ReleaseGrantRequest(id=g.id), metadata=admin)

        accounting = accounting_pb2_grpc.AccountingServiceStub(ach)
        start, end = Timestamp(), Timestamp()
        start.FromSeconds(int(time.time()) - 3600)
        end.FromSeconds(int(time.time()) + 3600)
        for _ in range(200):  # the relay delivers the ended grants
            ledger = await accounting.QueryLedger(
                accounting_pb2.QueryLedgerRequest(start=start, end=end, project="uni-a-llm", group_by=["user"]),
                metadata=admin,
            )
            if {r.user for r in ledger.rows} == {"ana", "uni-a-admin"}:
                break
            await asyncio.sleep(0.05)
        assert {r.user for r in ledger.rows} == {"ana", "uni-a-admin"}
