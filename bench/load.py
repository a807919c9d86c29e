"""Closed- and open-loop load generation with latency percentiles."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LoadResult:
    concurrency: int
    seconds: float
    operations: int
    errors: int
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.operations / self.seconds

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


# One operation: returns the latency (ms) of the part being measured.
Operation = Callable[[int], Awaitable[float]]


async def closed_loop(operation: Operation, concurrency: int, seconds: float) -> LoadResult:
    """`concurrency` workers each run operations back to back for `seconds`."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds
    counter = iter(range(10**12))

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            try:
                latencies.append(await operation(next(counter)))
            except Exception:
                errors += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return LoadResult(concurrency, time.perf_counter() - start, len(latencies), errors, latencies)


async def open_loop(operation: Operation, rate: float, seconds: float) -> LoadResult:
    """Starts operations at a fixed `rate` per second regardless of how long they take."""
    latencies: list[float] = []
    errors = 0
    tasks: list[asyncio.Task[None]] = []

    async def one(i: int) -> None:
        nonlocal errors
        try:
            latencies.append(await operation(i))
        except Exception:
            errors += 1

    start = time.perf_counter()
    total = int(rate * seconds)
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return LoadResult(0, time.perf_counter() - start, len(latencies), errors, latencies)
