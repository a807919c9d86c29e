"""Watch: node changes by global revision, with one reader of the change log per process.

Every Watch stream of a process shares one `ChangeTail`: a single task reads the log, reads the
changed nodes once per batch and keeps the resulting events in a bounded buffer, so ten streams
cost one Redis read per batch instead of ten. A stream that is behind the buffer (it resumed from
an older revision) reads the log itself until it reaches the buffer; one behind the log itself
(trimmed) gets a snapshot.

Events are coalesced per batch: each node is sent once, as it is now, at the revision of its last
change in the batch, in revision order, so a reader that resumes from the last revision it saw
misses nothing. A stream that wakes finds the events after its revision by bisection (the buffer
is a list kept in revision order), so each wake-up costs what it sends, not the buffer's length.
Pure asyncio over the store Protocol: no grpc, no redis here.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Iterator, Sequence

from slicebroker.core.errors import Unavailable
from slicebroker.inventory.domain.model import Change, WatchEvent, WatchEventType
from slicebroker.inventory.domain.store import InventoryStore

# Most events a reader may ask to receive per message.
MAX_WATCH_BATCH = 1000


def chunks(events: Sequence[WatchEvent], size: int) -> Iterator[list[WatchEvent]]:
    for start in range(0, len(events), size):
        yield list(events[start : start + size])


async def events_for(store: InventoryStore, changes: Sequence[Change]) -> list[WatchEvent]:
    """The coalesced events of one contiguous batch of changes."""
    at = {change.node_id: change.revision for change in changes}
    nodes = await store.get_nodes(list(at))
    events = []
    for node_id, revision in sorted(at.items(), key=lambda item: item[1]):
        node = nodes[node_id]
        if node is None:
            events.append(WatchEvent(WatchEventType.DELETED, revision, node_id))
        else:
            events.append(WatchEvent(WatchEventType.UPSERT, revision, node_id, node))
    return events


class ChangeTail:
    """The shared reader. It runs while at least one stream follows it.

    The buffer holds the events of revisions (floor, last]: `events[first:]`, in revision order
    (the head is dropped in bulk, so trimming costs amortised O(1) per event); `floor` is -1 until
    the task has read where the log stands."""

    def __init__(self, store: InventoryStore, block_ms: int, batch: int, keep: int = 4096) -> None:
        self._store = store
        self._block_ms = block_ms
        self._batch = batch
        self._keep = keep
        self.events: list[WatchEvent] = []
        self._first = 0
        self.floor = -1
        self.last = -1
        self.error: BaseException | None = None
        self._changed = asyncio.Condition()
        self._followers = 0
        self._task: asyncio.Task[None] | None = None

    def follow(self) -> None:
        self._followers += 1
        if self._task is None:
            self.error = None
            self._task = asyncio.get_running_loop().create_task(self._run(), name="inventory-watch-tail")

    def unfollow(self) -> None:
        self._followers -= 1

    def after(self, revision: int) -> list[WatchEvent]:
        """Buffered events after `revision` (which must be >= floor)."""
        start = bisect.bisect_right(self.events, revision, lo=self._first, key=_revision)
        return self.events[start:]

    def _clear(self) -> None:
        self.events = []
        self._first = 0

    def _trim(self) -> None:
        """Keeps the newest `keep` events; `floor` follows the newest one dropped."""
        excess = len(self.events) - self._first - self._keep
        if excess > 0:
            self._first += excess
            self.floor = self.events[self._first - 1].revision
        if self._first > self._keep:
            del self.events[: self._first]
            self._first = 0

    async def wait_past(self, revision: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.last > revision or self.error is not None)
        if self.error is not None:
            raise Unavailable("the inventory's change log could not be read; reconnect") from self.error

    async def _run(self) -> None:
        try:
            start = await self._store.revision()
            async with self._changed:
                self.floor = self.last = start
                self._clear()
                self._changed.notify_all()
            while self._followers > 0:
                changes = await self._store.changes_after(self.last, self._block_ms, self._batch)
                if not changes:
                    continue
                events = await events_for(self._store, changes)
                async with self._changed:
                    if changes[0].revision != self.last + 1:
                        # Trimmed past us: what the buffer held no longer joins up with what follows.
                        self._clear()
                        self.floor = changes[0].revision - 1
                    self.events.extend(events)
                    self._trim()
                    self.last = changes[-1].revision
                    self._changed.notify_all()
        except Exception as exc:  # surfaced to every follower as UNAVAILABLE
            async with self._changed:
                self.error = exc
                self._changed.notify_all()
        finally:
            self._task = None
            self.floor = self.last = -1
            self._clear()


def _revision(event: WatchEvent) -> int:
    return event.revision
