"""tree.lua's `check` against its `reserve` over seeded random sequences: random trees with quota
entries on a SKU, its family and "accel" (hard caps included), users with caps, budgets hard and
soft, used up or not, tenants put on hold. Before every reservation the same request is checked
first; the check must write nothing at all, and its answer must be exactly what `reserve` then
answers on the same state (refusals to the last field, and a yes with its preemptible flag and
budget warnings)."""

from __future__ import annotations

import random
from typing import Any

import pytest
import redis.asyncio as aioredis

from slicebroker.core.ids import new_grant_id
from slicebroker.quota.domain.amount import UNLIMITED, Amount
from slicebroker.quota.domain.budget import Budget, BudgetMode
from slicebroker.quota.domain.model import NodeKind, NodeSpec, NodeState, ReservationRequest
from slicebroker.quota.domain.resources import charges
from slicebroker.quota.domain.service import QuotaService
from slicebroker.quota.domain.store import ChargedRequest, ReserveStatus
from slicebroker.quota.domain.tree import Priority, QuotaEntry
from slicebroker.quota.storage.redis_store import RedisQuotaStore

from .support import H100, PREFIX, T0

TREE = {
    "c1": ("", NodeKind.COHORT),
    "i1": ("c1", NodeKind.INSTITUTION),
    "i2": ("c1", NodeKind.INSTITUTION),
    "p1": ("i1", NodeKind.PROJECT),
    "p2": ("i1", NodeKind.PROJECT),
    "p3": ("i2", NodeKind.PROJECT),
    "p1/u1": ("p1", NodeKind.USER),
    "p1/u2": ("p1", NodeKind.USER),
    "p3/u3": ("p3", NodeKind.USER),
}
PROJECTS = ("p1", "p2", "p3")
USERS = ("", "", "u1", "u2", "u3", "ghost")
CLASSES = (H100, "gpu", "accel")
SHAPES = ("", "", "1g.10gb", "3g.40gb", "0.5")
DAY_MS = 86_400_000


def random_entry(rng: random.Random, root: bool) -> QuotaEntry | None:
    if rng.random() < 0.3:
        return None

    def limit() -> Amount:
        return UNLIMITED if rng.random() < 0.4 else Amount.of(rng.randint(1, 12))

    return QuotaEntry(Amount.of(rng.randint(2, 10)), UNLIMITED if root else limit(), limit(), limit())


def random_budget(rng: random.Random) -> Budget | None:
    if rng.random() < 0.5:
        return None
    mode = rng.choice(list(BudgetMode))
    # Nothing awarded: used up from the start (a hard budget refuses, a soft one warns).
    return Budget(mode, T0 - DAY_MS, T0 + DAY_MS, T0 + DAY_MS, rng.choice((0, 5_000_000, 5_000_000)))


async def everything(client: aioredis.Redis) -> dict[str, Any]:
    """Every key of the quota store and its contents."""
    out: dict[str, Any] = {}
    async for key in client.scan_iter(match=f"{PREFIX}*"):
        kind = await client.type(key)
        if kind == "hash":
            out[key] = await client.hgetall(key)
        elif kind == "zset":
            out[key] = await client.zrange(key, 0, -1, withscores=True)
        else:
            out[key] = (kind, await client.dump(key))
    return out


async def build_tree(service: QuotaService, rng: random.Random) -> None:
    for nid, (parent, kind) in TREE.items():
        await service.upsert_node(NodeSpec(nid, kind, parent))
    for nid, (parent, kind) in TREE.items():
        if kind is NodeKind.USER:
            caps = {cls: QuotaEntry(hard_cap=Amount.of(rng.randint(1, 6))) for cls in CLASSES if rng.random() < 0.4}
            if caps:
                await service.set_quota(nid, caps, None)
            continue
        entries = {cls: e for cls in CLASSES if (e := random_entry(rng, not parent)) is not None}
        if entries:
            await service.set_quota(nid, entries, None)
        if kind is not NodeKind.COHORT and (budget := random_budget(rng)) is not None:
            await service.set_budget(nid, budget, None)


@pytest.mark.parametrize("seed", range(8))
async def test_check_answers_what_reserve_then_answers(
    store: RedisQuotaStore, client: aioredis.Redis, seed: int
) -> None:
    await client.flushdb()
    rng = random.Random(seed)
    service = QuotaService(store)
    await build_tree(service, rng)
    seen: dict[str, int] = {}
    held: list[str] = []
    on_hold: set[str] = set()
    now = T0
    for _ in range(100):
        now += 1_000
        roll = rng.random()
        if roll < 0.2 and held:
            await store.cancel([held.pop(rng.randrange(len(held)))], now)
            continue
        if roll < 0.22:
            # Put a tenant on hold, or one on hold back (only new reservations are refused).
            if on_hold and rng.random() < 0.8:
                nid, state = on_hold.pop(), NodeState.ACTIVE
            else:
                nid, state = rng.choice(list(TREE)), NodeState.ON_HOLD
                on_hold.add(nid)
            parent, kind = TREE[nid]
            await service.upsert_node(NodeSpec(nid, kind, parent, state=state))
            continue
        project, shape = rng.choice(PROJECTS), rng.choice(SHAPES)
        request = ReservationRequest(
            new_grant_id(),
            project,
            H100,
            rng.randint(1, 4),
            # Short lives: some lapse and still count until swept, for both alike.
            rng.choice((2, 3600)),
            shape,
            rng.choice(list(Priority)),
            user=rng.choice(USERS),
        )
        item = ChargedRequest(request, charges(H100, shape, request.count))
        before = await everything(client)
        (checked,) = await store.check([item], now)
        assert await everything(client) == before, "check wrote something"
        (reserved,) = await store.reserve([item], now)
        assert checked == reserved, request
        key = reserved.status.value + (f":{reserved.limit}" if reserved.limit else "")
        key += ":preemptible" * reserved.preemptible + ":warned" * bool(reserved.warnings)
        seen[key] = seen.get(key, 0) + 1
        if reserved.status is ReserveStatus.OK:
            held.append(request.grant_id)
    admitted = sum(n for k, n in seen.items() if k.startswith("OK"))
    assert admitted > 5 and sum(seen.values()) - admitted > 5, seen


async def test_a_batch_is_checked_item_by_item_on_the_same_state(store: RedisQuotaStore) -> None:
    """Unlike `reserve`, whose items add up, each checked item sees the tree as it is; and the
    grant id does not matter (a held grant is no MISMATCH, an empty one is fine)."""
    held = ChargedRequest(ReservationRequest(new_grant_id(), "p", H100, 5, 30), charges(H100, "", 5))
    await store.reserve([held], T0)

    def ask(count: int, grant: str = "") -> ChargedRequest:
        return ChargedRequest(ReservationRequest(grant, "p", H100, count, 30), charges(H100, "", count))

    three, again, four = await store.check([ask(3), ask(3, held.request.grant_id), ask(4)], T0)
    assert three.status is again.status is ReserveStatus.OK
    assert (four.status, four.limit, four.available) == (ReserveStatus.QUOTA_EXCEEDED, "hard_cap", 3 * 504_000)
    assert [r.grant_id for r in await store.list_reservations()] == [held.request.grant_id]
