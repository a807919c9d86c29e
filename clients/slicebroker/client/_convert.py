"""Protobuf messages to the SDK's dataclasses (and the few values that go the other way)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType

from google.protobuf import timestamp_pb2

from slicebroker.client._models import (
    Device,
    Grant,
    GrantChange,
    GrantChangeType,
    GrantState,
    HostResources,
    Institution,
    Node,
    Project,
    Quote,
    Sku,
    SkuCapacity,
    Slice,
    Usage,
    UsageRow,
)
from slicebroker.v1 import accounting_pb2, broker_pb2, common_pb2, inventory_pb2, quota_pb2

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_STATE_OF_PROTO: dict[broker_pb2.GrantState, GrantState] = {
    broker_pb2.GRANT_STATE_PENDING: GrantState.PENDING,
    broker_pb2.GRANT_STATE_ACTIVE: GrantState.ACTIVE,
    broker_pb2.GRANT_STATE_ENDED: GrantState.ENDED,
    broker_pb2.GRANT_STATE_FAILED: GrantState.FAILED,
    broker_pb2.GRANT_STATE_QUEUED: GrantState.QUEUED,
}
_PROTO_OF_STATE = {state: number for number, state in _STATE_OF_PROTO.items()}


def state_to_proto(state: GrantState) -> broker_pb2.GrantState:
    """KeyError for GrantState.UNKNOWN, which no request may carry."""
    return _PROTO_OF_STATE[state]


def timestamp(ts: timestamp_pb2.Timestamp) -> datetime | None:
    """A set timestamp as an aware UTC datetime; None for an unset (zero) one."""
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.ToDatetime(tzinfo=UTC)


def grant(msg: broker_pb2.Grant) -> Grant:
    return Grant(
        id=msg.id,
        project=msg.project,
        institution=msg.institution,
        sku=msg.sku,
        count=msg.count,
        slices=tuple(slice_(s) for s in msg.slices),
        state=_STATE_OF_PROTO.get(msg.state, GrantState.UNKNOWN),
        # Every grant a broker returns has been created; EPOCH only stands in for a malformed answer.
        created_at=timestamp(msg.created_at) or EPOCH,
        expires_at=timestamp(msg.expires_at),
        ended_at=timestamp(msg.ended_at),
        queue_position=msg.queue_position,
        waiting_reason=msg.waiting_reason,
        priority_class=msg.priority_class or "standard",
        preemptible=msg.preemptible,
        end_reason=msg.end_reason,
        idempotency_key=msg.idempotency_key,
        host_per_slice=host(msg.host_per_slice) if msg.HasField("host_per_slice") else None,
        start_after=timestamp(msg.start_after),
        preemption_deadline=timestamp(msg.preemption_deadline),
        preemption_reason=msg.preemption_reason,
        user=msg.user,
    )


def host(msg: broker_pb2.HostResources) -> HostResources:
    return HostResources(cpu_milli=msg.cpu_milli, memory_mib=msg.memory_mib)


def quote(msg: broker_pb2.QuoteResponse) -> Quote:
    return Quote(
        sku=msg.sku,
        count=msg.count,
        currency=msg.currency,
        cost=msg.cost,
        cost_per_hour=msg.cost_per_hour,
        accelerator_hours=msg.accelerator_hours,
        price_tier=msg.price_tier,
        price_book_version=msg.price_book_version,
        available_now=msg.available_now,
        estimated_start=timestamp(msg.estimated_start),
        queue_position=msg.queue_position,
        waiting_reason=msg.waiting_reason,
        refusal_reason=msg.refusal_reason,
        refusal_message=msg.refusal_message,
        warnings=tuple(msg.warnings),
    )


_CHANGE_OF_PROTO: dict[int, GrantChangeType] = {
    broker_pb2.GRANT_CHANGE_TYPE_QUEUED: GrantChangeType.QUEUED,
    broker_pb2.GRANT_CHANGE_TYPE_GRANTED: GrantChangeType.GRANTED,
    broker_pb2.GRANT_CHANGE_TYPE_RENEWED: GrantChangeType.RENEWED,
    broker_pb2.GRANT_CHANGE_TYPE_PREEMPTION_NOTICE: GrantChangeType.PREEMPTION_NOTICE,
    broker_pb2.GRANT_CHANGE_TYPE_PREEMPTED: GrantChangeType.PREEMPTED,
    broker_pb2.GRANT_CHANGE_TYPE_EXPIRED: GrantChangeType.EXPIRED,
    broker_pb2.GRANT_CHANGE_TYPE_RELEASED: GrantChangeType.RELEASED,
    broker_pb2.GRANT_CHANGE_TYPE_FAILED: GrantChangeType.FAILED,
    broker_pb2.GRANT_CHANGE_TYPE_SNAPSHOT_BEGIN: GrantChangeType.SNAPSHOT_BEGIN,
    broker_pb2.GRANT_CHANGE_TYPE_SNAPSHOT: GrantChangeType.SNAPSHOT,
    broker_pb2.GRANT_CHANGE_TYPE_SNAPSHOT_END: GrantChangeType.SNAPSHOT_END,
}


def grant_change(msg: broker_pb2.GrantChange) -> GrantChange:
    return GrantChange(
        type=_CHANGE_OF_PROTO.get(msg.type, GrantChangeType.UNKNOWN),
        revision=msg.revision,
        grant=grant(msg.grant) if msg.HasField("grant") else None,
        at=timestamp(msg.at),
    )


def slice_(msg: common_pb2.Slice) -> Slice:
    return Slice(node_id=msg.node_id, device_id=msg.device_id, kind=msg.kind, profile=msg.profile)


def sku(msg: inventory_pb2.Sku) -> Sku:
    return Sku(name=msg.name, vendor=msg.vendor, model=msg.model, memory_gib=msg.memory_gib, kind=msg.kind)


def capacity(msg: inventory_pb2.SkuCapacity) -> SkuCapacity:
    return SkuCapacity(sku=msg.sku, nodes=msg.nodes, devices=msg.devices, free=msg.free, unhealthy=msg.unhealthy)


def device(msg: inventory_pb2.Device) -> Device:
    return Device(id=msg.id, sku=msg.sku, index=msg.index, healthy=msg.healthy, holder=msg.holder or None)


def node(msg: inventory_pb2.Node) -> Node:
    return Node(
        id=msg.id,
        site=msg.site,
        rack=msg.rack,
        devices=tuple(device(d) for d in msg.devices),
        generation=msg.generation,
        schedulable=msg.schedulable,
        mig_layout=dict(msg.mig_layout),
    )


def usage_row(msg: accounting_pb2.UsageRow) -> UsageRow:
    return UsageRow(
        institution=msg.institution,
        project=msg.project,
        sku=msg.sku,
        device_seconds=msg.device_seconds,
        running_device_seconds=msg.running_device_seconds,
        grants=msg.grants,
        running_grants=msg.running_grants,
    )


def usage(msg: accounting_pb2.GetUsageResponse) -> Usage:
    return Usage(rows=tuple(usage_row(r) for r in msg.rows), as_of=timestamp(msg.as_of) or EPOCH)


def institution(msg: quota_pb2.Institution) -> Institution:
    return Institution(id=msg.id, display_name=msg.display_name, generation=msg.generation)


def project(msg: quota_pb2.Project) -> Project:
    return Project(
        id=msg.id,
        institution=msg.institution,
        display_name=msg.display_name,
        # Sorted so that output is stable whatever order the map arrived in.
        device_caps=MappingProxyType(dict(sorted(msg.device_caps.items()))),
        devices_in_use=MappingProxyType(dict(sorted(msg.devices_in_use.items()))),
        generation=msg.generation,
    )
