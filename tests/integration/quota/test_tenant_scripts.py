"""upsert_institution.lua and upsert_project.lua against real Redis: compare-and-increment
generations, caps replaced as a whole, devices in use left alone."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from slicebroker.quota.domain.model import InstitutionSpec, ProjectSpec
from slicebroker.quota.storage.keys import QuotaKeys
from slicebroker.quota.storage.redis_store import RedisQuotaStore

from .support import H100, PREFIX, T0, res


async def test_institution_generation_grows_only_on_change(store: RedisQuotaStore) -> None:
    first = await store.upsert_institution(InstitutionSpec("kaist", "KAIST"))
    again = await store.upsert_institution(InstitutionSpec("kaist", "KAIST"))
    renamed = await store.upsert_institution(InstitutionSpec("kaist", "Korea Advanced Institute"))
    cleared = await store.upsert_institution(InstitutionSpec("kaist", ""))
    assert [first.generation, again.generation, renamed.generation, cleared.generation] == [1, 1, 2, 3]
    listed = {i.id: i for i in await store.list_institutions()}
    assert sorted(listed) == ["kaist", "snu"]
    assert listed["kaist"].display_name == "" and listed["kaist"].generation == 3


async def test_project_generation_grows_only_on_change(store: RedisQuotaStore) -> None:
    spec = ProjectSpec("q", "snu", "Q", {H100: 4})
    assert (await store.upsert_project(spec)).generation == 1  # type: ignore[union-attr]
    assert (await store.upsert_project(spec)).generation == 1  # type: ignore[union-attr]
    changed = await store.upsert_project(ProjectSpec("q", "snu", "Q", {H100: 5}))
    assert changed is not None and changed.generation == 2


async def test_caps_are_replaced_as_a_whole(store: RedisQuotaStore) -> None:
    project = await store.upsert_project(ProjectSpec("p", "snu", "Project P", {"ATOM": 2, "RNGD": 0}))
    assert project is not None
    assert project.device_caps == {"ATOM": 2, "RNGD": 0}
    assert project.generation == 2


async def test_a_project_needs_its_institution(store: RedisQuotaStore, client: aioredis.Redis) -> None:
    before = await client.keys("*")
    assert await store.upsert_project(ProjectSpec("x", "nowhere", "", {H100: 1})) is None
    assert await client.keys("*") == before


async def test_upserts_keep_devices_in_use(store: RedisQuotaStore) -> None:
    await store.reserve([res(6)], T0)
    lowered = await store.upsert_project(ProjectSpec("p", "snu", "Project P", {H100: 4}))
    assert lowered is not None and lowered.devices_in_use == {H100: 6}
    # Over a lowered cap nothing more fits, but nothing is taken back either.
    (outcome,) = await store.reserve([res(1)], T0)
    assert (outcome.status, outcome.cap, outcome.in_use) == ("QUOTA_EXCEEDED", 4, 6)


async def test_listing_and_getting_projects(store: RedisQuotaStore) -> None:
    await store.upsert_institution(InstitutionSpec("kaist", "KAIST"))
    await store.upsert_project(ProjectSpec("k1", "kaist", "", {"RNGD": 3}))
    await store.reserve([res(2, sku="RNGD", project="k1")], T0)
    listed = await store.list_projects()
    assert [(p.id, p.institution) for p in listed] == [("k1", "kaist"), ("p", "snu")]
    got = await store.get_projects(["k1", "missing"])
    assert got[1] is None
    assert got[0] is not None and got[0].devices_in_use == {"RNGD": 2} and got[0].device_caps == {"RNGD": 3}


async def test_concurrent_identical_upserts_count_as_one_change(store: RedisQuotaStore) -> None:
    spec = ProjectSpec("c", "snu", "C", {"ATOM": 7})
    results = await asyncio.gather(*(store.upsert_project(spec) for _ in range(200)))
    assert {r.generation for r in results if r} == {1}


async def test_concurrent_different_upserts_each_count(store: RedisQuotaStore) -> None:
    await asyncio.gather(*(store.upsert_institution(InstitutionSpec("i", f"name {n}")) for n in range(200)))
    (institution,) = [i for i in await store.list_institutions() if i.id == "i"]
    assert institution.generation == 200


async def test_every_key_carries_the_hash_tag(store: RedisQuotaStore, client: aioredis.Redis) -> None:
    await store.reserve([res(1)], T0)
    keys = await client.keys("*")
    assert keys and all(k.startswith(f"{{{PREFIX}}}:") for k in keys)
    assert set(QuotaKeys(PREFIX).ledger) >= {k for k in keys if "project" not in k and "institution" not in k}
