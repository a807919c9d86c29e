"""Broker protos <-> domain values."""

from __future__ import annotations

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from slicebroker.broker.domain.model import Grant, GrantState
from slicebroker.v1 import broker_pb2, common_pb2

_STATES = {
    GrantState.PENDING: broker_pb2.GRANT_STATE_PENDING,
    GrantState.ACTIVE: broker_pb2.GRANT_STATE_ACTIVE,
    GrantState.ENDED: broker_pb2.GRANT_STATE_ENDED,
    GrantState.FAILED: broker_pb2.GRANT_STATE_FAILED,
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


def grant_pb(grant: Grant) -> broker_pb2.Grant:
    return broker_pb2.Grant(
        id=grant.id,
        project=grant.project,
        institution=grant.institution,
        sku=grant.sku,
        count=grant.count,
        slices=[common_pb2.Slice(node_id=s.node_id, device_id=s.device_id) for s in grant.slices],
        state=_STATES[grant.state],
        created_at=_ts(grant.created_ms),
        expires_at=_ts(grant.expires_ms),
        ended_at=_ts(grant.ended_ms),
        end_reason=grant.end_reason,
        idempotency_key=grant.idempotency_key,
    )
