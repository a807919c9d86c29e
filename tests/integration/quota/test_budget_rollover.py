"""Budget roll-over against real Redis: a renewing budget whose period lapsed starts the next one
(carry-over up to the maximum, burn back to 0) exactly once, however many replicas try at once,
and a burn that lands between reading and rolling is never lost: that roll is refused as stale
and the next round rolls with the burn counted. A quota server's leader loop does it by itself."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc

from slicebroker.quota.domain import budget as b
from slicebroker.quota.domain.service import QuotaService
from slicebroker.quota.domain.store import BurnEvent, WriteStatus
from slicebroker.quota.main import build
from slicebroker.quota.settings import QuotaSettings
from slicebroker.quota.storage.redis_store import RedisQuotaStore
from slicebroker.v1 import quota_pb2 as pb
from slicebroker.v1 import quota_pb2_grpc

from .support import T0

H = b.MH_PER_HOUR
PERIOD = b.Budget(b.BudgetMode.HARD, T0, T0 + 1000, T0 + 1500, 10 * H, carry_max_mh=3 * H, renews=True)


async def _burn(service: QuotaService, mh: int, now_ms: int) -> None:
    await service.record_burn([BurnEvent(f"ev-{now_ms}-{mh}", "p", mh)], now_ms)


async def test_a_lapsed_period_rolls_once_with_its_carry_over(service: QuotaService) -> None:
    await service.set_budget("p", PERIOD, None)
    await _burn(service, 8 * H, T0 + 100)
    assert await service.roll_budgets(T0 + 1499) == []
    assert await service.roll_budgets(T0 + 1500) == ["p"]
    node = await service.get_node("p")
    assert node.budget == b.Budget(
        b.BudgetMode.HARD, T0 + 1000, T0 + 2000, T0 + 2500, 10 * H, carry_mh=2 * H, carry_max_mh=3 * H, renews=True
    )
    assert node.burned_mh == 0
    # Idempotent: the same moment again, or a little later, rolls nothing more.
    assert await service.roll_budgets(T0 + 1500) == []
    assert await service.roll_budgets(T0 + 2499) == []
    assert (await service.get_node("p")).generation == node.generation


async def test_budgets_that_do_not_renew_are_left_to_lapse(service: QuotaService) -> None:
    await service.set_budget("p", b.Budget(b.BudgetMode.HARD, T0, T0 + 1000, T0 + 1000, H), None)
    assert await service.roll_budgets(T0 + 10_000) == []
    budget = (await service.get_node("p")).budget
    assert budget is not None and budget.start_ms == T0


async def test_a_burn_between_read_and_roll_makes_the_roll_stale(service: QuotaService, store: RedisQuotaStore) -> None:
    await service.set_budget("p", PERIOD, None)
    await _burn(service, 8 * H, T0 + 100)
    read = await service.get_node("p")
    assert read.budget is not None
    await _burn(service, 1 * H, T0 + 1400)  # lands after the read
    outcome = await store.roll_budget("p", read.budget, read.burned_mh, b.next_period(read.budget, read.burned_mh))
    assert outcome.status is WriteStatus.STALE
    assert (await service.get_node("p")).budget == PERIOD
    await service.roll_budgets(T0 + 1500)
    rolled = (await service.get_node("p")).budget
    assert rolled is not None and rolled.carry_mh == 1 * H  # 10 - 9 burned


async def test_concurrent_roll_overs_start_the_next_period_once(service: QuotaService) -> None:
    await service.set_budget("p", PERIOD, None)
    before = (await service.get_node("p")).generation
    results = await asyncio.gather(*(service.roll_budgets(T0 + 1600) for _ in range(20)))
    assert sum(len(r) for r in results) == 1
    node = await service.get_node("p")
    assert node.generation == before + 1 and node.budget is not None and node.budget.start_ms == T0 + 1000


async def test_a_long_outage_catches_up_in_one_roll(service: QuotaService) -> None:
    await service.set_budget("p", PERIOD, None)
    await _burn(service, 9 * H, T0 + 100)
    assert await service.roll_budgets(T0 + 3700) == ["p"]
    node = await service.get_node("p")
    assert node.budget is not None and (node.budget.start_ms, node.budget.carry_mh) == (T0 + 3000, 3 * H)


async def test_the_leader_loop_of_two_replicas_rolls_each_period_once(start_service: Any, redis_url: str) -> None:
    settings = QuotaSettings(redis_url=redis_url, listen="127.0.0.1:0", budget_roll_interval_s=0.05, leader_ttl_s=1)
    first = await start_service(build, settings)
    await start_service(build, settings)
    length_ms = 400
    async with grpc.aio.insecure_channel(first.address) as channel:
        stub = quota_pb2_grpc.QuotaServiceStub(channel)
        await stub.UpsertInstitution(pb.UpsertInstitutionRequest(id="snu"))
        start_ms = int(time.time() * 1000)
        budget = pb.Budget(mode=pb.BUDGET_MODE_HARD, award_hours=10, carry_over_max_hours=3, renews=True)
        budget.start.FromMilliseconds(start_ms)
        budget.end.FromMilliseconds(start_ms + length_ms)
        budget.expiry.FromMilliseconds(start_ms + length_ms)
        set_at = await stub.SetBudget(pb.SetBudgetRequest(tenant="snu", budget=budget))
        deadline = time.monotonic() + 30
        while True:
            tenant = await stub.GetTenant(pb.GetTenantRequest(id="snu"))
            periods = (tenant.budget.start.ToMilliseconds() - start_ms) // length_ms
            if periods >= 4 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
    assert periods >= 4, "the leader loop did not roll the budget"
    # Every period started exactly on the previous one's end, and each roll was one write covering
    # one period or more (a loaded machine may wake late and catch up): two replicas rolling the
    # same period would make more writes than periods.
    assert (tenant.budget.start.ToMilliseconds() - start_ms) % length_ms == 0
    assert 1 <= tenant.generation - set_at.generation <= periods
    # ... and none ran ahead of the clock (a period rolled twice would start before it is due).
    assert tenant.budget.start.ToMilliseconds() <= time.time() * 1000
    assert tenant.budget.carry_over_hours == 3 and tenant.burned_hours == 0
