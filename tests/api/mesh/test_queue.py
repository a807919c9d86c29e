"""Requests within quota that find no room wait in the queue and are served as room appears:
priority class first, then fair share and age; backfill never delays the head."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from slicebroker.runtime.status import from_rpc_error
from slicebroker.v1 import broker_pb2
from tests.api.mesh.conftest import Stubs

H100 = "H100-SXM-80GB"
QUEUED, ACTIVE, ENDED = broker_pb2.GRANT_STATE_QUEUED, broker_pb2.GRANT_STATE_ACTIVE, broker_pb2.GRANT_STATE_ENDED


def ask(project: str, count: int, lease_s: int = 600, **extra) -> broker_pb2.RequestGrantRequest:
    return broker_pb2.RequestGrantRequest(
        project=project, sku=H100, count=count, lease=Duration(seconds=lease_s), **extra
    )


async def fill(stubs: Stubs) -> list[broker_pb2.Grant]:
    """Takes all 64 devices: 16 for each project."""
    return [
        await stubs.broker.RequestGrant(ask(p, 16)) for p in ("uni-a-llm", "uni-a-vision", "lab-b-bio", "lab-b-chem")
    ]


async def state_of(stubs: Stubs, grant_id: str) -> broker_pb2.Grant:
    return await stubs.broker.GetGrant(broker_pb2.GetGrantRequest(id=grant_id))


async def until(stubs: Stubs, grant_id: str, state: int, timeout_s: float = 30) -> broker_pb2.Grant:
    deadline = time.monotonic() + timeout_s
    while True:
        grant = await state_of(stubs, grant_id)
        if grant.state == state or time.monotonic() > deadline:
            return grant
        await asyncio.sleep(0.05)


async def test_a_queued_request_is_granted_when_room_appears(stubs: Stubs) -> None:
    held = await fill(stubs)
    queued = await stubs.broker.RequestGrant(ask("uni-a-llm", 4, queue=True))
    assert queued.state == QUEUED
    assert queued.queue_position == 1
    assert "4 x H100-SXM-80GB" in queued.waiting_reason and "0 whole devices free" in queued.waiting_reason
    assert not queued.slices

    await stubs.broker.ReleaseGrant(broker_pb2.ReleaseGrantRequest(id=held[1].id))
    granted = await until(stubs, queued.id, ACTIVE)
    assert granted.state == ACTIVE and len(granted.slices) == 4


async def test_without_queue_the_request_is_refused_at_once(stubs: Stubs) -> None:
    await fill(stubs)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.broker.RequestGrant(ask("uni-a-llm", 1))
    assert from_rpc_error(info.value).reason == "INSUFFICIENT_CAPACITY"


async def test_over_quota_is_never_queued(stubs: Stubs) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.broker.RequestGrant(ask("uni-a-llm", 21, queue=True))
    assert from_rpc_error(info.value).reason == "QUOTA_EXCEEDED"
    listed = await stubs.broker.ListGrants(broker_pb2.ListGrantsRequest(state=QUEUED))
    assert list(listed.grants) == []


async def test_guaranteed_is_served_before_standard_that_waited_longer(stubs: Stubs) -> None:
    held = await fill(stubs)
    standard = await stubs.broker.RequestGrant(ask("uni-a-vision", 4, queue=True))
    guaranteed = await stubs.broker.RequestGrant(ask("lab-b-bio", 4, queue=True, priority_class="guaranteed"))
    assert (await state_of(stubs, guaranteed.id)).queue_position == 1
    assert (await state_of(stubs, standard.id)).queue_position == 2
    # Room for one of them: 4 devices free up (release 16, re-take 12 for another project first).
    await stubs.broker.ReleaseGrant(broker_pb2.ReleaseGrantRequest(id=held[3].id))
    first = await until(stubs, guaranteed.id, ACTIVE)
    assert first.state == ACTIVE
    second = await until(stubs, standard.id, ACTIVE)
    assert second.state == ACTIVE


async def test_backfill_never_delays_the_head(stubs: Stubs) -> None:
    # All taken; the soonest lease ends in ~60 s (16 devices), the rest in 600 s.
    short = await stubs.broker.RequestGrant(ask("uni-a-llm", 16, lease_s=60))
    for p in ("uni-a-vision", "lab-b-bio", "lab-b-chem"):
        await stubs.broker.RequestGrant(ask(p, 16))
    # The head needs 8 on one node; 2 devices come free now (not enough for it).
    head = await stubs.broker.RequestGrant(
        ask(
            "lab-b-bio",
            4,
            queue=True,
            topology=broker_pb2.Topology(constraint=broker_pb2.TOPOLOGY_CONSTRAINT_SAME_NODE, required=True),
        )
    )
    long_small = await stubs.broker.RequestGrant(ask("lab-b-chem", 1, lease_s=3600, queue=True))
    quick_small = await stubs.broker.RequestGrant(ask("uni-a-vision", 1, lease_s=5, queue=True))
    assert [g.state for g in (head, long_small, quick_small)] == [QUEUED, QUEUED, QUEUED]
    # 2 devices come free: the short grant ends and its owner takes 14 back at once.
    await stubs.broker.ReleaseGrant(broker_pb2.ReleaseGrantRequest(id=short.id))
    assert (await stubs.broker.RequestGrant(ask("uni-a-llm", 14))).state == ACTIVE
    await asyncio.sleep(2.5)  # a dispatch pass or two
    states = [(await state_of(stubs, g.id)).state for g in (head, long_small, quick_small)]
    # The head cannot start before the 600 s leases end. The 5 s request fits in before that and
    # goes; the 3,600 s one would delay the head, so it waits behind it.
    assert states == [QUEUED, QUEUED, ACTIVE]
    reason = (await state_of(stubs, head.id)).waiting_reason
    assert "4 x H100-SXM-80GB same node" in reason and "next release expected in ~" in reason
    # A fresh request may not take what the head waits for either, unless it would be done first.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.broker.RequestGrant(ask("uni-a-vision", 1, lease_s=3600))
    assert "queued requests come first" in info.value.details()
    assert (await stubs.broker.RequestGrant(ask("uni-a-vision", 1, lease_s=5))).state == ACTIVE


async def test_a_queued_request_can_be_cancelled(stubs: Stubs) -> None:
    await fill(stubs)
    queued = await stubs.broker.RequestGrant(ask("uni-a-llm", 2, queue=True))
    cancelled = await stubs.broker.ReleaseGrant(broker_pb2.ReleaseGrantRequest(id=queued.id))
    assert cancelled.state == ENDED and cancelled.end_reason == "cancelled"
    listed = await stubs.broker.ListGrants(broker_pb2.ListGrantsRequest(state=QUEUED))
    assert list(listed.grants) == []


async def test_over_quota_is_refused_even_behind_a_blocked_head(stubs: Stubs) -> None:
    await fill(stubs)
    head = await stubs.broker.RequestGrant(
        ask(
            "lab-b-bio",
            4,
            queue=True,
            topology=broker_pb2.Topology(constraint=broker_pb2.TOPOLOGY_CONSTRAINT_SAME_NODE, required=True),
        )
    )
    assert head.state == QUEUED
    await asyncio.sleep(2.5)  # the dispatcher marks the head blocked
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.broker.RequestGrant(ask("uni-a-llm", 21, queue=True))
    assert from_rpc_error(info.value).reason == "QUOTA_EXCEEDED"
    behind = await stubs.broker.RequestGrant(ask("uni-a-llm", 2, queue=True))
    assert behind.state == QUEUED
