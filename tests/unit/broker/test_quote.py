"""The pure parts of quotes: how a request is named for the price book, and what quota's yes adds
as warnings. (Quota's verdict itself is quota's CheckReserve: tests/api/broker/test_quote_verdicts.py
checks it against RequestGrant through the real services.)"""

from __future__ import annotations

import pytest

from slicebroker.broker.domain.model import WHOLE, Choice, GrantRequest, PriorityClass, Shape, SliceKind
from slicebroker.broker.domain.ports import Reserved
from slicebroker.broker.domain.quote import price_slice_kind, quota_warnings

H100 = "H100-SXM-80GB"


def test_slice_kinds_are_named_as_the_price_book_names_them() -> None:
    mig = Shape(SliceKind.MIG, "3g.40gb", 3, 4)
    share = Shape(SliceKind.SHARE, "", 250, 250)
    npu = Shape(SliceKind.NPU_PARTITION, "2core.12gb", 2, 2)
    assert [price_slice_kind(s) for s in (WHOLE, mig, share, npu)] == [
        "whole",
        "mig-3g.40gb",
        "fraction-0.25",
        "npu-2core.12gb",
    ]


SOFT = "soft budget of snu is used up (-1 h left)"


@pytest.mark.parametrize(
    ("priority", "reserved", "warnings"),
    [
        (PriorityClass.STANDARD, Reserved("snu"), ()),
        (PriorityClass.STANDARD, Reserved("snu", preemptible=True), ("p1 would borrow beyond its quota: preemptible",)),
        # Preemptible by its class, not by borrowing: nothing to warn of.
        (PriorityClass.PREEMPTIBLE, Reserved("snu", preemptible=True), ()),
        (PriorityClass.GUARANTEED, Reserved("snu", warnings=(SOFT,)), (SOFT,)),
        (
            PriorityClass.STANDARD,
            Reserved("snu", preemptible=True, warnings=(SOFT,)),
            (SOFT, "p1 would borrow beyond its quota: preemptible"),
        ),
    ],
)
def test_quota_s_yes_becomes_warnings(priority: PriorityClass, reserved: Reserved, warnings: tuple[str, ...]) -> None:
    request = GrantRequest("p1", (Choice(H100, 4),), 3_600_000, "", priority=priority)
    assert quota_warnings(request, reserved) == warnings
