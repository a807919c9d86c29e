"""Requests that ask to start later: validated, queued aside until due, then served like any
queued request (quota asked at serve time); cancellable while they wait."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from slicebroker.core.errors import InvalidArgument
from slicebroker.runtime.status import from_rpc_error
from slicebroker.v1 import broker_pb2 as T
from tests.api.broker.test_watch_grants import Reader
from tests.api.mesh.conftest import Stubs

H100 = "H100-SXM-80GB"


def at(offset_s: float) -> Timestamp:
    ts = Timestamp()
    ts.FromMilliseconds(int((time.time() + offset_s) * 1000))
    return ts


def ask(project: str, count: int, start_after: Timestamp, **extra: object) -> T.RequestGrantRequest:
    return T.RequestGrantRequest(
        project=project, sku=H100, count=count, lease=Duration(seconds=60), start_after=start_after, **extra
    )


async def until(stubs: Stubs, grant_id: str, state: int, timeout_s: float = 30) -> T.Grant:
    deadline = time.monotonic() + timeout_s
    while (grant := await stubs.broker.GetGrant(T.GetGrantRequest(id=grant_id))).state != state:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    return grant


async def test_a_request_waits_until_its_start_after_then_is_served(stubs: Stubs) -> None:
    start = at(2)
    reader = Reader(stubs.broker, project="uni-a-llm")
    await reader.snapshot()
    waiting = await stubs.broker.RequestGrant(ask("uni-a-llm", 2, start))
    assert waiting.state == T.GRANT_STATE_QUEUED and not waiting.slices
    assert waiting.start_after == start and waiting.queue_position == 0
    assert waiting.waiting_reason.startswith("waiting to start after ")
    assert (await reader.next()).type == T.GRANT_CHANGE_TYPE_QUEUED
    granted = await reader.next()
    assert (granted.type, granted.grant.id) == (T.GRANT_CHANGE_TYPE_GRANTED, waiting.id)
    # Served at or after start_after: its lease began then.
    began_ms = granted.grant.expires_at.ToMilliseconds() - 60_000
    assert began_ms >= start.ToMilliseconds()
    assert len(granted.grant.slices) == 2 and granted.grant.start_after == start
    reader.cancel()


async def test_a_replay_of_the_request_returns_the_same_waiting_grant(stubs: Stubs) -> None:
    request = ask("uni-a-llm", 1, at(3600), idempotency_key="later-1")
    first = await stubs.broker.RequestGrant(request)
    again = await stubs.broker.RequestGrant(request)
    assert again.id == first.id and again.state == T.GRANT_STATE_QUEUED


async def test_a_waiting_request_can_be_cancelled_and_is_never_served(stubs: Stubs) -> None:
    waiting = await stubs.broker.RequestGrant(ask("uni-a-llm", 1, at(1)))
    cancelled = await stubs.broker.ReleaseGrant(T.ReleaseGrantRequest(id=waiting.id))
    assert cancelled.state == T.GRANT_STATE_ENDED and cancelled.end_reason == "cancelled"
    await asyncio.sleep(2.5)
    assert (await stubs.broker.GetGrant(T.GetGrantRequest(id=waiting.id))).state == T.GRANT_STATE_ENDED


async def test_over_quota_at_serve_time_fails_with_the_reason(stubs: Stubs) -> None:
    waiting = await stubs.broker.RequestGrant(ask("uni-a-llm", 8, at(1.5)))
    held = await stubs.broker.RequestGrant(
        T.RequestGrantRequest(project="uni-a-llm", sku=H100, count=16, lease=Duration(seconds=600))
    )
    assert held.state == T.GRANT_STATE_ACTIVE
    failed = await until(stubs, waiting.id, T.GRANT_STATE_FAILED)
    assert failed.state == T.GRANT_STATE_FAILED and "hard cap of uni-a-llm" in failed.waiting_reason


@pytest.mark.parametrize(("offset_s", "words"), [(31 * 86_400, "days ahead"), (-3600, "in the past")])
async def test_a_start_after_too_far_ahead_or_in_the_past_is_refused(stubs: Stubs, offset_s: float, words: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.broker.RequestGrant(ask("uni-a-llm", 1, at(offset_s)))
    err = from_rpc_error(info.value)
    assert isinstance(err, InvalidArgument) and err.field == "start_after" and words in err.message
    listed = await stubs.broker.ListGrants(T.ListGrantsRequest(project="uni-a-llm"))
    assert list(listed.grants) == []
