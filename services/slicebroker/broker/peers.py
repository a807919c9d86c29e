"""The broker's ports to the other services, over gRPC: every call has a deadline, carries the
request id, and turns a failed status back into the domain error it stands for."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from slicebroker.broker.domain.model import EventType, Grant, GrantEvent, SkuShapes
from slicebroker.broker.domain.ports import ChangeKind, ClaimOutcome, NodeChange, Reserved, ReserveItem
from slicebroker.broker.domain.quote import Price
from slicebroker.broker.domain.snapshot import DeviceSlices, NodeClaim, NodeView, SliceSpec
from slicebroker.core.errors import SlicebrokerError
from slicebroker.runtime.channels import call_metadata, open_channel
from slicebroker.runtime.status import from_rpc_error, from_status
from slicebroker.runtime.tls import TlsFiles
from slicebroker.v1 import (
    accounting_pb2,
    accounting_pb2_grpc,
    common_pb2,
    inventory_pb2,
    inventory_pb2_grpc,
    quota_pb2,
    quota_pb2_grpc,
)

T = TypeVar("T")


class _Peer:
    def __init__(self, target: str, token: str, timeout_s: float, tls: TlsFiles | None) -> None:
        self.channel = open_channel(target, tls)
        self._token = token
        self._timeout_s = timeout_s

    async def call(self, method: Callable[..., Awaitable[T]], request: Any) -> T:
        try:
            return await method(request, timeout=self._timeout_s, metadata=call_metadata(self._token))
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None

    async def close(self) -> None:
        await self.channel.close()


class GrpcInventory(_Peer):
    def __init__(self, target: str, token: str = "", timeout_s: float = 5.0, tls: TlsFiles | None = None) -> None:
        super().__init__(target, token, timeout_s, tls)
        self._stub = inventory_pb2_grpc.InventoryServiceStub(self.channel)

    async def skus(self) -> dict[str, SkuShapes]:
        """The catalogue: each SKU's slice kinds, partition geometry and profiles."""
        response = await self.call(self._stub.ListSkus, inventory_pb2.ListSkusRequest())
        return {
            sku.name: SkuShapes(
                geometry=(sku.geometry.compute_slices, sku.geometry.memory_slices),
                kinds=frozenset(k.kind for k in sku.slice_kinds) | {"whole"},
                profiles={p.profile: (p.kind, p.compute, p.memory) for p in sku.partitions},
            )
            for sku in response.skus
        }

    async def nodes(self, sku: str) -> list[NodeView]:
        views: list[NodeView] = []
        token = ""
        while True:
            page = await self.call(
                self._stub.ListNodes,
                inventory_pb2.ListNodesRequest(sku=sku, page_size=1000, page_token=token),
            )
            views.extend(_node_view(node, sku) for node in page.nodes)
            token = page.next_page_token
            if not token:
                return views

    async def claim(self, claims: Sequence[tuple[str, Sequence[NodeClaim]]]) -> list[ClaimOutcome]:
        request = inventory_pb2.ClaimRequest(
            claims=[
                inventory_pb2.DeviceClaim(
                    grant_id=grant_id,
                    nodes=[
                        inventory_pb2.NodeClaim(
                            node_id=c.node_id,
                            expected_generation=c.expected_generation,
                            device_ids=c.device_ids,
                            slices=[_slice_claim(s) for s in c.slices],
                            cpu_milli=c.cpu_milli,
                            memory_mib=c.memory_mib,
                        )
                        for c in node_claims
                    ],
                )
                for grant_id, node_claims in claims
            ]
        )
        response = await self.call(self._stub.Claim, request)
        return [
            ClaimOutcome(
                error=from_status(result.status),
                generations={g.node_id: g.generation for g in result.generations},
            )
            for result in response.results
        ]

    async def release(self, grant_ids: Sequence[str]) -> dict[str, int]:
        response = await self.call(self._stub.Release, inventory_pb2.ReleaseRequest(grant_ids=grant_ids))
        return {g.node_id: g.generation for g in response.generations}

    async def holders(self) -> list[str]:
        response = await self.call(self._stub.ListHolders, inventory_pb2.ListHoldersRequest())
        return list(response.grant_ids)

    async def watch(self, from_revision: int) -> AsyncIterator[NodeChange]:
        # No deadline: a watch lives as long as the broker; keepalives notice a dead peer.
        # Batched: changes that are ready together come as one message, far fewer to decode when
        # the facility is busy (heartbeats, bursts of claims).
        stream = self._stub.Watch(
            inventory_pb2.WatchRequest(from_revision=from_revision, max_batch=_WATCH_BATCH),
            metadata=call_metadata(self._token),
        )
        try:
            async for message in stream:
                batch = message.events if message.type == inventory_pb2.WATCH_EVENT_TYPE_BATCH else (message,)
                for event in batch:
                    kind = _CHANGE_KINDS.get(event.type)
                    if kind is None:
                        continue
                    node = _node_view(event.node, event.node.sku) if kind is ChangeKind.UPSERT else None
                    yield NodeChange(kind, event.revision, node, event.node_id or event.node.id)
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None


