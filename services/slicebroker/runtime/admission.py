"""Admission control: how many tenant calls a server works on at once, and what happens to the rest.

A burst larger than a replica can serve must not turn into a queue that every caller waits at until
its deadline. So at most `max_in_flight` calls run at once; the others wait in one FIFO per principal,
served round robin (a tenant that floods the server waits behind itself, not in front of the others),
for at most `max_wait_s` or what is left of their deadline. A call that cannot start in time, or that
finds `max_queue` callers already waiting, is refused at once with RESOURCE_EXHAUSTED (reason
OVERLOADED) and a retry hint drawn from the recent service time — a quick, honest answer instead of a
slow timeout, so the latency of every answer stays bounded by the wait limit plus one call.

Streams (watches, exports) are long-lived and pass without a slot; their cost is bounded by their own
limits. The mesh's own service identities are not admitted here: shedding belongs at the edge, where tenants
come in; a grant already under way must be able to finish its calls to quota and inventory.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from slicebroker.core.errors import ResourceExhausted
from slicebroker.core.reasons import Reason

# Weight of the newest call in the moving average of service time.
_EWMA = 0.05


class Admission:
    def __init__(self, max_in_flight: int, max_queue: int, max_wait_s: float) -> None:
        self.max_in_flight = max_in_flight
        self.max_queue = max_queue
        self.max_wait_s = max_wait_s
        self.in_flight = 0
        self.waiting = 0
        self.shed = 0
        # Principal -> its waiters, in the order principals first queued (round robin over them).
        self._queues: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()
        self._service_s = 0.005

    @property
    def enabled(self) -> bool:
        return self.max_in_flight > 0

    @asynccontextmanager
    async def admit(self, who: str, time_left_s: float | None = None) -> AsyncIterator[None]:
        """Runs the body once a slot is free; refuses with OVERLOADED if none frees in time."""
        if not self.enabled:
            yield
            return
        await self._acquire(who, time_left_s)
        start = time.perf_counter()
        try:
            yield
        finally:
            self._service_s += _EWMA * ((time.perf_counter() - start) - self._service_s)
            self._release()

    async def _acquire(self, who: str, time_left_s: float | None) -> None:
        if self.in_flight < self.max_in_flight and not self.waiting:
            self.in_flight += 1
            return
        wait_s = self.max_wait_s if time_left_s is None else min(self.max_wait_s, time_left_s)
        if self.waiting >= self.max_queue or wait_s <= 0:
            raise self._overloaded(who)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._queues.get(who)
        if queue is None:
            queue = self._queues[who] = deque()
        queue.append(waiter)
        self.waiting += 1
        try:
            await asyncio.wait_for(asyncio.shield(waiter), wait_s)
        except (TimeoutError, asyncio.CancelledError) as exc:
            if waiter.done() and not waiter.cancelled():
                # The slot was handed over just as the wait ended: give it on, nobody ran on it.
                self._release()
            else:
                waiter.cancel()
                self._forget(who, waiter)
            if isinstance(exc, TimeoutError):
                raise self._overloaded(who) from None
            raise

    def _release(self) -> None:
        """Hands the slot to the next waiter (round robin over principals), else frees it."""
        while self._queues:
            who, queue = next(iter(self._queues.items()))
            waiter = queue.popleft()
            self.waiting -= 1
            if queue:
                self._queues.move_to_end(who)
            else:
                del self._queues[who]
            if not waiter.done():
                waiter.set_result(None)  # in_flight unchanged: the slot passes to the waiter
                return
        self.in_flight -= 1

    def _forget(self, who: str, waiter: asyncio.Future[None]) -> None:
        queue = self._queues.get(who)
        if queue is None:
            return
        try:
            queue.remove(waiter)
        except ValueError:
            return
        self.waiting -= 1
        if not queue:
            del self._queues[who]

    def _overloaded(self, who: str) -> ResourceExhausted:
        self.shed += 1
        # Time for the callers ahead to be served, at the recent pace, and at least one call.
        ahead = self.waiting + self.in_flight
        retry_ms = max(1, math.ceil(ahead * self._service_s / max(1, self.max_in_flight) * 1000))
        return ResourceExhausted(
            f"the service is overloaded ({self.in_flight} calls running, {self.waiting} waiting); "
            f"retry in {retry_ms} ms",
            reason=Reason.OVERLOADED,
            metadata={"retry_after_ms": retry_ms, "principal": who},
        )


__all__ = ["Admission"]
