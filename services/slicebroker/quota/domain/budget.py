"""Budgets: awards of normalised accelerator-hours per allocation period, as pure functions.

All amounts are integer milli accelerator-hours ("mh"; 1 H100-hour = 1,000 mh). A budget is usable
from `start_ms` until `expiry_ms` (at or after the period's end `end_ms`: a grace in which the
period's hours may still be spent). What is left = award + carried over + top-ups − burned; burn
comes from accounting. A hard budget with nothing left refuses new grants (naming the budget); a
soft one lets them through with a warning. Rolling over to a new period carries what was left,
up to `carry_max_mh`.
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
    return ",".join(
        str(v) for v in (b.mode, b.start_ms, b.expiry_ms, b.award_mh, b.carry_mh, b.topups_mh, b.end_ms, b.carry_max_mh)
    )


def decode(text: str) -> Budget:
    mode, start, expiry, award, carry, topups, end, carry_max = text.split(",")
    return Budget(
        mode=BudgetMode(mode),
        start_ms=int(start),
        end_ms=int(end),
        expiry_ms=int(expiry),
        award_mh=int(award),
        carry_mh=int(carry),
        topups_mh=int(topups),
        carry_max_mh=int(carry_max),
    )
