"""`Amount`: a quantity of one resource in fixed-point units, or explicitly unlimited.

Quota arithmetic is exact integer arithmetic: one device (or one normalised accelerator) is `SCALE`
units. SCALE = 504,000 = 2^6·3^2·5^3·7 divides evenly by 7 (MIG compute sevenths), 8 (MIG memory
eighths of an 80 GB card), 4 (quarter shares) and 100 (percent shares), so seven 1g.10gb slices
are exactly one device and four 0.25 shares are exactly one; sizes that do not divide (18/141 of
an H200) are rounded up, so rounding can refuse a sliver early but never admits too much. The Lua
scripts hold the same integers (exact in Lua's doubles below 2^53). "Unlimited" is a value of its
own, never a magic number, so a missing limit cannot be mistaken for a limit of 0 or the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

SCALE = 504_000


@dataclass(frozen=True, slots=True, order=False)
class Amount:
    """`units` is None for unlimited."""

    units: int | None

    @staticmethod
    def of(devices: Fraction | int | str) -> Amount:
        """`devices` whole or fractional devices (e.g. Fraction(1, 7), "0.25"), rounded up to a unit."""
        value = Fraction(devices) * SCALE
        return Amount(-((-value.numerator) // value.denominator))

    @property
    def unlimited(self) -> bool:
        return self.units is None

    def finite(self) -> int:
        """The units; an unlimited amount here is a programming error."""
        if self.units is None:
            raise ValueError("an unlimited amount has no finite value")
        return self.units

    def devices(self) -> Fraction | None:
        return None if self.units is None else Fraction(self.units, SCALE)

    def __add__(self, other: Amount) -> Amount:
        if self.units is None or other.units is None:
            return UNLIMITED
        return Amount(self.units + other.units)

    def __sub__(self, other: Amount) -> Amount:
        """Unlimited minus anything finite stays unlimited; nothing finite can subtract unlimited."""
        if other.units is None:
            raise ValueError("cannot subtract an unlimited amount")
        if self.units is None:
            return UNLIMITED
        return Amount(self.units - other.units)

    def __le__(self, other: Amount) -> bool:
        if other.units is None:
            return True
        return self.units is not None and self.units <= other.units

    def __lt__(self, other: Amount) -> bool:
        return self <= other and self != other

    def __ge__(self, other: Amount) -> bool:
        return other <= self

    def __gt__(self, other: Amount) -> bool:
        return other < self

    def clamp0(self) -> Amount:
        """Never below zero."""
        return self if self.units is None or self.units >= 0 else ZERO

    def __str__(self) -> str:
        if self.units is None:
            return "unlimited"
        return format_units(self.units)


def smaller(a: Amount, b: Amount) -> Amount:
    return a if a <= b else b


def larger(a: Amount, b: Amount) -> Amount:
    return a if b <= a else b


def format_units(units: int) -> str:
    """Units as devices, in the shortest exact-enough decimal (e.g. "0.142857", "8", "0.25")."""
    whole, rest = divmod(units, SCALE)
    if not rest:
        return str(whole)
    return f"{units / SCALE:.6f}".rstrip("0")


def parse_amount(text: str) -> Amount:
    """ "unlimited" (or "inf") or a non-negative decimal or fraction of devices ("8", "0.25", "1/7")."""
    text = text.strip()
    if text.lower() in {"unlimited", "inf", "∞"}:
        return UNLIMITED
    value = Fraction(text)
    if value < 0:
        raise ValueError(f"must not be negative, not {text}")
    return Amount.of(value)


ZERO = Amount(0)
UNLIMITED = Amount(None)
