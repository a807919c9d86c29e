"""The pure parts of quotes: quota's verdict from standings, and how a request is named and counted."""

from __future__ import annotations

from fractions import Fraction

import pytest

from slicebroker.broker.domain.model import WHOLE, PriorityClass, Shape, SkuShapes, SliceKind
from slicebroker.broker.domain.quote import Limit, TenantStanding, device_amount, price_slice_kind, quota_refusal

H100 = "H100-SXM-80GB"
F = Fraction


def project(in_use: int = 0, **limit: object) -> TenantStanding:
    fields = {"nominal": F(8), "borrowing_limit": None, "hard_cap": None} | limit
    return TenantStanding(
        "p1",
        "inst",
        "active",
        (Limit(H100, **fields),),  # type: ignore[arg-type]
        {H100: fields["nominal"]},  # type: ignore[dict-item]
        {H100: F(in_use)},
    )


INSTITUTION = TenantStanding("inst", "", "active")


@pytest.mark.parametrize(
    ("chain", "amount", "priority", "reason", "words"),
    [
        ([project(), INSTITUTION], 8, PriorityClass.STANDARD, "", ""),
        ([project(hard_cap=F(10)), INSTITUTION], 11, PriorityClass.STANDARD, "QUOTA_EXCEEDED", "hard cap of p1"),
        ([project(4, hard_cap=F(10)), INSTITUTION], 6, PriorityClass.STANDARD, "", ""),
        ([project(borrowing_limit=F(2))], 11, PriorityClass.STANDARD, "QUOTA_EXCEEDED", "borrowing limit"),
        ([project(borrowing_limit=F(2))], 10, PriorityClass.STANDARD, "", ""),
        ([project(4)], 5, PriorityClass.GUARANTEED, "QUOTA_EXCEEDED", "never borrow"),
        ([project(4)], 5, PriorityClass.STANDARD, "", ""),
        (
            [TenantStanding("p1", "inst", "active"), INSTITUTION],
            1,
            PriorityClass.STANDARD,
            "QUOTA_EXCEEDED",
            "no quota",
        ),
        ([project(), TenantStanding("inst", "", "on_hold")], 1, PriorityClass.STANDARD, "TENANT_NOT_ACTIVE", "on hold"),
    ],
)
def test_quota_verdict_from_standings(
    chain: list[TenantStanding], amount: int, priority: PriorityClass, reason: str, words: str
) -> None:
    got, message, _ = quota_refusal(chain, H100, F(amount), priority)
    assert got == reason
    assert words in message


def test_budgets_refuse_when_hard_and_warn_when_soft() -> None:
    hard = TenantStanding("inst", "", "active", hard_budget=True, budget_left_hours=0.0)
    soft = TenantStanding("inst", "", "active", hard_budget=False, budget_left_hours=-1.0)
    assert quota_refusal([project(), hard], H100, F(1), PriorityClass.STANDARD)[0] == "BUDGET_EXHAUSTED"
    reason, _, warnings = quota_refusal([project(), soft], H100, F(1), PriorityClass.STANDARD)
    assert reason == "" and any("soft budget of inst" in w for w in warnings)


def test_borrowing_is_a_warning() -> None:
    reason, _, warnings = quota_refusal([project(6)], H100, F(4), PriorityClass.STANDARD)
    assert reason == "" and warnings == ("p1 would borrow 2 H100-SXM-80GB beyond its quota (preemptible)",)


def test_slice_kinds_are_named_as_the_price_book_names_them_and_counted_by_share() -> None:
    mig = Shape(SliceKind.MIG, "3g.40gb", 3, 4)
    share = Shape(SliceKind.SHARE, "", 250, 250)
    npu = Shape(SliceKind.NPU_PARTITION, "2core.12gb", 2, 2)
    assert [price_slice_kind(s) for s in (WHOLE, mig, share, npu)] == [
        "whole",
        "mig-3g.40gb",
        "fraction-0.25",
        "npu-2core.12gb",
    ]
    assert device_amount(WHOLE, 3, None) == 3
    assert device_amount(mig, 2, SkuShapes((7, 8))) == F(6, 7)
    assert device_amount(share, 4, None) == 1
    assert device_amount(npu, 1, SkuShapes((8, 8))) == F(1, 4)
