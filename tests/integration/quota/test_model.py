"""The reservation scripts against a plain-Python model of their rules, over seeded random
sequences of Reserve, Commit, Cancel and sweeps with a moving clock: after every step each answer
and every in-use counter must agree with the model."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from slicebroker.core.ids import new_grant_id
from slicebroker.quota.domain.caps import fits
from slicebroker.quota.domain.model import ProjectSpec
from slicebroker.quota.storage.redis_store import RedisQuotaStore

from .support import T0, res

CAPS = {("p", "RNGD"): 64, ("p", "ATOM"): 0, ("q", "RNGD"): 5, ("q", "ATOM"): 3}


@dataclass
class Held:
    project: str
    sku: str
    count: int
    committed: bool
    expires: int


class Model:
    def __init__(self) -> None:
        self.held: dict[str, Held] = {}
        self.lapsed: set[str] = set()

    def in_use(self) -> dict[tuple[str, str], int]:
        use: dict[tuple[str, str], int] = {}
        for h in self.held.values():
            use[(h.project, h.sku)] = use.get((h.project, h.sku), 0) + h.count
        return use

    def _lapse(self, grant: str, now: int) -> bool:
        h = self.held.get(grant)
        if h and not h.committed and h.expires <= now:
            del self.held[grant]
            self.lapsed.add(grant)
            return True
        return False

    def reserve(self, grant: str, project: str, sku: str, count: int, ttl_ms: int, now: int) -> str:
        self._lapse(grant, now)
        if grant in self.held:
            h = self.held[grant]
            return "OK" if (h.project, h.sku, h.count) == (project, sku, count) else "MISMATCH"
        if not fits(CAPS[(project, sku)], self.in_use().get((project, sku), 0), count):
            return "QUOTA_EXCEEDED"
        self.held[grant] = Held(project, sku, count, False, now + ttl_ms)
        self.lapsed.discard(grant)
        return "OK"

    def commit(self, grant: str, now: int) -> str:
        if self._lapse(grant, now) or (grant not in self.held and grant in self.lapsed):
            return "EXPIRED"
        if grant not in self.held:
            return "NOT_FOUND"
        self.held[grant].committed = True
        return "OK"

    def cancel(self, grant: str) -> int:
        self.lapsed.discard(grant)
        h = self.held.pop(grant, None)
        return h.count if h else 0

    def sweep(self, now: int) -> set[str]:
        return {g for g in list(self.held) if self._lapse(g, now)}


@pytest.mark.parametrize("seed", range(4))
async def test_scripts_follow_the_model(store: RedisQuotaStore, seed: int) -> None:
    await store.upsert_project(ProjectSpec("q", "snu", "", {"RNGD": 5, "ATOM": 3}))
    await store.upsert_project(ProjectSpec("p", "snu", "", {"RNGD": 64}))
    rng = random.Random(seed)
    model = Model()
    grants = [new_grant_id() for _ in range(12)]
    now = T0
    for _ in range(150):
        now += rng.choice([0, 0, 400, 1000, 3000])
        grant = rng.choice(grants)
        op = rng.randrange(6)
        if op <= 2:
            project, sku = rng.choice(list(CAPS))
            count, ttl = rng.randint(1, 4), rng.choice([1, 2, 5])
            (outcome,) = await store.reserve([res(count, sku, project, ttl, grant)], now)
            assert outcome.status == model.reserve(grant, project, sku, count, ttl * 1000, now)
        elif op == 3:
            assert await store.commit([grant], now) == [model.commit(grant, now)]
        elif op == 4:
            assert await store.cancel([grant], now) == [model.cancel(grant)]
        else:
            assert set(await store.sweep(now, 100)) == model.sweep(now)
        assert await store.in_use_all() == model.in_use()
        assert {r.grant_id for r in await store.list_reservations()} == set(model.held)
