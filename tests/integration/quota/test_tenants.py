"""The tenant tree, quota entries, states, budgets and burn over the real Redis store: generations
refuse conflicting edits, bad input (negative limits, unknown tenants, cycles, borrowing without a
cohort) is refused with the field named and changes nothing, a hard budget refuses with a reason
naming it and a top-up re-opens it."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from slicebroker.core.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from slicebroker.core.reasons import Reason
from slicebroker.quota.domain.amount import Amount
from slicebroker.quota.domain.budget import Budget, BudgetMode
from slicebroker.quota.domain.model import NodeKind, NodeSpec, NodeState
from slicebroker.quota.domain.service import QuotaService
from slicebroker.quota.domain.store import BurnEvent
from slicebroker.quota.domain.tree import Priority, QuotaEntry
from slicebroker.quota.domain.validation import check_amount

from .support import H100, T0, req

HOUR = 3_600_000


async def snapshot(client: aioredis.Redis) -> dict[str, object]:
    out: dict[str, object] = {}
    for key in await client.keys("*"):
        kind = await client.type(key)
        out[key] = await (client.hgetall(key) if kind == "hash" else client.zrange(key, 0, -1, withscores=True))
    return out


async def cohort(service: QuotaService) -> None:
    """universities → snu (s, and p with its private device cap) and kaist (k), each
    institution with 4 H100 of nominal quota."""
    await service.upsert_node(NodeSpec("universities", NodeKind.COHORT))
    for inst in ("snu", "kaist"):
        await service.upsert_node(NodeSpec(inst, NodeKind.INSTITUTION, "universities"))
        await service.set_quota(inst, {H100: QuotaEntry(nominal=Amount.of(4))}, None)
    await service.upsert_node(NodeSpec("k", NodeKind.PROJECT, "kaist"))
    await service.upsert_node(NodeSpec("s", NodeKind.PROJECT, "snu"))


async def test_an_institution_borrows_from_its_cohort(service: QuotaService) -> None:
    await cohort(service)
    results = await service.reserve([req(8, project="s")], T0)
    assert results[0].error is None and results[0].preemptible
    (over,) = await service.reserve([req(1, project="k")], T0)
    assert over.error is not None and over.error.metadata["limit_kind"] == "nominal"
    assert over.error.metadata["node"] == "universities"
    (standing,) = await service.standings(["snu"], T0)
    assert standing.node.borrowed[H100] == Amount.of(4).finite()


async def test_guaranteed_class_stays_within_nominal(service: QuotaService) -> None:
    await cohort(service)
    (r,) = await service.reserve([req(5, project="s", priority=Priority.GUARANTEED)], T0)
    assert r.error is not None and r.error.metadata["limit_kind"] == "borrowing_limit"
    (r,) = await service.reserve([req(4, project="s", priority=Priority.GUARANTEED)], T0)
    assert r.error is None and not r.preemptible


async def test_conflicting_edits_are_refused_not_lost(service: QuotaService) -> None:
    await cohort(service)
    node = await service.get_node("snu")
    await service.set_quota("snu", {H100: QuotaEntry(nominal=Amount.of(6))}, node.generation)
    with pytest.raises(Conflict) as exc:
        await service.set_quota("snu", {H100: QuotaEntry(nominal=Amount.of(2))}, node.generation)
    assert exc.value.reason is Reason.GENERATION_CONFLICT
    assert (await service.get_node("snu")).entries[H100].nominal == Amount.of(6)
    same = await service.get_node("snu")
    again = await service.set_quota("snu", {H100: QuotaEntry(nominal=Amount.of(6))}, same.generation)
    assert again.generation == same.generation  # nothing changed, nothing bumped


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.upsert_node(NodeSpec("universities", NodeKind.COHORT, "sub")), "parent"),
        (lambda s: s.upsert_node(NodeSpec("x", NodeKind.PROJECT, "universities")), "parent"),
        (lambda s: s.upsert_node(NodeSpec("x", NodeKind.INSTITUTION, "x")), "parent"),
        (lambda s: s.upsert_node(NodeSpec("Bad Name", NodeKind.COHORT)), "id"),
        (lambda s: s.set_quota("universities", {"TPU": None}, None), "entries[TPU]"),
        (
            lambda s: s.set_quota("universities", {H100: QuotaEntry(borrowing_limit=Amount.of(2))}, None),
            f"entries[{H100}].borrowing_limit",
        ),
        (lambda s: s.upsert_node(NodeSpec("universities", NodeKind.COHORT, weight=0)), "weight"),
    ],
)
async def test_bad_tree_edits_name_the_field_and_change_nothing(
    service: QuotaService, client: aioredis.Redis, call: object, field: str
) -> None:
    await cohort(service)
    await service.upsert_node(NodeSpec("sub", NodeKind.COHORT, "universities"))
    before = await snapshot(client)
    with pytest.raises(InvalidArgument) as exc:
        await call(service)  # type: ignore[operator]
    assert exc.value.field == field
    assert await snapshot(client) == before


def test_negative_limits_are_refused_with_the_field() -> None:
    with pytest.raises(InvalidArgument) as exc:
        check_amount("entries[gpu].hard_cap", "-3", Amount(0))
    assert exc.value.field == "entries[gpu].hard_cap"


async def test_unknown_tenants_are_not_found(service: QuotaService) -> None:
    with pytest.raises(NotFound) as exc:
        await service.upsert_node(NodeSpec("x", NodeKind.INSTITUTION, "nowhere"))
    assert exc.value.reason is Reason.TENANT_NOT_FOUND
    with pytest.raises(NotFound):
        await service.set_quota("nowhere", {}, None)


async def test_moving_an_institution_carries_its_usage(service: QuotaService, store: object) -> None:
    await cohort(service)
    await service.reserve([req(3, project="s")], T0)
    await service.upsert_node(NodeSpec("industry", NodeKind.COHORT))
    await service.upsert_node(NodeSpec("snu", NodeKind.INSTITUTION, "industry"))
    industry, universities = await service.standings(["industry", "universities"], T0)
    assert industry.node.usage[H100] == Amount.of(3).finite()
    assert H100 not in universities.node.usage


async def test_a_node_on_hold_takes_no_new_grants_and_keeps_what_it_holds(service: QuotaService) -> None:
    await service.reserve([req(2)], T0)
    await service.upsert_node(NodeSpec("snu", NodeKind.INSTITUTION, state=NodeState.ON_HOLD))
    (refused,) = await service.reserve([req(1)], T0)
    assert refused.error is not None and refused.error.reason is Reason.TENANT_NOT_ACTIVE
    assert refused.error.metadata["tenant"] == "snu"
    assert (await service.get_project("p")).devices_in_use == {H100: 2}
    await service.upsert_node(NodeSpec("snu", NodeKind.INSTITUTION))
    (ok,) = await service.reserve([req(1)], T0)
    assert ok.error is None


def budget(mode: BudgetMode, award_h: int) -> Budget:
    return Budget(mode, start_ms=T0 - HOUR, end_ms=T0 + 720 * HOUR, expiry_ms=T0 + 750 * HOUR, award_mh=award_h * 1000)


async def test_a_hard_budget_refuses_when_used_up_and_a_top_up_reopens_it(service: QuotaService) -> None:
    await service.set_budget("snu", budget(BudgetMode.HARD, 10), None)
    assert (await service.reserve([req(1)], T0))[0].error is None
    assert await service.record_burn([BurnEvent("ev-1", "p", 10_000)], T0) == [True]
    assert await service.record_burn([BurnEvent("ev-1", "p", 10_000)], T0) == [False]  # once only
    (refused,) = await service.reserve([req(1)], T0)
    assert refused.error is not None and refused.error.reason is Reason.BUDGET_EXHAUSTED
    assert refused.error.metadata["budget"] == "snu"
    await service.top_up("snu", 5_000, None)
    assert (await service.reserve([req(1)], T0))[0].error is None
    (standing,) = await service.standings(["snu"], T0)
    assert standing.budget_left_mh == 5_000
    assert standing.exhaustion_ms is not None and standing.exhaustion_ms > T0


async def test_a_soft_budget_warns(service: QuotaService) -> None:
    await service.set_budget("p", budget(BudgetMode.SOFT, 1), None)
    await service.record_burn([BurnEvent("ev-2", "p", 2_000)], T0)
    (r,) = await service.reserve([req(1)], T0)
    assert r.error is None and r.warnings and "p" in r.warnings[0]


async def test_roll_over_carries_what_was_left(service: QuotaService) -> None:
    first = Budget(BudgetMode.HARD, T0 - HOUR, T0 + HOUR, T0 + HOUR, 10_000, carry_max_mh=3_000)
    await service.set_budget("snu", first, None)
    await service.record_burn([BurnEvent("ev-3", "p", 4_000)], T0)
    second = Budget(BudgetMode.HARD, T0 + HOUR, T0 + 3 * HOUR, T0 + 3 * HOUR, 10_000, carry_max_mh=3_000)
    node = await service.set_budget("snu", second, None, roll_over=True)
    assert node.budget is not None and node.budget.carry_mh == 3_000 and node.burned_mh == 0
    with pytest.raises(InvalidArgument) as exc:
        await service.set_budget("snu", second, None, roll_over=True)
    assert exc.value.field == "budget.start"


async def test_burn_for_an_unknown_project_writes_nothing(service: QuotaService, client: aioredis.Redis) -> None:
    before = await snapshot(client)
    with pytest.raises(NotFound) as exc:
        await service.record_burn([BurnEvent("a", "p", 1), BurnEvent("b", "nope", 1)], T0)
    assert exc.value.metadata["field"] == "events[1].project"
    assert await snapshot(client) == before


async def test_top_up_without_a_budget(service: QuotaService) -> None:
    with pytest.raises(FailedPrecondition):
        await service.top_up("snu", 1000, None)
