"""Grant requests the operator makes, through the SDK's public `Client.request_grant`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from slicebroker.client import Client, Grant, Placement, Shape
from slicebroker.operator.mapping import TOPOLOGIES

__all__ = ["TOPOLOGIES", "request_grant"]


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
    *,
    required: bool = True,
    shape: Shape | None = None,
    priority: str = "",
    devices_per_member: int = 0,
) -> Grant:
    """Requests a grant with an idempotency key derived from the Kubernetes object's uid, so a
    replay after an operator restart returns the grant already made instead of a second one.

    One request for every SKU the resource name fits (`alternatives`, tried in order by the
    broker), so one key covers them all and a replay cannot pick a second SKU. Within quota but
    with no room now, it waits in the broker's queue (a QUEUED grant that a replay of the key
    shows served later) rather than being refused and polled. `devices_per_member` is a gang
    member's share, which the broker keeps on one node."""
    return client.request_grant(
        project,
        sku,
        count,
        lease,
        key,
        queue=queue,
        placement=Placement(topology),
        required=required,
        alternatives=[(alt, count) for alt in alternatives],
        shape=shape,
        priority=priority,
        devices_per_member=devices_per_member,
    )
