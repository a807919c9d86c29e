"""Renewing budgets: the next period as a pure function of a budget and its burn."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slicebroker.quota.domain import budget as b

H = b.MH_PER_HOUR
# Periods of 1,000 ms with a 500 ms grace; 10 h awarded, at most 3 h carried.
MONTH = b.Budget(
    b.BudgetMode.HARD, 0, 1000, 1500, 10 * H, carry_mh=1 * H, topups_mh=2 * H, carry_max_mh=3 * H, renews=True
)


def test_only_a_renewing_budget_past_its_expiry_is_due() -> None:
    assert not b.due(MONTH, 1499) and b.due(MONTH, 1500)
    assert not b.due(b.Budget(b.BudgetMode.HARD, 0, 1000, 1500, H), 10_000)


@pytest.mark.parametrize(("burned", "carried"), [(0, 3 * H), (11 * H, 2 * H), (13 * H, 0), (20 * H, 0)])
def test_the_next_period_follows_on_and_carries_what_was_left(burned: int, carried: int) -> None:
    following = b.next_period(MONTH, burned)
    assert (following.start_ms, following.end_ms, following.expiry_ms) == (1000, 2000, 2500)
    assert (following.award_mh, following.carry_mh, following.topups_mh) == (10 * H, carried, 0)
    assert following.renews and following.mode is b.BudgetMode.HARD and following.carry_max_mh == 3 * H


def test_catching_up_rolls_every_lapsed_period() -> None:
    # Down from 1,500 to 3,700 ms: periods starting at 1,000, 2,000 and 3,000 ms have lapsed too
    # (the one at 3,000 expires at 4,500, so it is current).
    rolled = b.catch_up(MONTH, 13 * H, 3700)
    assert (rolled.start_ms, rolled.end_ms, rolled.expiry_ms) == (3000, 4000, 4500)
    # Nobody burned in the periods in between: each carried the most it may.
    assert rolled.carry_mh == 3 * H and not b.due(rolled, 3700)


def test_an_eight_field_budget_from_before_renewal_still_decodes() -> None:
    old = "hard,0,1500,10000,0,0,1000,3000"
    assert b.decode(old) == b.Budget(b.BudgetMode.HARD, 0, 1000, 1500, 10_000, carry_max_mh=3000)
    assert b.decode(b.encode(MONTH)) == MONTH


@given(st.integers(0, 10**9), st.integers(0, 5_000))
def test_rolling_never_carries_more_than_left_or_the_maximum(burned: int, late_ms: int) -> None:
    rolled = b.catch_up(MONTH, burned, MONTH.expiry_ms + late_ms)
    left = MONTH.award_mh + MONTH.carry_mh + MONTH.topups_mh - burned
    assert 0 <= rolled.carry_mh <= MONTH.carry_max_mh
    assert rolled.carry_mh <= max(left, MONTH.award_mh)
    assert rolled.start_ms % 1000 == 0 and rolled.start_ms <= MONTH.expiry_ms + late_ms < rolled.expiry_ms
