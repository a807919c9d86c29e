"""Admission control: at most max_in_flight calls run, waiters are served round robin over principals,
and a call that cannot start in time is refused at once with OVERLOADED and a retry hint."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from slicebroker.core.errors import ResourceExhausted
from slicebroker.core.reasons import Reason
from slicebroker.runtime.admission import Admission


async def test_n_concurrent_calls_never_exceed_the_in_flight_bound() -> None:
    admission = Admission(max_in_flight=3, max_queue=1000, max_wait_s=10)
    running = peak = 0

    async def call() -> None:
        nonlocal running, peak
        async with admission.admit("uni-a/alice"):
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.001)
            running -= 1

    await asyncio.gather(*(call() for _ in range(200)))
    assert peak == 3
    assert admission.in_flight == 0 and admission.waiting == 0 and admission.shed == 0


async def test_waiters_are_served_round_robin_over_principals() -> None:
    admission = Admission(max_in_flight=1, max_queue=1000, max_wait_s=10)
    order: list[str] = []
    gate = asyncio.Event()

    async def hold() -> None:
        async with admission.admit("holder"):
            await gate.wait()

    async def call(who: str) -> None:
        async with admission.admit(who):
            order.append(who)

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    # A flood from one tenant queued first, then one call from each of two others.
    tasks = [asyncio.create_task(call("flood")) for _ in range(5)]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(call("quiet-1")), asyncio.create_task(call("quiet-2"))]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(holder, *tasks)
    assert order[:3] == ["flood", "quiet-1", "quiet-2"]
    assert Counter(order) == {"flood": 5, "quiet-1": 1, "quiet-2": 1}


async def test_a_full_queue_refuses_at_once_with_a_retry_hint() -> None:
    admission = Admission(max_in_flight=1, max_queue=2, max_wait_s=10)
    gate = asyncio.Event()

    async def hold(who: str) -> None:
        async with admission.admit(who):
            await gate.wait()

    tasks = [asyncio.create_task(hold(f"t{i}")) for i in range(3)]  # one runs, two wait
    await asyncio.sleep(0)
    with pytest.raises(ResourceExhausted) as info:
        async with admission.admit("late"):
            pass
    assert info.value.reason is Reason.OVERLOADED
    assert int(info.value.metadata["retry_after_ms"]) >= 1
    assert "overloaded" in info.value.message
    gate.set()
    await asyncio.gather(*tasks)
    assert admission.in_flight == 0 and admission.waiting == 0


async def test_a_wait_is_bounded_by_the_limit_and_by_the_callers_deadline() -> None:
    admission = Admission(max_in_flight=1, max_queue=10, max_wait_s=0.05)
    gate = asyncio.Event()

    async def hold() -> None:
        async with admission.admit("holder"):
            await gate.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    for time_left in (None, 0.01, 0.0):
        with pytest.raises(ResourceExhausted):
            async with admission.admit("waiter", time_left):
                pass
    assert admission.waiting == 0 and admission.shed == 3
    gate.set()
    await holder
    assert admission.in_flight == 0


async def test_a_cancelled_waiter_gives_its_place_up() -> None:
    admission = Admission(max_in_flight=1, max_queue=10, max_wait_s=10)
    gate = asyncio.Event()
    ran: list[str] = []

    async def call(who: str, wait: bool) -> None:
        async with admission.admit(who):
            ran.append(who)
            if wait:
                await gate.wait()

    holder = asyncio.create_task(call("holder", True))
    await asyncio.sleep(0)
    gone = asyncio.create_task(call("gone", False))
    after = asyncio.create_task(call("after", False))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(holder, after)
    assert ran == ["holder", "after"]
    assert admission.in_flight == 0 and admission.waiting == 0


async def test_zero_in_flight_disables_admission() -> None:
    admission = Admission(max_in_flight=0, max_queue=0, max_wait_s=0)
    async with admission.admit("anyone"):
        pass
    assert not admission.enabled
