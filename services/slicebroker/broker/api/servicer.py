"""BrokerService over gRPC: convert, call the domain once, convert back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from slicebroker.broker.api.convert import (
    change_pb,
    duration_ms,
    grant_pb,
    quote_pb,
    state_of,
    timestamp_ms,
    topology_of,
)
from slicebroker.broker.domain.grants import Access, GrantService
from slicebroker.broker.domain.quote import QuoteService
from slicebroker.broker.domain.watch import GrantWatch
from slicebroker.runtime.context import principal_var
from slicebroker.runtime.policy import require_tenant_access
from slicebroker.v1 import broker_pb2, broker_pb2_grpc


class BrokerServicer(broker_pb2_grpc.BrokerServiceServicer):
    def __init__(
        self, grants: GrantService, watch: GrantWatch | None = None, quotes: QuoteService | None = None
    ) -> None:
        self._grants = grants
        self._quotes = quotes
        self._watch = watch

    async def RequestGrant(
        self, request: broker_pb2.RequestGrantRequest, context: grpc.aio.ServicerContext
    ) -> broker_pb2.Grant:
        grant = await self._grants.request_grant(**request_args(request), access=caller_access(), user=caller_user())
        return grant_pb(grant)

    async def GetGrant(
        self, request: broker_pb2.GetGrantRequest, context: grpc.aio.ServicerContext
    ) -> broker_pb2.Grant:
        return grant_pb(await self._grants.get_grant(request.id, caller_access()))

    async def ListGrants(
        self, request: broker_pb2.ListGrantsRequest, context: grpc.aio.ServicerContext
    ) -> broker_pb2.ListGrantsResponse:
        grants, token = await self._grants.list_grants(
            project=request.project,
            state=state_of(request.state),
            page_size=request.page_size,
            page_token=request.page_token,
            access=caller_access(),
        )
        return broker_pb2.ListGrantsResponse(grants=[grant_pb(g) for g in grants], next_page_token=token)

    async def RenewGrant(
        self, request: broker_pb2.RenewGrantRequest, context: grpc.aio.ServicerContext
    ) -> broker_pb2.Grant:
        return grant_pb(await self._grants.renew_grant(request.id, duration_ms(request.lease), caller_access()))

    async def ReleaseGrant(
        self, request: broker_pb2.ReleaseGrantRequest, context: grpc.aio.ServicerContext
    ) -> broker_pb2.Grant:
        return grant_pb(await self._grants.release_grant(request.id, caller_access()))

    async def WatchGrants(
        self, request: broker_pb2.WatchGrantsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[broker_pb2.GrantChange]:
        assert self._watch is not None, "WatchGrants needs the broker's GrantWatch"
        changes = self._watch.watch(
            project=request.project,
            grant_id=request.grant_id,
            from_revision=request.from_revision,
            access=caller_access(),
        )
        async for change in changes:
            yield change_pb(change)

    async def Quote(
        self, request: broker_pb2.RequestGrantRequest, context: grpc.aio.ServicerContext
    ) -> broker_pb2.QuoteResponse:
        assert self._quotes is not None, "Quote needs the broker's QuoteService"
        quote = await self._quotes.quote(caller_access(), user=caller_user(), **request_args(request))
        return quote_pb(quote)


def request_args(request: broker_pb2.RequestGrantRequest) -> dict[str, Any]:
    """A request's fields as the domain takes them (RequestGrant and Quote read the same message)."""
    shape = request.shape
    return {
        "project": request.project,
        "sku": request.sku,
        "count": request.count,
        "lease_ms": duration_ms(request.lease),
        "idempotency_key": request.idempotency_key,
        "alternatives": [(a.sku, a.count) for a in request.alternatives],
        "topology": topology_of(request.topology),
        "priority": request.priority_class,
        "queue": request.queue,
        "shape": (shape.kind, shape.profile, shape.compute_milli, shape.memory_milli),
        "host": (request.host_per_slice.cpu_milli, request.host_per_slice.memory_mib),
        "start_after_ms": timestamp_ms(request.start_after),
    }


def caller_user() -> str:
    """The tenant principal asking, for quota's per-user caps and per-user billing; "" for facility
    admins and the mesh's services (the operator asks for pods, not as a person)."""
    principal = principal_var.get()
    if principal.is_admin or principal.local or principal.is_service:
        return ""
    return principal.name


def caller_access() -> Access:
    """The calling tenant's reach, for the domain to check before it acts; None for admins and
    services, who may act on any grant."""
    principal = principal_var.get()
    if principal.is_admin or principal.local:
        return None
    return lambda institution, project: require_tenant_access(principal, institution, project)
