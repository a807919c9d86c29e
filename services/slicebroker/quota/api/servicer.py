"""The QuotaService gRPC servicer: each method converts the request, makes one domain call and
converts the answer. Errors are raised as domain errors and mapped by the shared interceptor;
per-item refusals travel in each result's `google.rpc.Status`."""

from __future__ import annotations

import time
from typing import Any, TypeAlias

import grpc

from slicebroker.quota.api import convert
from slicebroker.quota.domain.model import NodeKind, TenantNode
from slicebroker.quota.domain.service import QuotaService
from slicebroker.runtime.context import Principal, principal_var
from slicebroker.runtime.policy import require_tenant_access, scope_institution, visible_projects
from slicebroker.v1 import quota_pb2, quota_pb2_grpc

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _sees(principal: Principal, node: TenantNode) -> bool:
    """Tenants see their own institution's node and its projects (a project member: its own)."""
    if principal.is_admin or principal.local:
        return True
    projects = visible_projects(principal)
    if node.kind is NodeKind.INSTITUTION:
        return node.id == principal.institution
    if node.kind is NodeKind.PROJECT:
        return node.parent == principal.institution and (projects is None or node.id in projects)
    if node.kind is NodeKind.USER:
        # A user node names its project, not its institution: members of that project see it.
        return projects is not None and node.parent in projects
    return False


def _require_sees(principal: Principal, node: TenantNode) -> None:
    if not _sees(principal, node):
        institution = node.parent if node.kind is NodeKind.PROJECT else node.id
        if node.kind in (NodeKind.COHORT, NodeKind.USER):
            institution = ""
        require_tenant_access(principal, institution, node.id)


class QuotaServicer(quota_pb2_grpc.QuotaServiceServicer):
    def __init__(self, service: QuotaService) -> None:
        self._service = service

    async def UpsertInstitution(self, request: Any, context: Context) -> Any:
        return convert.institution(await self._service.upsert_institution(convert.institution_spec(request)))

    async def ListInstitutions(self, request: Any, context: Context) -> Any:
        own = scope_institution(principal_var.get(), "")
        institutions = await self._service.list_institutions()
        return convert.institutions([i for i in institutions if not own or i.id == own])

    async def UpsertProject(self, request: Any, context: Context) -> Any:
        written = await self._service.upsert_project_checked(convert.project_spec(request))
        return convert.project(written.value, written.warnings)

    async def GetProject(self, request: Any, context: Context) -> Any:
        project = await self._service.get_project(request.id)
        require_tenant_access(principal_var.get(), project.institution, project.id)
        return convert.project(project)

    async def ListProjects(self, request: Any, context: Context) -> Any:
        principal = principal_var.get()
        institution = scope_institution(principal, request.institution)
        projects, visible = await self._service.list_projects(institution), visible_projects(principal)
        return convert.projects([p for p in projects if visible is None or p.id in visible])

    async def Reserve(self, request: Any, context: Context) -> Any:
        results = await self._service.reserve(convert.reservation_requests(request), _now_ms())
        return convert.reserve_response(results)

    async def CheckReserve(self, request: Any, context: Context) -> Any:
        results = await self._service.check_reserve(convert.reservation_requests(request), _now_ms())
        return convert.reserve_response(results)

    async def Commit(self, request: Any, context: Context) -> Any:
        results = await self._service.commit(list(request.grant_ids), _now_ms())
        return quota_pb2.CommitResponse(results=convert.grant_id_results(results))

    async def Cancel(self, request: Any, context: Context) -> Any:
        results = await self._service.cancel(list(request.grant_ids), _now_ms())
        return quota_pb2.CancelResponse(results=convert.grant_id_results(results))

    async def ListReservations(self, request: Any, context: Context) -> Any:
        return convert.held_reservations(await self._service.list_reservations(_now_ms()))

    # -- admin, budgets, fair share --------------------------------------------------------------

    async def UpsertTenant(self, request: Any, context: Context) -> Any:
        return convert.tenant(await self._service.upsert_node(convert.node_spec(request)))

    async def GetTenant(self, request: Any, context: Context) -> Any:
        node = await self._service.get_node(request.id)
        _require_sees(principal_var.get(), node)
        return convert.tenant(node)

    async def ListTenants(self, request: Any, context: Context) -> Any:
        kind = convert.node_kind(request.kind)
        principal = principal_var.get()
        nodes = await self._service.list_nodes(kind, request.parent)
        return convert.tenants([n for n in nodes if _sees(principal, n)])

    async def SetQuota(self, request: Any, context: Context) -> Any:
        entries = convert.quota_entries(request)
        written = await self._service.set_quota_checked(request.tenant, entries, convert.expected(request))
        return convert.tenant(written.value, written.warnings)

    async def SetBudget(self, request: Any, context: Context) -> Any:
        node = await self._service.set_budget(
            request.tenant, convert.budget(request), convert.expected(request), request.roll_over
        )
        return convert.tenant(node)

    async def TopUpBudget(self, request: Any, context: Context) -> Any:
        node = await self._service.top_up(request.tenant, convert.top_up_mh(request), convert.expected(request))
        return convert.tenant(node)

    async def RecordBurn(self, request: Any, context: Context) -> Any:
        applied = await self._service.record_burn(convert.burn_events(request), _now_ms())
        return quota_pb2.RecordBurnResponse(applied=applied)

    async def GetStandings(self, request: Any, context: Context) -> Any:
        principal = principal_var.get()
        standings = await self._service.standings(list(request.tenants), _now_ms())
        if request.tenants:
            for standing in standings:
                _require_sees(principal, standing.node)
        return convert.standings([s for s in standings if _sees(principal, s.node)])

    async def FairShareOrder(self, request: Any, context: Context) -> Any:
        ids = await self._service.fair_share_order(convert.pending(request), _now_ms())
        return quota_pb2.FairShareOrderResponse(ids=ids)

    async def CheckCapacity(self, request: Any, context: Context) -> Any:
        return convert.commitments(await self._service.check_capacity())
