"""Grant calls the operator makes through the SDK.

The SDK's public `request_grant` has no topology argument yet, so the one request the operator needs
with a topology (all of a pod's devices on one node) is built here from the SDK's own Op plumbing;
every other call is the public API.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from slicebroker.client import Client, Grant
from slicebroker.client import _convert as convert
from slicebroker.client import _ops as ops
from slicebroker.v1 import broker_pb2

_TOPOLOGIES = {
    "same-node": broker_pb2.TOPOLOGY_CONSTRAINT_SAME_NODE,
    "same-nvlink-domain": broker_pb2.TOPOLOGY_CONSTRAINT_SAME_NVLINK_DOMAIN,
    "same-leaf": broker_pb2.TOPOLOGY_CONSTRAINT_SAME_LEAF,
    "spread": broker_pb2.TOPOLOGY_CONSTRAINT_SPREAD,
}
TOPOLOGIES = tuple(_TOPOLOGIES)


def request_grant(
    client: Client,
    project: str,
    sku: str,
    count: int,
    lease: timedelta,
    key: str,
    topology: str,
    alternatives: Sequence[str] = (),
    queue: bool = True,
) -> Grant:
    """Requests a grant with an idempotency key derived from the Kubernetes object's uid, so a
    replay after an operator restart returns the grant already made instead of a second one."""
    duration = ops._duration(lease)
    request = broker_pb2.RequestGrantRequest(
        project=project,
        sku=sku,
        count=count,
        lease=duration,
        idempotency_key=key,
        topology=broker_pb2.Topology(constraint=_TOPOLOGIES[topology], required=True),
        # One request for every SKU the resource name fits, tried in order by the broker, so one
        # idempotency key covers them all and a replay cannot pick a second SKU.
        alternatives=[broker_pb2.Alternative(sku=alt, count=count) for alt in alternatives],
        # Within quota but no room now: wait in the broker's queue (a QUEUED grant that a replay of
        # the key shows served later) rather than be refused and poll.
        queue=queue,
    )
    return client._run(ops.Op(ops.REQUEST_GRANT, request, convert.grant))
