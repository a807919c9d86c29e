"""Accounting pushes the burn of closed grants to quota's budgets: once per batch, whatever repeats."""

from __future__ import annotations

import asyncio
import time

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from slicebroker.accounting.main import build as build_accounting
from slicebroker.accounting.settings import AccountingSettings
from slicebroker.quota.main import build as build_quota
from slicebroker.quota.settings import QuotaSettings
from slicebroker.v1 import accounting_pb2, accounting_pb2_grpc, common_pb2, quota_pb2, quota_pb2_grpc

HOUR_MS = 3_600_000


def ts(ms: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


async def test_eight_device_hours_come_off_the_project_budget(start_service, redis_url: str) -> None:
    quota = await start_service(build_quota, QuotaSettings(redis_url=redis_url, listen="127.0.0.1:0"))
    accounting = await start_service(
        build_accounting,
        AccountingSettings(
            redis_url=redis_url, listen="127.0.0.1:0", quota_addr=quota.address, budget_feed_interval_s=0.05
        ),
    )
    now = int(time.time() * 1000)
    async with grpc.aio.insecure_channel(quota.address) as ch:
        q = quota_pb2_grpc.QuotaServiceStub(ch)
        await q.UpsertInstitution(quota_pb2.UpsertInstitutionRequest(id="kaist"))
        await q.UpsertProject(
            quota_pb2.UpsertProjectRequest(id="llm", institution="kaist", device_caps={"H100-SXM-80GB": 8})
        )
        budget = quota_pb2.Budget(
            mode=quota_pb2.BUDGET_MODE_HARD, start=ts(now - 24 * HOUR_MS), end=ts(now + 24 * HOUR_MS), award_hours=100
        )
        await q.SetBudget(quota_pb2.SetBudgetRequest(tenant="llm", budget=budget))

        # A 4-device grant that ran two hours, as the broker's relay would deliver it (twice).
        base = dict(grant_id="gr_" + "1" * 26, institution="kaist", project="llm", sku="H100-SXM-80GB", count=4)
        events = [
            common_pb2.GrantEvent(
                event_id="e1", type=common_pb2.GRANT_EVENT_TYPE_GRANTED, at=ts(now - 3 * HOUR_MS), **base
            ),
            common_pb2.GrantEvent(
                event_id="e2", type=common_pb2.GRANT_EVENT_TYPE_ENDED, at=ts(now - HOUR_MS), reason="released", **base
            ),
        ]
        async with grpc.aio.insecure_channel(accounting.address) as ach:
            a = accounting_pb2_grpc.AccountingServiceStub(ach)
            for _ in range(2):
                await a.IngestEvents(accounting_pb2.IngestEventsRequest(events=events))

        async def left() -> float:
            standings = await q.GetStandings(quota_pb2.GetStandingsRequest(tenants=["llm"]))
            return standings.standings[0].budget_left_hours

        deadline = time.monotonic() + 20
        while await left() == 100 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a second push would have landed by now
        assert abs(await left() - 92) < 1e-6, "4 devices x 2 h, no price book: 1 unit per device-hour, once"
