"""Lease durations: the text forms slicectl and the SDK accept, and what they refuse."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slicebroker.client import parse_lease
from slicebroker.client._lease import format_duration, lease_to_timedelta


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2h", 7200),
        ("30m", 1800),
        ("3600s", 3600),
        ("1h30m", 5400),
        ("1d12h", 129_600),
        ("1.5h", 5400),
        ("90", 90),
        ("0.5", 0.5),
        (" 2H ", 7200),
        ("1h 30m", 5400),
    ],
)
def test_parse_lease_accepts(text: str, seconds: float) -> None:
    assert parse_lease(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "not a duration"),
        ("abc", "not a duration"),
        ("h", "not a duration"),
        ("2x", "not a duration"),
        ("1h-30m", "not a duration"),
        ("inf", "not a duration"),
        ("nan", "not a duration"),
        ("0", "must be positive"),
        ("0s", "must be positive"),
        ("-5", "must be positive"),
        ("1e400", "too long"),
    ],
)
def test_parse_lease_refuses_with_the_accepted_forms(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_lease(text)


@pytest.mark.parametrize(
    ("lease", "expected"),
    [
        (timedelta(minutes=5), timedelta(minutes=5)),
        (120, timedelta(minutes=2)),
        (1.5, timedelta(seconds=1.5)),
        ("2h", timedelta(hours=2)),
    ],
)
def test_every_lease_form_normalises(lease: timedelta | float | str, expected: timedelta) -> None:
    assert lease_to_timedelta(lease) == expected


@pytest.mark.parametrize("lease", [timedelta(0), timedelta(seconds=-1), 0, -3.0, float("inf"), float("nan"), True])
def test_non_positive_or_odd_leases_are_refused(lease: timedelta | float) -> None:
    with pytest.raises(ValueError):
        lease_to_timedelta(lease)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(seconds=45), "45s"),
        (timedelta(days=2, hours=3), "2d3h"),
        (timedelta(0), "0s"),
        (timedelta(minutes=-5), "-5m"),
    ],
)
def test_format_duration(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text


@given(st.integers(min_value=1, max_value=10**8))
def test_formatted_durations_parse_back(seconds: int) -> None:
    assert parse_lease(format_duration(timedelta(seconds=seconds))) == timedelta(seconds=seconds)
