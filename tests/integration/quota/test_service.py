"""QuotaService over the real Redis store: errors per item, the sweep behind a refusal, listings,
and the tenants file applied through it."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from slicebroker.core.errors import InvalidArgument, NotFound
from slicebroker.core.ids import new_grant_id
from slicebroker.core.reasons import Reason
from slicebroker.quota.domain.model import InstitutionSpec, ProjectSpec
from slicebroker.quota.domain.service import QuotaService
from slicebroker.quota.domain.tenants import apply_tenants, parse_tenants

from .support import H100, T0, req

S = 1000


async def test_lapsed_reservations_do_not_refuse_a_request_that_fits(service: QuotaService) -> None:
    await service.reserve([req(8, ttl=5)], T0)
    (result,) = await service.reserve([req(3)], T0 + 5 * S)
    assert result.error is None and result.institution == "snu"
    assert (await service.get_project("p")).devices_in_use == {H100: 3}


async def test_a_refusal_carries_the_numbers(service: QuotaService) -> None:
    await service.reserve([req(7)], T0)
    (result,) = await service.reserve([req(2)], T0)
    assert result.error is not None and result.error.reason is Reason.QUOTA_EXCEEDED
    assert result.error.message == (
        "2 H100-SXM-80GB for project p: the hard cap of p on H100-SXM-80GB leaves 1, 1 short"
    )
    assert result.error.metadata["limit_kind"] == "hard_cap" and result.error.metadata["short_by"] == "1"


async def test_a_bad_item_writes_nothing(service: QuotaService, client: aioredis.Redis) -> None:
    before = {k: await client.type(k) for k in await client.keys("*")}
    with pytest.raises(InvalidArgument) as exc:
        await service.reserve([req(1), req(1), req(1, sku="TPU")], T0)
    assert exc.value.field == "reservations[2].sku"
    assert {k: await client.type(k) for k in await client.keys("*")} == before


async def test_list_reservations_sweeps_first(service: QuotaService) -> None:
    keep, lapse = req(1, ttl=60), req(1, ttl=5)
    await service.reserve([keep, lapse], T0)
    assert [r.grant_id for r in await service.list_reservations(T0 + 10 * S)] == [keep.grant_id]


async def test_sweep_drains_a_backlog_larger_than_one_batch(service: QuotaService) -> None:
    await service.reserve([req(1, sku="RNGD", ttl=1) for _ in range(64)], T0)
    assert await service.sweep(T0 + 2 * S) == 64  # the fixture's batch is 50
    assert (await service.get_project("p")).devices_in_use == {}


async def test_commit_and_cancel_answers(service: QuotaService) -> None:
    item, unknown = req(2, ttl=5), new_grant_id()
    await service.reserve([item], T0)
    results = await service.commit([item.grant_id, unknown], T0 + 1 * S)
    assert [r.error.reason if r.error else None for r in results] == [None, Reason.RESERVATION_NOT_FOUND]
    assert [r.error for r in await service.cancel([item.grant_id, item.grant_id, unknown], T0)] == [None] * 3


async def test_projects_and_institutions(service: QuotaService) -> None:
    with pytest.raises(NotFound) as exc:
        await service.get_project("nope")
    assert exc.value.reason is Reason.PROJECT_NOT_FOUND
    with pytest.raises(NotFound) as exc:
        await service.list_projects("nowhere")
    assert exc.value.reason is Reason.INSTITUTION_NOT_FOUND
    await service.upsert_institution(InstitutionSpec("kaist", "KAIST"))
    await service.upsert_project(ProjectSpec("k", "kaist", "", {"ATOM": 1}))
    assert [p.id for p in await service.list_projects("kaist")] == ["k"]
    assert [p.id for p in await service.list_projects()] == ["k", "p"]
    assert [p.id for p in await service.list_projects("snu")] == ["p"]


async def test_applying_the_example_tenants_twice_changes_nothing(service: QuotaService, examples_dir: Path) -> None:
    text = (examples_dir / "tenants.yaml").read_text()
    institutions, projects = await apply_tenants(service, text, T0)
    assert len(projects) == len(parse_tenants(text)[1])
    nodes = await service.list_nodes()
    again = await apply_tenants(service, text, T0 + 1000)
    assert [i.generation for i in again[0]] == [i.generation for i in institutions]
    assert len(again[1]) == len(projects)
    # Generations, entries, budgets, states: nothing moved.
    assert await service.list_nodes() == nodes


async def test_a_bad_tenants_file_applies_nothing(service: QuotaService) -> None:
    before = await service.list_institutions()
    with pytest.raises(InvalidArgument) as exc:
        await apply_tenants(
            service, "institutions: [{id: new}, {id: also-new, projects: [{id: x, device_caps: {X: 1}}]}]", T0
        )
    assert exc.value.field == "institutions[1].projects[0].device_caps[X]"
    assert await service.list_institutions() == before