_WATCH_BATCH = 256

_CHANGE_KINDS = {
    inventory_pb2.WATCH_EVENT_TYPE_UPSERT: ChangeKind.UPSERT,
    inventory_pb2.WATCH_EVENT_TYPE_DELETED: ChangeKind.DELETED,
    inventory_pb2.WATCH_EVENT_TYPE_SNAPSHOT_BEGIN: ChangeKind.SNAPSHOT_BEGIN,
    inventory_pb2.WATCH_EVENT_TYPE_SNAPSHOT_END: ChangeKind.SNAPSHOT_END,
}


def _slice_claim(spec: SliceSpec) -> inventory_pb2.SliceClaim:
    share = spec.kind == "share"
    return inventory_pb2.SliceClaim(
        device_id=spec.device_id,
        kind=spec.kind,
        profile=spec.profile,
        compute_milli=spec.compute if share else 0,
        memory_milli=spec.memory if share else 0,
    )


def _node_view(node: inventory_pb2.Node, sku: str) -> NodeView:
    devices = [d for d in node.devices if d.sku == sku]
    return NodeView(
        node_id=node.id,
        sku=sku,
        generation=node.generation,
        schedulable=node.schedulable and node.state in ("", "active"),
        # Whole-device grants take devices with neither a holder nor slices on them.
        free_devices=tuple(d.id for d in devices if d.healthy and not d.holder and not d.slices),
        held={d.id: d.holder for d in devices if d.holder},
        nvlink_domain=node.nvlink_domain,
        leaf=node.leaf,
        # Capacity comes from the snapshot's catalogue (by SKU and kind) when the node is stored.
        sliced=tuple(
            DeviceSlices(
                d.id,
                d.slices[0].kind,
                (0, 0),
                tuple((s.grant_id, SliceSpec(d.id, s.kind, s.profile, s.compute, s.memory)) for s in d.slices),
            )
            for d in devices
            if d.slices
        ),
        cpu_free=node.cpu_milli - node.cpu_milli_used,
        memory_free=node.memory_mib - node.memory_mib_used,
        mig_layout=dict(node.mig_layout),
        device_count=len(devices),
    )


class GrpcQuota(_Peer):
    def __init__(self, target: str, token: str = "", timeout_s: float = 5.0, tls: TlsFiles | None = None) -> None:
        super().__init__(target, token, timeout_s, tls)
        self._stub = quota_pb2_grpc.QuotaServiceStub(self.channel)

    async def reserve(self, items: Sequence[ReserveItem]) -> list[Reserved | SlicebrokerError]:
        return _reserved(await self.call(self._stub.Reserve, _reserve_request(items)))

    async def check(self, items: Sequence[ReserveItem]) -> list[Reserved | SlicebrokerError]:
        """What `reserve` would answer each item now; quota writes nothing (grant ids may be empty)."""
        return _reserved(await self.call(self._stub.CheckReserve, _reserve_request(items)))

    async def commit(self, grant_ids: Sequence[str]) -> list[SlicebrokerError | None]:
        response = await self.call(self._stub.Commit, quota_pb2.CommitRequest(grant_ids=grant_ids))
        return [from_status(r.status) for r in response.results]

    async def cancel(self, grant_ids: Sequence[str]) -> list[SlicebrokerError | None]:
        response = await self.call(self._stub.Cancel, quota_pb2.CancelRequest(grant_ids=grant_ids))
        return [from_status(r.status) for r in response.results]

    async def fair_share_order(self, grants: Sequence[Grant]) -> list[str]:
        request = quota_pb2.FairShareOrderRequest(
            requests=[quota_pb2.PendingRequest(id=g.id, project=g.project, sku=g.sku, count=g.count) for g in grants]
        )
        response = await self.call(self._stub.FairShareOrder, request)
        return list(response.ids)

    async def institution_of(self, project: str) -> str:
        response = await self.call(self._stub.GetProject, quota_pb2.GetProjectRequest(id=project))
        return str(response.institution)

    async def ancestors(self, tenant: str) -> list[str]:
        out: list[str] = []
        while True:
            response = await self.call(self._stub.GetTenant, quota_pb2.GetTenantRequest(id=tenant))
            tenant = str(response.parent)
            if not tenant or tenant in out:
                return out
            out.append(tenant)

    async def reservations(self) -> list[str]:
        response = await self.call(self._stub.ListReservations, quota_pb2.ListReservationsRequest())
        return [r.grant_id for r in response.reservations]


