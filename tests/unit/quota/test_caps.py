"""Cap arithmetic: what fits, the headroom left, and the refusal a caller sees."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slicebroker.core.errors import ErrorKind
from slicebroker.core.reasons import Reason
from slicebroker.quota.domain.caps import cap_of, fits, headroom, quota_exceeded

amounts = st.integers(min_value=0, max_value=1_000_000)


@pytest.mark.parametrize(
    ("cap", "in_use", "requested", "ok"),
    [
        (8, 0, 8, True),
        (8, 7, 1, True),
        (8, 7, 2, False),
        (0, 0, 1, False),
        (4, 6, 1, False),  # cap lowered below what is held
    ],
)
def test_fits(cap: int, in_use: int, requested: int, ok: bool) -> None:
    assert fits(cap, in_use, requested) is ok


def test_a_sku_without_a_cap_has_none() -> None:
    assert cap_of({"RNGD": 4}, "ATOM") == 0
    assert cap_of({"RNGD": 4}, "RNGD") == 4


@given(cap=amounts, in_use=amounts, requested=st.integers(min_value=1, max_value=100_000))
def test_fits_exactly_up_to_the_headroom(cap: int, in_use: int, requested: int) -> None:
    assert fits(cap, in_use, requested) == (requested <= headroom(cap, in_use))
    assert headroom(cap, in_use) >= 0


@given(cap=st.integers(min_value=0, max_value=64), requests=st.lists(st.integers(min_value=1, max_value=8)))
def test_taking_only_what_fits_never_passes_the_cap(cap: int, requests: list[int]) -> None:
    in_use = 0
    for requested in requests:
        if fits(cap, in_use, requested):
            in_use += requested
        assert in_use <= cap


def test_quota_exceeded_says_what_and_by_how_much() -> None:
    err = quota_exceeded("p", "H100-SXM-80GB", cap=8, in_use=7, requested=2)
    assert err.kind is ErrorKind.RESOURCE_EXHAUSTED
    assert err.reason is Reason.QUOTA_EXCEEDED
    assert err.message == "project p would hold 9 H100-SXM-80GB; its cap is 8 (7 in use)"
    assert err.metadata == {
        "project": "p",
        "sku": "H100-SXM-80GB",
        "limit": "8",
        "in_use": "7",
        "requested": "2",
    }
