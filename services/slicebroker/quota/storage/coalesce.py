"""Merges concurrent calls of one batch operation into fewer, larger calls.

Many RPCs arrive at once under load (several broker replicas, each with its own batches). Each
would cost a Redis round trip and a connection; merged, N concurrent callers share one Lua call.
A call goes out at once while fewer than `max_in_flight` are running, so a lone caller waits for
nothing; only when that many are already in flight do newcomers queue, and the queue leaves as
one batch when a slot frees. Under load batches grow by themselves; idle, latency is unchanged.
The number of Redis connections the operation uses is bounded by `max_in_flight`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# One caller's items, the clock it read, and where its results go.
_Call = tuple[Sequence[T], int, "asyncio.Future[list[R]]"]


class Coalescer(Generic[T, R]):
    """`await coalescer(items, now_ms)` returns `run(items, now_ms)`'s results for exactly these
    items, in order, though `run` may have been given other callers' items in the same call.

    `run` must treat items independently (one item's result does not depend on its batch mates
    beyond the order they are applied in), which the quota scripts do. A merged call runs with the
    latest clock reading among its callers: it executes after all of them read their clocks.
    """

    def __init__(
        self, run: Callable[[list[T], int], Awaitable[list[R]]], *, max_batch: int, max_in_flight: int
    ) -> None:
        self._run = run
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._queue: deque[_Call[T, R]] = deque()
        self._in_flight: set[asyncio.Task[None]] = set()

    async def __call__(self, items: Sequence[T], now_ms: int) -> list[R]:
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        self._queue.append((items, now_ms, future))
        self._dispatch()
        return await future

    def _dispatch(self) -> None:
        while self._queue and len(self._in_flight) < self._max_in_flight:
            batch: list[_Call[T, R]] = []
            size = 0
            # Whole calls only; at least one, even if it alone is larger than max_batch.
            while self._queue and (not batch or size + len(self._queue[0][0]) <= self._max_batch):
                call = self._queue.popleft()
                batch.append(call)
                size += len(call[0])
            task = asyncio.create_task(self._flush(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._dispatch()

    async def _flush(self, batch: list[_Call[T, R]]) -> None:
        items = [item for call_items, _, _ in batch for item in call_items]
        try:
            results = await self._run(items, max(now for _, now, _ in batch))
        except asyncio.CancelledError:
            for _, _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # every caller in the batch sees the failure
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for call_items, _, future in batch:
            end = start + len(call_items)
            # A caller that gave up (deadline, cancellation) still had its items applied, which is
            # harmless: every operation is idempotent by grant id.
            if not future.done():
                future.set_result(results[start:end])
            start = end
