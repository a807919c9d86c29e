"""What each SDK method sends and how its answer is read, independent of sync or asyncio.

An `Op` is one RPC ready to go: which method, the request (built once, so every retry sends the
same bytes, idempotency key included) and the converter of the response. `Client` and
`AsyncClient` only differ in how they run an Op.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar

import grpc
from google.protobuf import descriptor, duration_pb2
from google.protobuf.message import Message

from slicebroker.client import _convert as convert
from slicebroker.client._errors import InvalidArgumentError
from slicebroker.client._lease import Lease, lease_to_timedelta
from slicebroker.client._models import (
    Grant,
    GrantState,
    HostResources,
    Institution,
    Node,
    Placement,
    Project,
    Quote,
    Shape,
    Sku,
    SkuCapacity,
    Usage,
)
from slicebroker.client._options import (
    ENV_ACCOUNTING_ADDR,
    ENV_BROKER_ADDR,
    ENV_INVENTORY_ADDR,
    ENV_QUOTA_ADDR,
    ClientOptions,
)
from slicebroker.v1 import accounting_pb2, broker_pb2, inventory_pb2, quota_pb2

T = TypeVar("T")
Page = tuple[list[T], str]
"""One page of a paginated list: the items and the token of the next page ("" after the last)."""


class Service(StrEnum):
    BROKER = "broker"
    INVENTORY = "inventory"
    QUOTA = "quota"
    ACCOUNTING = "accounting"

    def target(self, options: ClientOptions) -> str | None:
        return {
            Service.BROKER: options.broker_addr,
            Service.INVENTORY: options.inventory_addr,
            Service.QUOTA: options.quota_addr,
            Service.ACCOUNTING: options.accounting_addr,
        }[self]

    @property
    def env_var(self) -> str:
        return {
            Service.BROKER: ENV_BROKER_ADDR,
            Service.INVENTORY: ENV_INVENTORY_ADDR,
            Service.QUOTA: ENV_QUOTA_ADDR,
            Service.ACCOUNTING: ENV_ACCOUNTING_ADDR,
        }[self]


_PROTO_SERVICES: dict[Service, descriptor.ServiceDescriptor] = {
    Service.BROKER: broker_pb2.DESCRIPTOR.services_by_name["BrokerService"],
    Service.INVENTORY: inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"],
    Service.QUOTA: quota_pb2.DESCRIPTOR.services_by_name["QuotaService"],
    Service.ACCOUNTING: accounting_pb2.DESCRIPTOR.services_by_name["AccountingService"],
}


@dataclass(frozen=True, slots=True)
class Rpc:
    """One method of one service: its path on the wire and how to read its response."""

    service: Service
    path: str
    deserialize: Callable[[bytes], Any]


def _rpc(service: Service, method: str, response: type[Message]) -> Rpc:
    # Resolved against the generated descriptors so a misspelt method fails at import, not in use.
    desc = _PROTO_SERVICES[service].methods_by_name[method]
    if desc.output_type.full_name != response.DESCRIPTOR.full_name:
        raise TypeError(f"{desc.full_name} returns {desc.output_type.full_name}")
    return Rpc(service, f"/{desc.containing_service.full_name}/{desc.name}", response.FromString)


REQUEST_GRANT = _rpc(Service.BROKER, "RequestGrant", broker_pb2.Grant)
GET_GRANT = _rpc(Service.BROKER, "GetGrant", broker_pb2.Grant)
LIST_GRANTS = _rpc(Service.BROKER, "ListGrants", broker_pb2.ListGrantsResponse)
RENEW_GRANT = _rpc(Service.BROKER, "RenewGrant", broker_pb2.Grant)
RELEASE_GRANT = _rpc(Service.BROKER, "ReleaseGrant", broker_pb2.Grant)
QUOTE = _rpc(Service.BROKER, "Quote", broker_pb2.QuoteResponse)
WATCH_GRANTS = _rpc(Service.BROKER, "WatchGrants", broker_pb2.GrantChange)
LIST_SKUS = _rpc(Service.INVENTORY, "ListSkus", inventory_pb2.ListSkusResponse)
LIST_NODES = _rpc(Service.INVENTORY, "ListNodes", inventory_pb2.ListNodesResponse)
GET_CAPACITY = _rpc(Service.INVENTORY, "GetCapacity", inventory_pb2.GetCapacityResponse)
LIST_PROJECTS = _rpc(Service.QUOTA, "ListProjects", quota_pb2.ListProjectsResponse)
LIST_INSTITUTIONS = _rpc(Service.QUOTA, "ListInstitutions", quota_pb2.ListInstitutionsResponse)
GET_USAGE = _rpc(Service.ACCOUNTING, "GetUsage", accounting_pb2.GetUsageResponse)


@dataclass(frozen=True, slots=True)
class Op(Generic[T]):
    rpc: Rpc
    request: Message
    convert: Callable[[Any], T]


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


_PLACEMENTS = {
    Placement.ANYWHERE: broker_pb2.TOPOLOGY_CONSTRAINT_UNSPECIFIED,
    Placement.SAME_NODE: broker_pb2.TOPOLOGY_CONSTRAINT_SAME_NODE,
    Placement.SAME_NVLINK_DOMAIN: broker_pb2.TOPOLOGY_CONSTRAINT_SAME_NVLINK_DOMAIN,
    Placement.SAME_LEAF: broker_pb2.TOPOLOGY_CONSTRAINT_SAME_LEAF,
    Placement.SPREAD: broker_pb2.TOPOLOGY_CONSTRAINT_SPREAD,
}


@dataclass(frozen=True, slots=True)
class RequestExtras:
    """The optional parts of a grant request (see Client.request_grant)."""

    placement: Placement | str = Placement.ANYWHERE
    required: bool = True
    alternatives: Sequence[tuple[str, int]] = ()
    priority: str = ""
    shape: Shape | None = None
    host: HostResources | None = None
    start_after: datetime | None = None
    devices_per_member: int = 0


def request_grant(
    project: str,
    sku: str,
    count: int,
    lease: Lease,
    idempotency_key: str | None,
    queue: bool = False,
    extras: RequestExtras = RequestExtras(),
) -> Op[Grant]:
    request = grant_request(project, sku, count, lease, idempotency_key, queue, extras)
    return Op(REQUEST_GRANT, request, convert.grant)


def quote(project: str, sku: str, count: int, lease: Lease, extras: RequestExtras = RequestExtras()) -> Op[Quote]:
    """The same request as `request_grant` would send, quoted instead (nothing is submitted)."""
    return Op(QUOTE, grant_request(project, sku, count, lease, None, False, extras), convert.quote)


def watch_grants(project: str | None, grant_id: str | None, from_revision: str) -> broker_pb2.WatchGrantsRequest:
    return broker_pb2.WatchGrantsRequest(project=project or "", grant_id=grant_id or "", from_revision=from_revision)


def grant_request(
    project: str,
    sku: str,
    count: int,
    lease: Lease,
    idempotency_key: str | None,
    queue: bool = False,
    extras: RequestExtras = RequestExtras(),
) -> broker_pb2.RequestGrantRequest:
    shape = extras.shape or Shape()
    host = extras.host or HostResources()
    request = broker_pb2.RequestGrantRequest(
        topology=broker_pb2.Topology(
            constraint=_PLACEMENTS[Placement(extras.placement)],
            required=extras.required,
            devices_per_member=extras.devices_per_member,
        ),
        alternatives=[broker_pb2.Alternative(sku=s, count=n) for s, n in extras.alternatives],
        priority_class=extras.priority,
        shape=broker_pb2.SliceShape(
            kind=shape.kind, profile=shape.profile, compute_milli=shape.compute_milli, memory_milli=shape.memory_milli
        ),
        queue=queue,
        project=project,
        sku=sku,
        count=count,
        lease=_duration(lease),
        # Chosen here, once: the Op is reused by every retry, so a retry replays this key.
        idempotency_key=idempotency_key or new_idempotency_key(),
        host_per_slice=broker_pb2.HostResources(cpu_milli=host.cpu_milli, memory_mib=host.memory_mib) if host else None,
    )
    if extras.start_after is not None:
        if extras.start_after.tzinfo is None:
            raise _invalid("start_after", "start_after must be timezone-aware (e.g. datetime.now(UTC) + ...)")
        request.start_after.FromDatetime(extras.start_after)
    return request


def get_grant(grant_id: str) -> Op[Grant]:
    return Op(GET_GRANT, broker_pb2.GetGrantRequest(id=grant_id), convert.grant)


def list_grants_page(
    project: str | None, state: GrantState | str | None, page_size: int, page_token: str
) -> Op[Page[Grant]]:
    request = broker_pb2.ListGrantsRequest(project=project or "", page_size=page_size, page_token=page_token)
    if state is not None:
        request.state = _state(state)

    def read(msg: broker_pb2.ListGrantsResponse) -> Page[Grant]:
        return [convert.grant(g) for g in msg.grants], msg.next_page_token

    return Op(LIST_GRANTS, request, read)


def renew_grant(grant_id: str, lease: Lease) -> Op[Grant]:
    return Op(RENEW_GRANT, broker_pb2.RenewGrantRequest(id=grant_id, lease=_duration(lease)), convert.grant)


def release_grant(grant_id: str) -> Op[Grant]:
    return Op(RELEASE_GRANT, broker_pb2.ReleaseGrantRequest(id=grant_id), convert.grant)


def skus() -> Op[list[Sku]]:
    def read(msg: inventory_pb2.ListSkusResponse) -> list[Sku]:
        return [convert.sku(s) for s in msg.skus]

    return Op(LIST_SKUS, inventory_pb2.ListSkusRequest(), read)


def nodes_page(sku: str | None, page_size: int, page_token: str) -> Op[Page[Node]]:
    request = inventory_pb2.ListNodesRequest(sku=sku or "", page_size=page_size, page_token=page_token)

    def read(msg: inventory_pb2.ListNodesResponse) -> Page[Node]:
        return [convert.node(n) for n in msg.nodes], msg.next_page_token

    return Op(LIST_NODES, request, read)


def capacity() -> Op[list[SkuCapacity]]:
    def read(msg: inventory_pb2.GetCapacityResponse) -> list[SkuCapacity]:
        return [convert.capacity(c) for c in msg.skus]

    return Op(GET_CAPACITY, inventory_pb2.GetCapacityRequest(), read)


def projects(institution: str | None) -> Op[list[Project]]:
    def read(msg: quota_pb2.ListProjectsResponse) -> list[Project]:
        return [convert.project(p) for p in msg.projects]

    return Op(LIST_PROJECTS, quota_pb2.ListProjectsRequest(institution=institution or ""), read)


def institutions() -> Op[list[Institution]]:
    def read(msg: quota_pb2.ListInstitutionsResponse) -> list[Institution]:
        return [convert.institution(i) for i in msg.institutions]

    return Op(LIST_INSTITUTIONS, quota_pb2.ListInstitutionsRequest(), read)


def usage(institution: str | None, project: str | None, sku: str | None) -> Op[Usage]:
    request = accounting_pb2.GetUsageRequest(institution=institution or "", project=project or "", sku=sku or "")
    return Op(GET_USAGE, request, convert.usage)


def _duration(lease: Lease) -> duration_pb2.Duration:
    try:
        delta: timedelta = lease_to_timedelta(lease)
    except ValueError as exc:
        raise _invalid("lease", str(exc)) from None
    duration = duration_pb2.Duration()
    duration.FromTimedelta(delta)
    return duration


def _state(state: GrantState | str) -> broker_pb2.GrantState:
    try:
        return convert.state_to_proto(GrantState(state))
    except (ValueError, KeyError):
        known = ", ".join(s.value for s in GrantState if s is not GrantState.UNKNOWN)
        raise _invalid("state", f"state must be one of {known}, got {state!r}") from None


def _invalid(field: str, message: str) -> InvalidArgumentError:
    """The error the server would send, raised before anything is sent."""
    return InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", message, {"field": field}, field)
