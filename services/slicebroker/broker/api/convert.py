"""Broker protos <-> domain values."""

from __future__ import annotations

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from slicebroker.broker.domain.model import ChangeType, Grant, GrantChange, GrantState
from slicebroker.broker.domain.quote import Quote
from slicebroker.broker.domain.snapshot import Constraint, HostResources, Topology
from slicebroker.core.errors import InvalidArgument
from slicebroker.v1 import broker_pb2, common_pb2

_STATES = {
    GrantState.PENDING: broker_pb2.GRANT_STATE_PENDING,
    GrantState.ACTIVE: broker_pb2.GRANT_STATE_ACTIVE,
    GrantState.ENDED: broker_pb2.GRANT_STATE_ENDED,
    GrantState.FAILED: broker_pb2.GRANT_STATE_FAILED,
    GrantState.QUEUED: broker_pb2.GRANT_STATE_QUEUED,
}
_STATES_BACK: dict[int, GrantState] = {int(v): k for k, v in _STATES.items()}


def duration_ms(duration: Duration) -> int:
    """Milliseconds of a Duration; negative stays negative so validation can refuse it."""
    return duration.seconds * 1000 + duration.nanos // 1_000_000


def state_of(value: int) -> GrantState | None:
    return _STATES_BACK.get(value)


def _ts(ms: int) -> Timestamp | None:
    if not ms:
        return None
    ts = Timestamp()
    ts.FromMilliseconds(ms)
    return ts


_CONSTRAINTS = {
    broker_pb2.TOPOLOGY_CONSTRAINT_UNSPECIFIED: Constraint.NONE,
    broker_pb2.TOPOLOGY_CONSTRAINT_SAME_NODE: Constraint.SAME_NODE,
    broker_pb2.TOPOLOGY_CONSTRAINT_SAME_NVLINK_DOMAIN: Constraint.SAME_NVLINK_DOMAIN,
    broker_pb2.TOPOLOGY_CONSTRAINT_SAME_LEAF: Constraint.SAME_LEAF,
    broker_pb2.TOPOLOGY_CONSTRAINT_SPREAD: Constraint.SPREAD,
}
_CONSTRAINTS_BACK = {v: k for k, v in _CONSTRAINTS.items()}


def topology_of(message: broker_pb2.Topology) -> Topology:
    constraint = _CONSTRAINTS.get(message.constraint)
    if constraint is None:
        raise InvalidArgument("topology.constraint", f"unknown constraint {message.constraint}")
    # devices_per_member is checked against the counts in validation, with the rest of the request.
    return Topology(constraint, message.required or constraint is Constraint.NONE, message.devices_per_member)


def topology_pb(topology: Topology) -> broker_pb2.Topology:
    return broker_pb2.Topology(
        constraint=_CONSTRAINTS_BACK[topology.constraint],
        required=topology.required,
        devices_per_member=topology.devices_per_member,
    )


def quote_pb(quote: Quote) -> broker_pb2.QuoteResponse:
    price = quote.price
    return broker_pb2.QuoteResponse(
        sku=quote.sku,
        count=quote.count,
        currency=price.currency if price else "",
        cost=price.cost if price else 0.0,
        cost_per_hour=price.cost_per_hour if price else 0.0,
        accelerator_hours=price.accelerator_hours if price else 0.0,
        price_tier=price.tier if price else "",
        price_book_version=price.book_version if price else 0,
        available_now=quote.available_now,
        estimated_start=_ts(quote.estimated_start_ms),
        queue_position=quote.queue_position,
        waiting_reason=quote.waiting_reason,
        refusal_reason=quote.refusal_reason,
        refusal_message=quote.refusal_message,
        warnings=quote.warnings,
    )


def host_pb(host: HostResources) -> broker_pb2.HostResources | None:
    return broker_pb2.HostResources(cpu_milli=host.cpu_milli, memory_mib=host.memory_mib) if host else None


def grant_pb(grant: Grant) -> broker_pb2.Grant:
    return broker_pb2.Grant(
        id=grant.id,
        project=grant.project,
        institution=grant.institution,
        sku=grant.sku,
        count=grant.count,
        slices=[
            common_pb2.Slice(node_id=s.node_id, device_id=s.device_id, kind=s.kind, profile=s.profile)
            for s in grant.slices
        ],
        state=_STATES[grant.state],
        created_at=_ts(grant.created_ms),
        expires_at=_ts(grant.expires_ms),
        ended_at=_ts(grant.ended_ms),
        end_reason=grant.end_reason,
        idempotency_key=grant.idempotency_key,
        topology=topology_pb(grant.topology),
        priority_class=grant.priority.value,
        preemptible=grant.preemptible,
        warnings=grant.warnings,
        queue_position=grant.queue_position,
        waiting_reason=grant.waiting_reason,
        start_after=_ts(grant.start_after_ms),
        preemption_deadline=_ts(grant.preemption_deadline_ms),
        preemption_reason=grant.preemption_reason,
        host_per_slice=host_pb(grant.host),
        user=grant.user,
        shape=broker_pb2.SliceShape(
            kind=grant.shape.kind.value,
            profile=grant.shape.profile,
            compute_milli=grant.shape.compute if grant.shape.kind == "share" else 0,
            memory_milli=grant.shape.memory if grant.shape.kind == "share" else 0,
        ),
    )


_CHANGE_TYPES = {
    ChangeType.QUEUED: broker_pb2.GRANT_CHANGE_TYPE_QUEUED,
    ChangeType.GRANTED: broker_pb2.GRANT_CHANGE_TYPE_GRANTED,
    ChangeType.RENEWED: broker_pb2.GRANT_CHANGE_TYPE_RENEWED,
    ChangeType.PREEMPTION_NOTICE: broker_pb2.GRANT_CHANGE_TYPE_PREEMPTION_NOTICE,
    ChangeType.PREEMPTED: broker_pb2.GRANT_CHANGE_TYPE_PREEMPTED,
    ChangeType.EXPIRED: broker_pb2.GRANT_CHANGE_TYPE_EXPIRED,
    ChangeType.RELEASED: broker_pb2.GRANT_CHANGE_TYPE_RELEASED,
    ChangeType.FAILED: broker_pb2.GRANT_CHANGE_TYPE_FAILED,
    ChangeType.SNAPSHOT_BEGIN: broker_pb2.GRANT_CHANGE_TYPE_SNAPSHOT_BEGIN,
    ChangeType.SNAPSHOT: broker_pb2.GRANT_CHANGE_TYPE_SNAPSHOT,
    ChangeType.SNAPSHOT_END: broker_pb2.GRANT_CHANGE_TYPE_SNAPSHOT_END,
}


def change_pb(change: GrantChange) -> broker_pb2.GrantChange:
    return broker_pb2.GrantChange(
        type=_CHANGE_TYPES[change.type],
        revision=change.revision,
        grant=grant_pb(change.grant) if change.grant is not None else None,
        at=_ts(change.at_ms),
    )


def timestamp_ms(ts: Timestamp) -> int:
    """Milliseconds of a Timestamp; 0 when unset."""
    return ts.seconds * 1000 + ts.nanos // 1_000_000
