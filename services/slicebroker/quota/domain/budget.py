"""Budgets: awards of normalised accelerator-hours per allocation period, as pure functions.

All amounts are integer milli accelerator-hours ("mh"; 1 H100-hour = 1,000 mh). A budget is usable
from `start_ms` until `expiry_ms` (at or after the period's end `end_ms`: a grace in which the
period's hours may still be spent). What is left = award + carried over + top-ups − burned; burn
comes from accounting. A hard budget with nothing left refuses new grants (naming the budget); a
soft one lets them through with a warning. Rolling over to a new period carries what was left,
up to `carry_max_mh`.

A renewing budget rolls over by itself once its expiry passes (`next_period`): the next period
starts at this one's end (the grace between end and expiry belonged to the old period, whose
hours could still be spent in it), with the same length, grace and award, and what was left at
expiry carried (up to the maximum); the rest lapses. Rolling is a pure function of the budget and
its burn, so a replica that rolls the same period again computes the same budget.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

MH_PER_HOUR = 1000
MS_PER_HOUR = 3_600_000


class BudgetMode(StrEnum):
    SOFT = "soft"
    HARD = "hard"


@dataclass(frozen=True, slots=True)
class Budget:
    mode: BudgetMode
    start_ms: int
    end_ms: int
    expiry_ms: int
    award_mh: int
    carry_mh: int = 0
    topups_mh: int = 0
    carry_max_mh: int = 0
    renews: bool = False


def is_open(b: Budget, now_ms: int) -> bool:
    return b.start_ms <= now_ms < b.expiry_ms


def left(b: Budget, burned_mh: int, now_ms: int) -> int:
    """Hours left (mh); 0 outside the usable window, negative when burned past the award."""
    if not is_open(b, now_ms):
        return 0
    return b.award_mh + b.carry_mh + b.topups_mh - burned_mh


def refuses(b: Budget, burned_mh: int, now_ms: int) -> bool:
    return b.mode is BudgetMode.HARD and left(b, burned_mh, now_ms) <= 0


def top_up(b: Budget, amount_mh: int) -> Budget:
    return replace(b, topups_mh=b.topups_mh + amount_mh)


def roll_over(old: Budget, burned_mh: int, new: Budget) -> Budget:
    """The next period's budget, carrying what `old` had left at its end (up to old's carry_max)."""
    carried = max(0, min(old.carry_max_mh, old.award_mh + old.carry_mh + old.topups_mh - burned_mh))
    return replace(new, carry_mh=carried)


def due(b: Budget, now_ms: int) -> bool:
    """Whether a renewing budget's period has lapsed and the next one should start."""
    return b.renews and now_ms >= b.expiry_ms


def next_period(b: Budget, burned_mh: int) -> Budget:
    """The period after `b` (see the module docstring); top-ups were for `b` alone."""
    length, grace = b.end_ms - b.start_ms, b.expiry_ms - b.end_ms
    following = replace(
        b, start_ms=b.end_ms, end_ms=b.end_ms + length, expiry_ms=b.end_ms + length + grace, topups_mh=0
    )
    return roll_over(b, burned_mh, following)


def catch_up(b: Budget, burned_mh: int, now_ms: int) -> Budget:
    """`b` rolled over as many periods as have lapsed by `now_ms` (periods nobody burned in carry
    what they had, up to the maximum)."""
    rolled = next_period(b, burned_mh)
    while due(rolled, now_ms):
        rolled = next_period(rolled, 0)
    return rolled


def current(b: Budget, now_ms: int) -> Budget:
    """`b` as it stands at `now_ms`: a renewing budget first awarded long ago is in a later period
    (nothing burned in the periods in between)."""
    return catch_up(b, 0, now_ms) if due(b, now_ms) else b


def projected_exhaustion_ms(b: Budget, burned_mh: int, now_ms: int) -> int | None:
    """When, burning on at the period's average rate so far, nothing will be left; None when
    nothing burns, or the budget lasts past its expiry."""
    elapsed = now_ms - b.start_ms
    remaining = left(b, burned_mh, now_ms)
    if elapsed <= 0 or burned_mh <= 0:
        return None
    if remaining <= 0:
        return now_ms
    at = now_ms + remaining * elapsed // burned_mh
    return at if at < b.expiry_ms else None


def encode(b: Budget) -> str:
    """The form tree.lua reads (its first six fields) and the store round-trips."""
    fields = (b.mode, b.start_ms, b.expiry_ms, b.award_mh, b.carry_mh, b.topups_mh, b.end_ms, b.carry_max_mh)
    return ",".join(str(v) for v in (*fields, int(b.renews)))


def decode(text: str) -> Budget:
    """Also reads the eight-field form written before budgets could renew."""
    mode, start, expiry, award, carry, topups, end, carry_max, *rest = text.split(",")
    return Budget(
        mode=BudgetMode(mode),
        start_ms=int(start),
        end_ms=int(end),
        expiry_ms=int(expiry),
        award_mh=int(award),
        carry_mh=int(carry),
        topups_mh=int(topups),
        carry_max_mh=int(carry_max),
        renews=rest[:1] == ["1"],
    )
