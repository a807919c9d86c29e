"""The coalescer: concurrent callers share calls, each gets exactly its own results, a lone caller
goes out at once, and failures reach every caller of the failed call."""

from __future__ import annotations

import asyncio

import pytest

from slicebroker.quota.storage.coalesce import Coalescer


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[list[int], int]] = []
        self.fail = fail

    async def __call__(self, items: list[int], now_ms: int) -> list[int]:
        self.calls.append((list(items), now_ms))
        await asyncio.sleep(0.001)
        if self.fail:
            raise RuntimeError("redis went away")
        return [i * 10 for i in items]


async def test_a_lone_caller_is_sent_at_once() -> None:
    run = Recorder()
    merged = Coalescer(run, max_batch=100, max_in_flight=1)
    assert await merged([1, 2], 5) == [10, 20]
    assert run.calls == [([1, 2], 5)]


async def test_concurrent_callers_share_calls_and_get_their_own_results() -> None:
    run = Recorder()
    merged = Coalescer(run, max_batch=100, max_in_flight=1)
    results = await asyncio.gather(*(merged([n, n + 1000], now_ms=n) for n in range(50)))
    assert results == [[n * 10, (n + 1000) * 10] for n in range(50)]
    # The first goes alone; the other 49 waited for it and left together, at the latest clock.
    assert [len(items) for items, _ in run.calls] == [2, 98]
    assert run.calls[1][1] == 49


async def test_batches_hold_whole_calls_up_to_max_batch() -> None:
    run = Recorder()
    merged = Coalescer(run, max_batch=5, max_in_flight=1)
    await asyncio.gather(*(merged([n, n, n], 0) for n in range(4)), merged(list(range(9)), 0))
    assert [len(items) for items, _ in run.calls] == [3, 3, 3, 3, 9]


async def test_in_flight_calls_are_bounded() -> None:
    in_flight = peak = 0

    async def run(items: list[int], now_ms: int) -> list[int]:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        return items

    merged = Coalescer(run, max_batch=10, max_in_flight=3)
    results = await asyncio.gather(*(merged([n], 0) for n in range(200)))
    assert results == [[n] for n in range(200)]
    assert peak == 3


async def test_a_failed_call_fails_each_of_its_callers() -> None:
    merged = Coalescer(Recorder(fail=True), max_batch=100, max_in_flight=1)
    results = await asyncio.gather(*(merged([n], 0) for n in range(5)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_a_caller_that_gives_up_does_not_disturb_the_others() -> None:
    run = Recorder()
    merged = Coalescer(run, max_batch=100, max_in_flight=1)
    first = asyncio.ensure_future(merged([1], 0))
    impatient = asyncio.ensure_future(merged([2], 0))
    last = asyncio.ensure_future(merged([3], 0))
    await asyncio.sleep(0)
    impatient.cancel()
    assert await first == [10] and await last == [30]
    with pytest.raises(asyncio.CancelledError):
        await impatient
