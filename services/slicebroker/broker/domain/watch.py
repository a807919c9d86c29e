"""Watching grants: the grant change stream, filtered to what the caller may see, resumable by
revision.

Every state change of a grant is appended to one capped stream in the same Lua script as the
change itself (see storage/lua), so the stream is exactly the sequence of changes. A revision is a
stream id ("<ms>-<seq>", ordered). A watch:

1. starts with a snapshot when the reader has no revision, when its revision was trimmed away
   (older than what the stream still holds) or is ahead of the stream (another database): BEGIN,
   one SNAPSHOT per live grant in scope (queued, being served, active) as of revision R, END
   carrying R;
2. then sends every change after its revision (or R) that is in scope, oldest first, each with its
   own revision. A reader that resumes from the last revision it applied misses nothing and sees
   nothing twice.

The snapshot is exact at R although grants keep changing while it is read: R1 (the last revision)
is read first, then the live grants, then R (the last revision again); every change in (R1, R] is
folded into what was read, keeping per grant whichever is newer. Each grant hash carries the
revision of its last change, so the fold knows which is newer. What remains is every grant as of
R, and the tail starts after R.

One reader per broker follows the stream (`ChangeTail`) and hands each batch it reads, decoded
once, to every watch; a watch reads the stream itself only to catch up (after its snapshot or
revision, or when it fell behind the shared reader). Each batch says which revision it was read
after, so a watch knows whether the batch joins on to what it has seen: when it does not (the watch
lagged and its queue overflowed, or the shared reader lost its place), the watch catches up from the
stream again, with the same gap check. So a thousand watches cost one blocking read per batch of
changes, not a thousand, and hold one Redis connection, not a thousand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from slicebroker.broker.domain.grants import Access, _allowed
from slicebroker.broker.domain.model import ChangeType, Grant, GrantChange, GrantState
from slicebroker.broker.domain.ports import GrantStore
from slicebroker.core.errors import InvalidArgument, ResourceExhausted, Unavailable
from slicebroker.core.ids import check_grant_id, check_name

log = logging.getLogger("slicebroker.broker.watch")

_REVISION = re.compile(r"^(\d{1,20})-(\d{1,20})$")
_LIVE = (GrantState.QUEUED, GrantState.PENDING, GrantState.ACTIVE)


def parse_revision(field: str, text: str) -> tuple[int, int]:
    """A revision as an ordered pair; INVALID_ARGUMENT naming `field` when it is not one."""
    found = _REVISION.match(text)
    if found is None:
        raise InvalidArgument(field, f"{text[:40]!r} is not a revision (one this stream sent, like '1700000000000-0')")
    return int(found[1]), int(found[2])


def _rev(text: str) -> tuple[int, int]:
    return parse_revision("revision", text) if text else (0, 0)


class Owners(Protocol):
    """Who owns what (GrantService): for the same tenant checks as GetGrant and ListGrants."""

    async def institution_of(self, project: str) -> str: ...
    async def get_grant(self, grant_id: str, access: Access = None) -> Grant: ...


@dataclass(frozen=True, slots=True)
class TailBatch:
    """Every change after revision `after`, oldest first, as the shared reader read them; or, with
    `lost` set, word that the reader lost its place (a gap, an error) and watches must read for
    themselves."""

    after: str
    changes: tuple[GrantChange, ...] = ()
    lost: bool = False

    def joins(self, revision: str) -> bool:
        """Whether a watch that has seen everything up to `revision` misses nothing by taking this
        batch next (changes at or before `revision` in it are skipped)."""
        return not self.lost and _rev(self.after) <= _rev(revision)


class ChangeTail:
    """The one reader of the change stream a broker's watches share. It runs while anyone is
    subscribed; each subscriber has a queue of batches. A subscriber too slow to keep its queue
    from filling up is not waited for: its queue is replaced by word that it lost its place, and
    it catches up from the stream itself."""

    def __init__(self, store: GrantStore, *, block_ms: int = 1000, batch: int = 500, queue: int = 64) -> None:
        self._store = store
        self._block_ms = block_ms
        self._batch = batch
        self._queue = queue
        self._subscribers: set[asyncio.Queue[TailBatch]] = set()
        self._task: asyncio.Task[None] | None = None
        self.reads = 0  # blocking reads so far (what sharing saves is visible in tests)

    @contextlib.contextmanager
    def subscription(self) -> Iterator[asyncio.Queue[TailBatch]]:
        queue: asyncio.Queue[TailBatch] = asyncio.Queue(self._queue)
        self._subscribers.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._follow())
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)
            if not self._subscribers and self._task is not None:
                self._task.cancel()
                self._task = None

    async def _follow(self) -> None:
        revision = ""
        while self._subscribers:
            try:
                if not revision:
                    revision, _ = await self._store.change_bounds()
                self.reads += 1
                changes = await self._store.changes_after(revision, self._block_ms, self._batch)
                if not changes:
                    continue
                _, trimmed = await self._store.change_bounds()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: watches find out by reading for themselves
                log.warning("the grant change reader failed (%s); watches read for themselves", exc)
                self._publish(TailBatch(revision, lost=True))
                revision = ""
                await asyncio.sleep(min(1.0, self._block_ms / 1000))
                continue
            lost = _gap(revision, trimmed, changes)
            self._publish(TailBatch(revision, tuple(changes), lost=lost))
            revision = changes[-1].revision

    def _publish(self, batch: TailBatch) -> None:
        for queue in self._subscribers:
            if not queue.full():
                queue.put_nowait(batch)
                continue
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(TailBatch(batch.after, lost=True))


class GrantWatch:
    def __init__(
        self,
        store: GrantStore,
        grants: Owners,
        clock: Callable[[], int],
        *,
        block_ms: int = 1000,
        batch: int = 500,
        max_streams: int = 256,
        snapshot_attempts: int = 5,
    ) -> None:
        self._store = store
        self._grants = grants
        self._clock = clock
        self._block_ms = block_ms
        self._batch = batch
        self._max_streams = max_streams
        self._snapshot_attempts = snapshot_attempts
        self.streams = 0
        self.tail = ChangeTail(store, block_ms=block_ms, batch=batch)

    async def watch(
        self, *, project: str = "", grant_id: str = "", from_revision: str = "", access: Access = None
    ) -> AsyncIterator[GrantChange]:
        # 1. Check everything before streaming anything: bad input and foreign scopes are refused.
        if project:
            check_name("project", project)
        if grant_id:
            check_grant_id("grant_id", grant_id)
        after = parse_revision("from_revision", from_revision) if from_revision else None
        if project and access is not None:
            access(await self._grants.institution_of(project), project)
        if grant_id:
            grant = await self._grants.get_grant(grant_id, access)  # NotFound / PermissionDenied
            if project and grant.project != project:
                raise InvalidArgument("grant_id", f"grant {grant_id} is not a grant of project {project!r}")
        if self.streams >= self._max_streams:
            raise ResourceExhausted(f"this broker serves {self._max_streams} watches at most; retry later")
        self.streams += 1
        try:
            async for change in self._changes(project, grant_id, from_revision if after else "", access):
                yield change
        finally:
            self.streams -= 1

    async def _changes(self, project: str, grant_id: str, revision: str, access: Access) -> AsyncIterator[GrantChange]:
        async def in_scope(grant: Grant | None) -> bool:
            if grant is None or (grant_id and grant.id != grant_id) or (project and grant.project != project):
                return False
            if access is None:
                return True
            return _allowed(
                access, grant.institution or await self._grants.institution_of(grant.project), grant.project
            )

        last, trimmed = await self._store.change_bounds()
        snapshot = not revision or _rev(trimmed) > _rev(revision) or _rev(revision) > _rev(last)
        with self.tail.subscription() as batches:
            while True:
                if snapshot:
                    revision, live = await self._snapshot()
                    yield GrantChange(ChangeType.SNAPSHOT_BEGIN, "", at_ms=self._clock())
                    for grant in live:
                        if await in_scope(grant):
                            yield GrantChange(ChangeType.SNAPSHOT, "", grant, self._clock())
                    yield GrantChange(ChangeType.SNAPSHOT_END, revision, at_ms=self._clock())
                    snapshot = False
                # 2. Catch up from the stream itself (with the exact gap check) until nothing is newer.
                changes = await self._store.changes_between(revision, "+", self._batch)
                _, trimmed = await self._store.change_bounds()
                if _gap(revision, trimmed, changes):
                    snapshot = True  # trimmed past this reader while it lagged: start over
                    continue
                for change in changes:
                    if await in_scope(change.grant):
                        yield change
                    revision = change.revision
                if changes:
                    continue
                # 3. Caught up: take the shared reader's batches while they join on.
                while (batch := await batches.get()).joins(revision):
                    for change in batch.changes:
                        if _rev(change.revision) <= _rev(revision):
                            continue
                        if await in_scope(change.grant):
                            yield change
                        revision = change.revision

    async def _snapshot(self) -> tuple[str, list[Grant]]:
        """Every live grant as of one revision R, and R (see the module docstring)."""
        for _ in range(self._snapshot_attempts):
            first, _ = await self._store.change_bounds()
            ids = await self._store.live_ids()
            read: list[Grant] = []
            for i in range(0, len(ids), 1000):
                read.extend(g for g in await self._store.get_many(ids[i : i + 1000]) if g is not None)
            last, _ = await self._store.change_bounds()
            window = await self._store.changes_between(first, last) if last != first else []
            _, trimmed = await self._store.change_bounds()
            if _gap(first, trimmed, window):
                continue  # the window was trimmed while we read: read again
            latest = {g.id: g for g in read}
            for change in window:
                assert change.grant is not None
                known = latest.get(change.grant.id)
                if known is None or _rev(known.revision) < _rev(change.revision):
                    latest[change.grant.id] = change.grant
            return last, _announced_live(latest.values())
        raise Unavailable("grants change too fast to take a snapshot; retry")


def _gap(after: str, trimmed: str, read: Sequence[GrantChange]) -> bool:
    """Whether changes after `after` were trimmed before `read` (the changes read after it) was
    read, given the largest trimmed revision seen once the read was done. The read returned the
    first change after `after` that existed then, so a trimmed revision at or past it was trimmed
    afterwards, and nothing between was lost."""
    if _rev(trimmed) <= _rev(after):
        return False
    return not read or _rev(trimmed) < _rev(read[0].revision)


def _announced_live(grants: Iterable[Grant]) -> list[Grant]:
    """Live grants that watchers have heard of, oldest first. A grant being served from the queue
    (pending again for a moment) is shown as it was announced, queued; a fresh request still
    being granted was never announced and comes with its first change."""
    out: list[Grant] = []
    for grant in sorted(grants, key=lambda g: g.id):
        if grant.state not in _LIVE or not grant.revision:
            continue
        out.append(grant.with_(state=GrantState.QUEUED) if grant.state is GrantState.PENDING else grant)
    return out
