"""Reclaiming lent quota through the real servers: project p2 lends its whole nominal to p1's
borrowing; when p2 then asks for its own nominal, quota refuses it as reclaimable, the request
waits (queued, in plain words), p1's borrowing grants get a notice, end "preempted" at the
deadline, and p2 is granted. p1's grants within its own quota are never noticed; a request beyond
p2's nominal is refused as before; several reclaimers notice no more than they need together."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from slicebroker.runtime.status import from_rpc_error
from slicebroker.v1 import broker_pb2 as T
from slicebroker.v1 import quota_pb2
from tests.api.mesh.conftest import Stubs

H100 = "H100-SXM-80GB"
NOTICE_S, MIN_RUNTIME_S = 1.0, 2.0
BROKER = {"preemption_notice_s": NOTICE_S, "preemption_min_runtime_s": MIN_RUNTIME_S}


def ask(project: str, count: int, priority: str = "standard", **extra: Any) -> T.RequestGrantRequest:
    return T.RequestGrantRequest(
        project=project, sku=H100, count=count, lease=Duration(seconds=600), priority_class=priority, **extra
    )


async def lending_institution(stubs: Stubs) -> None:
    """uni: p1 (nominal 8, may borrow 8), p2 (nominal 8, lends all of it)."""
    await stubs.quota.UpsertTenant(quota_pb2.UpsertTenantRequest(id="uni", kind=quota_pb2.TENANT_KIND_INSTITUTION))
    for p in ("p1", "p2"):
        await stubs.quota.UpsertTenant(
            quota_pb2.UpsertTenantRequest(id=p, kind=quota_pb2.TENANT_KIND_PROJECT, parent="uni")
        )
    await stubs.quota.SetQuota(
        quota_pb2.SetQuotaRequest(
            tenant="p1", entries=[quota_pb2.QuotaEntry(resource_class=H100, nominal="8", borrowing_limit="8")]
        )
    )
    await stubs.quota.SetQuota(
        quota_pb2.SetQuotaRequest(
            tenant="p2", entries=[quota_pb2.QuotaEntry(resource_class=H100, nominal="8", lending_limit="8")]
        )
    )


async def get(stubs: Stubs, grant_id: str) -> T.Grant:
    grant: T.Grant = await stubs.broker.GetGrant(T.GetGrantRequest(id=grant_id))
    return grant


async def until(stubs: Stubs, grant_id: str, done: Any, timeout_s: float = 30) -> T.Grant:
    deadline = time.monotonic() + timeout_s
    while not done(grant := await get(stubs, grant_id)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return grant


async def test_guaranteed_quota_lent_to_a_borrower_is_reclaimed(stubs: Stubs) -> None:
    await lending_institution(stubs)
    own = await stubs.broker.RequestGrant(ask("p1", 8))
    borrowed = await stubs.broker.RequestGrant(ask("p1", 8))
    assert own.state == borrowed.state == T.GRANT_STATE_ACTIVE
    assert not own.preemptible and borrowed.preemptible

    # Beyond p2's nominal: refused as before, nothing to reclaim.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.broker.RequestGrant(ask("p2", 9, "guaranteed", queue=True))
    refusal = from_rpc_error(info.value)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert refusal.metadata["limit_kind"] == "nominal" and "reclaimable" not in refusal.metadata

    wanted = await stubs.broker.RequestGrant(ask("p2", 8, "guaranteed", queue=True))
    assert wanted.state == T.GRANT_STATE_QUEUED
    assert wanted.waiting_reason == "waiting for 8 H100-SXM-80GB of its guaranteed quota lent to other projects of uni"

    noticed = await until(stubs, borrowed.id, lambda g: g.HasField("preemption_deadline"))
    assert noticed.preemption_reason == "guaranteed quota of project p2 reclaimed: 8 x H100-SXM-80GB"
    deadline_ms = noticed.preemption_deadline.ToMilliseconds()
    assert deadline_ms >= borrowed.created_at.ToMilliseconds() + MIN_RUNTIME_S * 1000
    waiting = await until(stubs, wanted.id, lambda g: "notice" in g.waiting_reason)
    # Queued (or pending for a moment, while a dispatch pass tries it again).
    assert waiting.state in (T.GRANT_STATE_QUEUED, T.GRANT_STATE_PENDING)
    assert waiting.waiting_reason.startswith(
        "waiting for 8 H100-SXM-80GB of its guaranteed quota lent to other projects of uni; "
        "1 borrowing grant has notice until "
    )

    ended = await until(stubs, borrowed.id, lambda g: g.state == T.GRANT_STATE_ENDED)
    assert ended.end_reason == "preempted" and ended.ended_at.ToMilliseconds() >= deadline_ms
    served = await until(stubs, wanted.id, lambda g: g.state == T.GRANT_STATE_ACTIVE)
    assert served.state == T.GRANT_STATE_ACTIVE and len(served.slices) == 8 and not served.preemptible
    # p1's grant within its own quota was never noticed.
    kept = await get(stubs, own.id)
    assert kept.state == T.GRANT_STATE_ACTIVE and not kept.HasField("preemption_deadline")


async def test_several_reclaimers_notice_no_more_than_they_need(stubs: Stubs) -> None:
    await lending_institution(stubs)
    own = await stubs.broker.RequestGrant(ask("p1", 8))
    borrowing = [await stubs.broker.RequestGrant(ask("p1", 2)) for _ in range(4)]
    assert not own.preemptible and all(g.preemptible for g in borrowing)
    wanted = await asyncio.gather(
        *(stubs.broker.RequestGrant(ask("p2", 2, "guaranteed", queue=True)) for _ in range(2))
    )
    assert all(g.state == T.GRANT_STATE_QUEUED for g in wanted)
    for g in wanted:
        assert (await until(stubs, g.id, lambda g: g.state == T.GRANT_STATE_ACTIVE)).state == T.GRANT_STATE_ACTIVE
    # 4 devices of quota were needed: two borrowing grants of 2, the most recent first.
    after = [await get(stubs, g.id) for g in borrowing]
    assert [g.end_reason for g in after] == ["", "", "preempted", "preempted"]
    assert not (await get(stubs, own.id)).HasField("preemption_deadline")


async def test_a_standard_request_within_nominal_reclaims_a_preemptible_one_never(stubs: Stubs) -> None:
    await lending_institution(stubs)
    await stubs.broker.RequestGrant(ask("p1", 16))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.broker.RequestGrant(ask("p2", 2, "preemptible", queue=True))
    assert "reclaimable" not in from_rpc_error(info.value).metadata
    wanted = await stubs.broker.RequestGrant(ask("p2", 2, "standard", queue=True))
    assert wanted.state == T.GRANT_STATE_QUEUED and "lent to other projects of uni" in wanted.waiting_reason
