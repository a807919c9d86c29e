"""Preemption through the real servers: a waiting guaranteed request takes back capacity held by
preemptible grants, with a notice and a minimum runtime; the victim is the one most over its fair
share; concurrent guaranteed requests give notice to no more grants than they need together; a
victim released early by its owner is simply gone."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from slicebroker.v1 import broker_pb2 as T
from slicebroker.v1 import quota_pb2
from tests.api.broker.test_watch_grants import Reader
from tests.api.mesh.conftest import Stubs

H100 = "H100-SXM-80GB"
NOTICE_S, MIN_RUNTIME_S = 1.0, 3.0
BROKER = {"preemption_notice_s": NOTICE_S, "preemption_min_runtime_s": MIN_RUNTIME_S}


def ask(project: str, count: int, priority: str = "standard", **extra: Any) -> T.RequestGrantRequest:
    return T.RequestGrantRequest(
        project=project, sku=H100, count=count, lease=Duration(seconds=600), priority_class=priority, **extra
    )


async def full_house(stubs: Stubs) -> dict[str, T.Grant]:
    """All 64 devices held. Institution uni-a holds 40 (8 of them preemptible, in uni-a-llm),
    lab-b 16 (8 preemptible, in lab-b-chem, taken last). lab-b-bio may take 8 more (cap 20)."""
    held = {
        "llm-std": await stubs.broker.RequestGrant(ask("uni-a-llm", 12)),
        "llm-pre": await stubs.broker.RequestGrant(ask("uni-a-llm", 8, "preemptible")),
        "vision": await stubs.broker.RequestGrant(ask("uni-a-vision", 20)),
        "bio": await stubs.broker.RequestGrant(ask("lab-b-bio", 12)),
        "chem-std": await stubs.broker.RequestGrant(ask("lab-b-chem", 4)),
    }
    held["chem-pre"] = await stubs.broker.RequestGrant(ask("lab-b-chem", 8, "preemptible"))
    assert all(g.state == T.GRANT_STATE_ACTIVE for g in held.values())
    assert [k for k, g in held.items() if g.preemptible] == ["llm-pre", "chem-pre"]
    return held


async def get(stubs: Stubs, grant_id: str) -> T.Grant:
    return await stubs.broker.GetGrant(T.GetGrantRequest(id=grant_id))


async def until(stubs: Stubs, grant_id: str, state: int, timeout_s: float = 30) -> T.Grant:
    deadline = time.monotonic() + timeout_s
    while (grant := await get(stubs, grant_id)).state != state and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return grant


async def noticed(stubs: Stubs, grants: dict[str, T.Grant]) -> list[str]:
    return [k for k, g in grants.items() if (await get(stubs, g.id)).HasField("preemption_deadline")]


async def test_guaranteed_demand_preempts_the_grant_most_over_its_share_with_notice(stubs: Stubs) -> None:
    held = await full_house(stubs)
    victim = held["llm-pre"]
    reader = Reader(stubs.broker, grant_id=victim.id)
    await reader.snapshot()
    wanted = await stubs.broker.RequestGrant(ask("lab-b-bio", 4, "guaranteed", queue=True))
    assert wanted.state == T.GRANT_STATE_QUEUED

    notice = await reader.next()
    assert notice.type == T.GRANT_CHANGE_TYPE_PREEMPTION_NOTICE
    assert notice.grant.state == T.GRANT_STATE_ACTIVE
    assert notice.grant.preemption_reason == "guaranteed demand of project lab-b-bio for 4 x H100-SXM-80GB"
    deadline_ms = notice.grant.preemption_deadline.ToMilliseconds()
    # The notice period from the notice, and never before the minimum runtime.
    assert deadline_ms >= notice.at.ToMilliseconds() + NOTICE_S * 1000
    assert deadline_ms >= victim.created_at.ToMilliseconds() + MIN_RUNTIME_S * 1000
    # uni-a is further over its fair share than lab-b, so its grant goes although lab-b-chem's is newer.
    assert await noticed(stubs, held) == ["llm-pre"]

    ended = await reader.next()
    assert ended.type == T.GRANT_CHANGE_TYPE_PREEMPTED
    assert ended.grant.state == T.GRANT_STATE_ENDED and ended.grant.end_reason == "preempted"
    assert ended.grant.ended_at.ToMilliseconds() >= deadline_ms, "never before the deadline"
    served = await until(stubs, wanted.id, T.GRANT_STATE_ACTIVE)
    assert served.state == T.GRANT_STATE_ACTIVE and len(served.slices) == 4
    # Quota got the victim's devices back: uni-a-llm holds its standard grant only.
    project = await stubs.quota.GetProject(quota_pb2.GetProjectRequest(id="uni-a-llm"))
    assert project.devices_in_use[H100] == 12
    reader.cancel()


async def test_concurrent_guaranteed_requests_preempt_no_more_than_they_need(stubs: Stubs) -> None:
    held = await full_house(stubs)
    wanted = await asyncio.gather(
        *(stubs.broker.RequestGrant(ask("lab-b-bio", 2, "guaranteed", queue=True)) for _ in range(4))
    )
    for g in wanted:
        assert (await until(stubs, g.id, T.GRANT_STATE_ACTIVE)).state == T.GRANT_STATE_ACTIVE
    # 8 devices were needed: one preemptible grant of 8 is enough.
    assert (await get(stubs, held["llm-pre"].id)).end_reason == "preempted"
    assert await noticed(stubs, held) == ["llm-pre"]
    assert (await get(stubs, held["chem-pre"].id)).state == T.GRANT_STATE_ACTIVE


async def test_without_queue_a_guaranteed_request_is_refused_and_preempts_nothing(stubs: Stubs) -> None:
    held = await full_house(stubs)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.broker.RequestGrant(ask("lab-b-bio", 4, "guaranteed"))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    await asyncio.sleep(1.5)  # a dispatch pass
    assert await noticed(stubs, held) == []


async def test_a_victim_released_early_by_its_owner_is_just_released(stubs: Stubs) -> None:
    held = await full_house(stubs)
    wanted = await stubs.broker.RequestGrant(ask("lab-b-bio", 4, "guaranteed", queue=True))
    victim = held["llm-pre"]
    deadline = time.monotonic() + 10
    while not (await get(stubs, victim.id)).HasField("preemption_deadline") and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    released = await stubs.broker.ReleaseGrant(T.ReleaseGrantRequest(id=victim.id))
    assert released.end_reason == "released"
    assert (await until(stubs, wanted.id, T.GRANT_STATE_ACTIVE)).state == T.GRANT_STATE_ACTIVE
    assert (await get(stubs, victim.id)).end_reason == "released"
