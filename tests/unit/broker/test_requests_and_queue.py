"""Request validation (alternatives, priority, topology) and the queue's backfill rule."""

from __future__ import annotations

import pytest

from slicebroker.broker.domain.model import Choice, Grant, GrantState, PriorityClass
from slicebroker.broker.domain.queue import Dispatcher
from slicebroker.broker.domain.snapshot import Constraint, Topology
from slicebroker.broker.domain.validation import validate_request
from slicebroker.core.errors import InvalidArgument

SKUS = {"H100", "H200", "A100"}


def validate(**kw: object):
    args: dict[str, object] = dict(
        project="p1", sku="H200", count=8, lease_ms=60_000, idempotency_key="", known_skus=SKUS,
        max_count=64, max_lease_ms=3_600_000,
    )  # fmt: skip
    args.update(kw)
    return validate_request(**args)  # type: ignore[arg-type]


def test_alternatives_keep_their_order_after_the_first_choice() -> None:
    request = validate(alternatives=[("H100", 8), ("A100", 16)])
    assert request.choices == (Choice("H200", 8), Choice("H100", 8), Choice("A100", 16))
    assert request.priority is PriorityClass.STANDARD


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"alternatives": [("B300", 1)]}, "alternatives[0].sku"),
        ({"alternatives": [("H100", 0)]}, "alternatives[0].count"),
        ({"alternatives": [("H100", 100)]}, "alternatives[0].count"),
        ({"alternatives": [("H200", 8)]}, "alternatives[0]"),
        ({"alternatives": [("H100", 1)] * 9}, "alternatives"),
        ({"priority": "urgent"}, "priority_class"),
    ],
)
def test_bad_requests_name_the_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate(**kw)
    assert info.value.field == field


def grant(sku: str, lease_ms: int, *choices: Choice) -> Grant:
    return Grant(
        id="gr_x", project="p", sku=sku, count=1, lease_ms=lease_ms, idempotency_key="", state=GrantState.QUEUED,
        created_ms=0, choices=choices,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("candidate", "eta_ms", "may"),
    [
        (grant("H100", 10_000), 100_000, True),  # done before the head can start
        (grant("H100", 200_000), 100_000, False),  # would still hold devices at the head's start
        (grant("H100", 10_000), None, False),  # no estimate: never risk the head
        (grant("A100", 10**9), None, True),  # another accelerator cannot delay the head
        (grant("A100", 10**9, Choice("A100", 1), Choice("H100", 1)), None, False),  # …unless it may take the head's
    ],
)
def test_backfill_never_delays_the_head(candidate: Grant, eta_ms: int | None, may: bool) -> None:
    head = grant("H100", 60_000)
    assert Dispatcher._may_backfill(candidate, head, eta_ms, now=0) is may


def test_queue_score_orders_class_then_age() -> None:
    older_standard = grant("H100", 1).with_(created_ms=1_000)
    newer_guaranteed = grant("H100", 1).with_(created_ms=9_000, priority=PriorityClass.GUARANTEED)
    preemptible = grant("H100", 1).with_(created_ms=0, priority=PriorityClass.PREEMPTIBLE)
    ordered = sorted([older_standard, preemptible, newer_guaranteed], key=lambda g: g.queue_score)
    assert ordered == [newer_guaranteed, older_standard, preemptible]


def test_a_topology_is_part_of_the_request() -> None:
    request = validate(topology=Topology(Constraint.SAME_LEAF, required=False))
    assert request.topology == Topology(Constraint.SAME_LEAF, False)
