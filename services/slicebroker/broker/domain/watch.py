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
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Protocol

from slicebroker.broker.domain.grants import Access, _allowed
from slicebroker.broker.domain.model import ChangeType, Grant, GrantChange, GrantState
from slicebroker.broker.domain.ports import GrantStore
from slicebroker.core.errors import InvalidArgument, ResourceExhausted, Unavailable
from slicebroker.core.ids import check_grant_id, check_name

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
        while True:
            if snapshot:
                revision, live = await self._snapshot()
                yield GrantChange(ChangeType.SNAPSHOT_BEGIN, "", at_ms=self._clock())
                for grant in live:
                    if await in_scope(grant):
                        yield GrantChange(ChangeType.SNAPSHOT, "", grant, self._clock())
                yield GrantChange(ChangeType.SNAPSHOT_END, revision, at_ms=self._clock())
                snapshot = False
            # 2. Non-blocking read first (exact gap check); wait only when there is nothing new.
            changes = await self._store.changes_between(revision, "+", self._batch)
            _, trimmed = await self._store.change_bounds()
            if _gap(revision, trimmed, changes):
                snapshot = True  # trimmed past this reader while it lagged: start over
                continue
            if not changes:
                await self._store.changes_after(revision, self._block_ms, 1)
                continue
            for change in changes:
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
