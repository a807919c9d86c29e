"""QuotaService over a scripted stand-in for its store port: refusals come before any store call,
store outcomes become the right errors, and a refusal caused by lapsed reservations is retried
once after a sweep. (The real store is exercised against Redis in tests/integration/quota.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from slicebroker.core.errors import ErrorKind, InvalidArgument, NotFound
from slicebroker.core.ids import new_grant_id
from slicebroker.core.reasons import Reason
from slicebroker.quota.domain.amount import SCALE
from slicebroker.quota.domain.model import ProjectSpec, ReservationRequest
from slicebroker.quota.domain.service import QuotaService
from slicebroker.quota.domain.store import ChargedRequest, CommitStatus, ReserveOutcome, ReserveStatus


@dataclass
class ScriptedStore:
    """Answers from prepared queues and records every call."""

    reserve_answers: list[list[ReserveOutcome]] = field(default_factory=list)
    commit_answers: list[CommitStatus] = field(default_factory=list)
    sweep_answers: list[list[str]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    async def reserve(self, items: Sequence[ChargedRequest], now_ms: int) -> list[ReserveOutcome]:
        self.calls.append(f"reserve:{len(items)}")
        return self.reserve_answers.pop(0)

    async def check(self, items: Sequence[ChargedRequest], now_ms: int) -> list[ReserveOutcome]:
        self.calls.append(f"check:{len(items)}")
        return self.reserve_answers.pop(0)

    async def commit(self, grant_ids: Sequence[str], now_ms: int) -> list[CommitStatus]:
        self.calls.append("commit")
        return self.commit_answers

    async def cancel(self, grant_ids: Sequence[str], now_ms: int) -> list[int]:
        self.calls.append("cancel")
        return [0] * len(grant_ids)

    async def sweep(self, now_ms: int, limit: int) -> list[str]:
        self.calls.append("sweep")
        return self.sweep_answers.pop(0) if self.sweep_answers else []

    async def get_nodes(self, node_ids: Sequence[str]) -> list[None]:
        self.calls.append("get_nodes")
        return [None for _ in node_ids]


def item(count: int = 1, project: str = "p") -> ReservationRequest:
    return ReservationRequest(new_grant_id(), project, "RNGD", count, 30)


OK = ReserveOutcome(ReserveStatus.OK, institution="snu")
OVER = ReserveOutcome(
    ReserveStatus.QUOTA_EXCEEDED, limit="hard_cap", node="p", resource="RNGD", requested=2 * SCALE, available=SCALE
)


def service(store: ScriptedStore) -> QuotaService:
    return QuotaService(store)  # type: ignore[arg-type]


async def test_one_bad_item_refuses_the_batch_before_the_store_is_called() -> None:
    store = ScriptedStore()
    with pytest.raises(InvalidArgument) as exc:
        await service(store).reserve([item(), item(count=0)], now_ms=0)
    assert exc.value.field == "reservations[1].count"
    assert store.calls == []


async def test_outcomes_become_per_item_errors() -> None:
    store = ScriptedStore(
        reserve_answers=[
            [
                OK,
                ReserveOutcome(ReserveStatus.PROJECT_NOT_FOUND),
                ReserveOutcome(ReserveStatus.MISMATCH, held_project="q", held_sku="ATOM", held_count=3),
                OVER,
            ]
        ]
    )
    results = await service(store).reserve([item(), item(), item(), item(count=2)], now_ms=0)
    assert results[0].error is None and results[0].institution == "snu"
    errors = [r.error for r in results[1:]]
    assert [(e.kind, e.reason) for e in errors if e] == [
        (ErrorKind.NOT_FOUND, Reason.PROJECT_NOT_FOUND),
        (ErrorKind.FAILED_PRECONDITION, Reason.RESERVATION_MISMATCH),
        (ErrorKind.RESOURCE_EXHAUSTED, Reason.QUOTA_EXCEEDED),
    ]
    assert errors[2] is not None and errors[2].metadata["requested"] == "2"
    assert (errors[2].metadata["limit_kind"], errors[2].metadata["short_by"]) == ("hard_cap", "1")
    # Nothing lapsed, so the refusal stands after one sweep.
    assert store.calls == ["reserve:4", "sweep"]


async def test_a_refusal_is_retried_once_when_the_sweep_released_something() -> None:
    store = ScriptedStore(reserve_answers=[[OK, OVER, OVER], [OK, OVER]], sweep_answers=[[new_grant_id()]])
    results = await service(store).reserve([item(), item(), item()], now_ms=0)
    assert [r.error is None for r in results] == [True, True, False]
    assert store.calls == ["reserve:3", "sweep", "reserve:2"]


async def test_a_check_needs_no_grant_ids_words_its_answers_as_reserve_and_never_sweeps() -> None:
    store = ScriptedStore(reserve_answers=[[OK, OVER]])
    nameless = [ReservationRequest("", "p", "RNGD", 1, 30), ReservationRequest("", "p", "RNGD", 2, 30)]
    results = await service(store).check_reserve(nameless, now_ms=0)
    assert results[0].error is None and results[0].institution == "snu"
    assert results[1].error is not None and results[1].error.reason is Reason.QUOTA_EXCEEDED
    # The same words Reserve gives (one function words both).
    reserved = await service(ScriptedStore(reserve_answers=[[OK, OVER]])).reserve([item(), item(count=2)], now_ms=0)
    assert reserved[1].error is not None and results[1].error.message == reserved[1].error.message
    # A sweep is a write: a check leaves lapsed reservations to the sweep loop.
    assert store.calls == ["check:2"]
    with pytest.raises(InvalidArgument) as exc:
        await service(store).check_reserve([item(), item(count=0)], now_ms=0)
    assert exc.value.field == "reservations[1].count" and store.calls == ["check:2"]


async def test_commit_statuses_become_errors() -> None:
    store = ScriptedStore(commit_answers=[CommitStatus.OK, CommitStatus.NOT_FOUND, CommitStatus.EXPIRED])
    results = await service(store).commit([new_grant_id() for _ in range(3)], now_ms=0)
    assert [r.error.reason if r.error else None for r in results] == [
        None,
        Reason.RESERVATION_NOT_FOUND,
        Reason.RESERVATION_EXPIRED,
    ]


async def test_empty_batches_do_not_reach_the_store() -> None:
    store = ScriptedStore()
    svc = service(store)
    assert await svc.reserve([], 0) == [] and await svc.commit([], 0) == [] and await svc.cancel([], 0) == []
    assert store.calls == []


async def test_a_project_of_a_missing_institution_is_not_found() -> None:
    store = ScriptedStore()
    with pytest.raises(NotFound) as exc:
        await service(store).upsert_project(ProjectSpec("p", "nowhere", ""))
    assert exc.value.reason is Reason.INSTITUTION_NOT_FOUND
