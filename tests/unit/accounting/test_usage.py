"""Device-second arithmetic: exact integer milliseconds, clamped so usage never goes down."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slicebroker.accounting.domain.model import RowTotals
from slicebroker.accounting.domain.slices import SIZE_DEN as D
from slicebroker.accounting.domain.usage import device_ms, running_device_ms, usage_row

T0 = 1_750_000_000_000


@pytest.mark.parametrize(
    ("count", "start", "end", "expected"),
    [
        (1, T0, T0 + 1_000, 1_000),
        (8, T0, T0 + 3_600_000, 28_800_000),
        (3, T0, T0 + 1, 3),
        (4, T0, T0, 0),
        (4, T0 + 5_000, T0, 0),  # end before start: skewed clocks count zero, never negative
        (100_000, T0, T0 + 1_500_000_000_000, 150_000_000_000_000_000),
    ],
)
def test_device_ms(count: int, start: int, end: int, expected: int) -> None:
    assert device_ms(count, start, end) == expected


def test_usage_row_reports_seconds_with_millisecond_precision() -> None:
    totals = RowTotals(
        "kaist", "llm", "RNGD", device_ms=12_345, grants=2, running_grants=1,
        running_devices=2 * D, running_start_sum=2 * T0,
    )  # fmt: skip
    row = usage_row(totals, now_ms=T0 + 1_500)
    assert (row.device_seconds, row.running_device_seconds) == (12.345, 3.0)
    assert (row.grants, row.running_grants) == (2, 1)
    assert (row.institution, row.project, row.sku) == ("kaist", "llm", "RNGD")


def test_running_usage_of_a_grant_started_after_now_is_zero() -> None:
    assert running_device_ms(4 * D, 4 * (T0 + 10), T0) == 0


grants = st.lists(
    st.tuples(st.integers(1, 100_000), st.integers(0, 10**11)),  # (count, ms before now)
    max_size=50,
)


@given(grants, st.integers(T0, 4_000_000_000_000))
def test_running_sums_equal_the_sum_over_open_grants(open_grants: list[tuple[int, int]], now: int) -> None:
    starts = [(count, now - ago) for count, ago in open_grants]
    running_devices = sum(c * D for c, _ in starts)
    running_start_sum = sum(c * s for c, s in starts)
    expected = sum(device_ms(c, s, now) for c, s in starts)
    assert running_device_ms(running_devices, running_start_sum, now) == expected
