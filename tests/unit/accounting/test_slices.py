"""Slice sizes: a slice counts its share of the device's compute, never a whole device."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slicebroker.accounting.domain.pricebook import PriceBookInput, PriceEntryInput, parse_price_book
from slicebroker.accounting.domain.slices import SIZE_DEN, size_units, slice_size
from slicebroker.accounting.domain.usage import device_ms, running_device_ms, sized_ms
from slicebroker.core.catalogue import canonical_kind

H100, H200, RNGD = "H100-SXM-80GB", "H200-SXM-141GB", "RNGD"


@pytest.mark.parametrize(
    ("sku", "kind", "size"),
    [
        (H100, "whole", Fraction(1)),
        (H100, "mig-1g.10gb", Fraction(1, 7)),
        (H100, "mig-3g.40gb", Fraction(3, 7)),
        (H100, "mig-7g.80gb", Fraction(1)),
        (H200, "mig-2g.35gb", Fraction(2, 7)),
        ("SOME-NEW-GPU", "mig-2g.20gb", Fraction(2, 7)),  # not in the catalogue: sevenths, as MIG cuts
        (H100, "fraction-0.25", Fraction(1, 4)),
        (H100, "share-0.125", Fraction(1, 8)),
        (H100, "fraction-0.001", Fraction(1, 1000)),
        (RNGD, "npu-2core.12gb", Fraction(2, 8)),
        (RNGD, "npu-1core.6gb", Fraction(1, 8)),
        # What cannot be sized counts whole, visibly, rather than as nothing.
        (H100, "fraction-1.5", Fraction(1)),
        (H100, "npu-9core.99gb", Fraction(1)),
        (H100, "vgpu-a40", Fraction(1)),
    ],
)
def test_slice_size(sku: str, kind: str, size: Fraction) -> None:
    assert slice_size(sku, kind) == size
    # Every catalogue size and milli-share is a whole number of SIZE_DEN-ths.
    assert size_units(sku, kind) == size * SIZE_DEN


@pytest.mark.parametrize(
    ("kind", "profile", "canonical"),
    [
        ("", "", "whole"),
        ("whole", "", "whole"),
        ("mig", "1g.10gb", "mig-1g.10gb"),
        ("share", "0.25", "fraction-0.25"),
        ("npu_partition", "2core.12gb", "npu-2core.12gb"),
        ("mig-3g.40gb", "3g.40gb", "mig-3g.40gb"),
        ("mig", "", "mig"),
    ],
)
def test_the_brokers_kind_and_profile_make_the_canonical_kind(kind: str, profile: str, canonical: str) -> None:
    assert canonical_kind(kind, profile) == canonical


def test_seven_one_g_slices_for_an_hour_are_one_device_hour() -> None:
    size = 7 * size_units(H100, "mig-1g.10gb")
    assert device_ms(7, 0, 3_600_000, size) == 3_600_000
    assert device_ms(7, 0, 3_600_000) == 7 * 3_600_000  # counted as devices, it would be 7


@given(st.integers(1, 1000), st.sampled_from(["mig-1g.10gb", "mig-3g.40gb", "fraction-0.25", "whole"]),
       st.integers(0, 10**11), st.integers(1_700_000_000_000, 4_000_000_000_000))  # fmt: skip
def test_running_usage_of_slices_is_their_size_times_the_time(count: int, kind: str, ago: int, now: int) -> None:
    size = count * size_units(H100, kind)
    start = now - ago
    expected = count * slice_size(H100, kind) * ago
    # Rounded once per grant: within half a device-ms of the exact value.
    assert abs(running_device_ms(size, sized_ms(size, start), now) - expected) <= 1


def test_a_slice_entry_without_units_counts_its_share_of_the_device() -> None:
    def entry(kind: str, units: str = "") -> PriceEntryInput:
        return PriceEntryInput(H100, kind, "academic", "100", units, "2025-01-01")

    book = parse_price_book(
        PriceBookInput([entry("whole"), entry("mig-1g.10gb"), entry("fraction-0.25"), entry("mig-3g.40gb", "0.5")]),
        "KRW",
    )
    assert [e.units_micros for e in book.entries] == [1_000_000, 142_857, 250_000, 500_000]
