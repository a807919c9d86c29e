"""`Amount` and slice sizes: exact fixed-point units, explicit unlimited, and slices charged by
their real size (a 1g.10gb slice is 1/7 of an H100 in compute and 10/80 in memory)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slicebroker.core.catalogue import partition_sizes
from slicebroker.core.errors import InvalidArgument
from slicebroker.quota.domain.amount import SCALE, UNLIMITED, ZERO, Amount, format_units, parse_amount
from slicebroker.quota.domain.resources import ACCEL, charges, slice_size

H100 = "H100-SXM-80GB"


def test_unlimited_absorbs_sums_and_compares_above_everything() -> None:
    assert Amount(5) + UNLIMITED == UNLIMITED
    assert UNLIMITED - Amount(5) == UNLIMITED
    assert Amount(10**12) <= UNLIMITED
    with pytest.raises(ValueError):
        _ = Amount(1) - UNLIMITED
    with pytest.raises(ValueError):
        UNLIMITED.finite()


@pytest.mark.parametrize(
    ("text", "units"),
    [("8", 8 * SCALE), ("0.25", SCALE // 4), ("1/7", SCALE // 7), ("0", 0), ("unlimited", None)],
)
def test_parse_amount(text: str, units: int | None) -> None:
    assert parse_amount(text) == Amount(units)


def test_negative_amounts_are_refused() -> None:
    with pytest.raises(ValueError):
        parse_amount("-1")


@pytest.mark.parametrize(
    ("shape", "compute", "memory"),
    [
        ("", Fraction(1), Fraction(1)),
        ("1g.10gb", Fraction(1, 7), Fraction(1, 8)),
        ("3g.40gb", Fraction(3, 7), Fraction(1, 2)),
        ("0.25", Fraction(1, 4), Fraction(1, 4)),
    ],
)
def test_slice_sizes(shape: str, compute: Fraction, memory: Fraction) -> None:
    size = slice_size(H100, shape)
    assert (size.compute, size.memory) == (compute, memory)


def test_seven_small_slices_are_exactly_one_device() -> None:
    c = charges(H100, "1g.10gb", 7)
    assert c[H100] == SCALE
    assert c[H100 + "#mem"] == 7 * SCALE // 8
    assert c["gpu"] == SCALE
    assert c[ACCEL] == SCALE
    assert charges(H100, "0.25", 4)[H100] == SCALE


def test_a_4g_and_a_3g_slice_fill_one_card_in_both_dimensions() -> None:
    a, b = charges(H100, "4g.40gb", 1), charges(H100, "3g.40gb", 1)
    assert a[H100] + b[H100] == SCALE
    assert a[H100 + "#mem"] + b[H100 + "#mem"] == SCALE


@pytest.mark.parametrize("shape", ["1g.10gb", "0", "1.5", "x", "9g.10gb"])
def test_bad_shapes_name_the_field(shape: str) -> None:
    sku = "RNGD" if shape == "1g.10gb" else H100
    with pytest.raises(InvalidArgument) as err:
        charges(sku, shape, 1, field="reservations[0].shape")
    assert err.value.field == "reservations[0].shape"


_PROFILES = [(sku, profile) for sku, profiles in partition_sizes().items() for profile in profiles]


@given(st.sampled_from(_PROFILES), st.integers(1, 1000))
def test_n_slices_charge_n_times_one(partition: tuple[str, str], n: int) -> None:
    sku, profile = partition
    one = charges(sku, profile, 1)
    many = charges(sku, profile, n)
    assert all(many[r] == n * one[r] for r in one)


@pytest.mark.parametrize(
    ("sku", "shape", "compute", "memory"),
    [
        ("RNGD", "2core.12gb", Fraction(1, 4), Fraction(1, 4)),
        ("RNGD", "1core.6gb", Fraction(1, 8), Fraction(1, 8)),
        # By the card's memory slices, not GB over the card's GB (71/141 twice would overfill it).
        ("H200-SXM-141GB", "4g.71gb", Fraction(4, 7), Fraction(1, 2)),
        ("H200-SXM-141GB", "3g.71gb", Fraction(3, 7), Fraction(1, 2)),
    ],
)
def test_partitions_are_sized_by_the_catalogue_counters(
    sku: str, shape: str, compute: Fraction, memory: Fraction
) -> None:
    size = slice_size(sku, shape)
    assert (size.compute, size.memory) == (compute, memory)


def test_an_npu_partition_and_a_mig_pair_fill_exactly_one_device() -> None:
    assert charges("RNGD", "2core.12gb", 4)["RNGD"] == SCALE
    a, b = charges("H200-SXM-141GB", "4g.71gb", 1), charges("H200-SXM-141GB", "3g.71gb", 1)
    assert a["H200-SXM-141GB#mem"] + b["H200-SXM-141GB#mem"] == SCALE


def test_an_unknown_profile_names_the_ones_the_sku_has() -> None:
    with pytest.raises(InvalidArgument) as err:
        charges("RNGD", "3core.18gb", 1, field="reservations[0].shape")
    assert err.value.field == "reservations[0].shape"
    assert "1core.6gb, 2core.12gb, 4core.24gb" in str(err.value)


def test_format_units() -> None:
    assert format_units(8 * SCALE) == "8"
    assert format_units(SCALE // 4) == "0.25"
    assert str(ZERO) == "0" and str(UNLIMITED) == "unlimited"