def _reserve_request(items: Sequence[ReserveItem]) -> quota_pb2.ReserveRequest:
    return quota_pb2.ReserveRequest(
        reservations=[
            quota_pb2.Reservation(
                grant_id=i.grant_id,
                project=i.project,
                sku=i.sku,
                count=i.count,
                ttl_seconds=i.ttl_s,
                priority=_PRIORITIES[i.priority],
                shape=i.shape,
                user=i.user,
            )
            for i in items
        ]
    )


def _reserved(response: quota_pb2.ReserveResponse) -> list[Reserved | SlicebrokerError]:
    return [
        from_status(r.status) or Reserved(r.institution, r.preemptible, tuple(r.warnings)) for r in response.results
    ]


_PRIORITIES = {
    "guaranteed": quota_pb2.PRIORITY_CLASS_GUARANTEED,
    "standard": quota_pb2.PRIORITY_CLASS_STANDARD,
    "preemptible": quota_pb2.PRIORITY_CLASS_PREEMPTIBLE,
}

_EVENT_TYPES = {
    EventType.GRANTED: common_pb2.GRANT_EVENT_TYPE_GRANTED,
    EventType.ENDED: common_pb2.GRANT_EVENT_TYPE_ENDED,
}


class GrpcAccounting(_Peer):
    def __init__(self, target: str, token: str = "", timeout_s: float = 10.0, tls: TlsFiles | None = None) -> None:
        super().__init__(target, token, timeout_s, tls)
        self._stub = accounting_pb2_grpc.AccountingServiceStub(self.channel)

    async def ingest(self, events: Sequence[GrantEvent]) -> None:
        await self.call(
            self._stub.IngestEvents, accounting_pb2.IngestEventsRequest(events=[_event_pb(e) for e in events])
        )

    async def rate(
        self, institution: str, sku: str, slice_kind: str, count: int, duration_ms: int, priority_class: str
    ) -> Price:
        """The price book's cost of a prospective use (for quotes)."""
        duration = Duration()
        duration.FromMilliseconds(duration_ms)
        request = accounting_pb2.RateRequest(
            institution=institution,
            sku=sku,
            slice_kind=slice_kind,
            count=count,
            duration=duration,
            priority_class=priority_class,
        )
        r = await self.call(self._stub.Rate, request)
        return Price(r.currency, r.cost, r.cost_per_hour, r.accelerator_hours, r.tier, r.price_book_version)


def _event_pb(event: GrantEvent) -> common_pb2.GrantEvent:
    at = Timestamp()
    at.FromMilliseconds(event.at_ms)
    return common_pb2.GrantEvent(
        event_id=event.event_id,
        grant_id=event.grant_id,
        type=_EVENT_TYPES[event.type],
        institution=event.institution,
        project=event.project,
        sku=event.sku,
        count=event.count,
        at=at,
        reason=event.reason,
        slices=[
            common_pb2.Slice(node_id=s.node_id, device_id=s.device_id, kind=s.kind, profile=s.profile)
            for s in event.slices
        ],
        slice_kind=event.slice_kind,
        priority_class=event.priority_class,
        user=event.user,
    )
