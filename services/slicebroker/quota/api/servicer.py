"""The QuotaService gRPC servicer: each method converts the request, makes one domain call and
converts the answer. Errors are raised as domain errors and mapped by the shared interceptor;
per-item refusals travel in each result's `google.rpc.Status`."""

from __future__ import annotations

import time
from typing import Any, TypeAlias

import grpc

from slicebroker.quota.api import convert
from slicebroker.quota.domain.service import QuotaService
from slicebroker.v1 import quota_pb2, quota_pb2_grpc

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


def _now_ms() -> int:
    return int(time.time() * 1000)


class QuotaServicer(quota_pb2_grpc.QuotaServiceServicer):
    def __init__(self, service: QuotaService) -> None:
        self._service = service

    async def UpsertInstitution(self, request: Any, context: Context) -> Any:
        return convert.institution(await self._service.upsert_institution(convert.institution_spec(request)))

    async def ListInstitutions(self, request: Any, context: Context) -> Any:
        return convert.institutions(await self._service.list_institutions())

    async def UpsertProject(self, request: Any, context: Context) -> Any:
        return convert.project(await self._service.upsert_project(convert.project_spec(request)))

    async def GetProject(self, request: Any, context: Context) -> Any:
        return convert.project(await self._service.get_project(request.id))

    async def ListProjects(self, request: Any, context: Context) -> Any:
        return convert.projects(await self._service.list_projects(request.institution))

    async def Reserve(self, request: Any, context: Context) -> Any:
        results = await self._service.reserve(convert.reservation_requests(request), _now_ms())
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
        return convert.tenant(await self._service.get_node(request.id))

    async def ListTenants(self, request: Any, context: Context) -> Any:
        kind = convert.node_kind(request.kind)
        return convert.tenants(await self._service.list_nodes(kind, request.parent))

    async def SetQuota(self, request: Any, context: Context) -> Any:
        entries = convert.quota_entries(request)
        node = await self._service.set_quota(request.tenant, entries, convert.expected(request))
        return convert.tenant(node)

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
        return convert.standings(await self._service.standings(list(request.tenants), _now_ms()))

    async def FairShareOrder(self, request: Any, context: Context) -> Any:
        ids = await self._service.fair_share_order(convert.pending(request), _now_ms())
        return quota_pb2.FairShareOrderResponse(ids=ids)
