"""What the broker needs from the world, as protocols: the other services and its own store.

The domain is written against these; `slicebroker.broker.peers` implements the service ports over
gRPC and `slicebroker.broker.storage` the store over Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from slicebroker.broker.domain.model import Grant, GrantChange, GrantEvent, GrantState, SkuShapes
from slicebroker.broker.domain.snapshot import NodeClaim, NodeView
from slicebroker.core.errors import SlicebrokerError


class ChangeKind(StrEnum):
    UPSERT = "upsert"
    DELETED = "deleted"
    SNAPSHOT_BEGIN = "snapshot_begin"
    SNAPSHOT_END = "snapshot_end"


@dataclass(frozen=True, slots=True)
class NodeChange:
    """One event of inventory's watch: a node as it is now, a node gone, or the bounds of a snapshot."""

    kind: ChangeKind
    revision: int
    node: NodeView | None = None
    node_id: str = ""


@dataclass(frozen=True, slots=True)
class ClaimOutcome:
    error: SlicebrokerError | None
    generations: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReserveItem:
    grant_id: str
    project: str
    sku: str
    count: int
    ttl_s: int
    priority: str = "standard"
    shape: str = ""  # "" whole devices, a partition profile, or a share ("0.25")
    user: str = ""  # counted against "<project>/<user>" too when quota knows that user


@dataclass(frozen=True, slots=True)
class Reserved:
    """Quota's yes: whose the project is, and what the grant's standing is."""

    institution: str
    preemptible: bool = False
    warnings: tuple[str, ...] = ()


class InventoryPort(Protocol):
    async def skus(self) -> dict[str, SkuShapes]: ...
    async def nodes(self, sku: str) -> list[NodeView]: ...
    async def claim(self, claims: Sequence[tuple[str, Sequence[NodeClaim]]]) -> list[ClaimOutcome]: ...
    async def release(self, grant_ids: Sequence[str]) -> dict[str, int]: ...
    async def holders(self) -> list[str]: ...
    def watch(self, from_revision: int) -> AsyncIterator[NodeChange]:
        """Node changes after `from_revision`; a snapshot first when that revision is 0 or too old."""
        ...


class QuotaPort(Protocol):
    async def reserve(self, items: Sequence[ReserveItem]) -> list[Reserved | SlicebrokerError]:
        """Per item: quota's yes, or why it was refused."""
        ...

    async def check(self, items: Sequence[ReserveItem]) -> list[Reserved | SlicebrokerError]:
        """Per item: what `reserve` would answer it now, each on its own; quota writes nothing and
        ignores the grant ids (quotes)."""
        ...

    async def commit(self, grant_ids: Sequence[str]) -> list[SlicebrokerError | None]: ...
    async def cancel(self, grant_ids: Sequence[str]) -> list[SlicebrokerError | None]: ...
    async def reservations(self) -> list[str]: ...
    async def institution_of(self, project: str) -> str:
        """The institution a project belongs to (NotFound for an unknown project)."""
        ...

    async def fair_share_order(self, grants: Sequence[Grant]) -> list[str]:
        """Grant ids in the order quota's fair share would serve them."""
        ...

    async def ancestors(self, tenant: str) -> list[str]:
        """The tenants above `tenant`, its parent first, up to its root (NotFound if unknown)."""
        ...


class AccountingPort(Protocol):
    async def ingest(self, events: Sequence[GrantEvent]) -> None: ...


class GrantStore(Protocol):
    async def begin(self, grants: Sequence[Grant]) -> list[str | None]:
        """Records each pending grant and its idempotency key atomically. Per grant: None, or the id
        of the grant already recorded under that key (then nothing is written for it)."""
        ...

    async def activate(self, grants: Sequence[tuple[Grant, GrantEvent]]) -> list[bool]:
        """Pending → active with the GRANTED event in the outbox, atomically per grant. False for a
        grant that is no longer pending (the reconciler failed it)."""
        ...

    async def abandon(self, grant: Grant) -> None:
        """Forgets a refused pending grant and its idempotency key, as if never asked."""
        ...

    async def fail(self, grant_id: str, now_ms: int, why: str = "") -> bool:
        """Pending → failed (a crash left it half done, or a queued request was refused for good,
        `why` in plain words); frees its idempotency key."""
        ...

    async def end(self, items: Sequence[tuple[Grant, GrantEvent, int]]) -> list[bool]:
        """Per (grant, ENDED event, expired_by_ms): active → ended with the event in the outbox,
        atomically; the grant joins the set whose devices and quota are still to be returned. With
        expired_by_ms > 0, only if its lease ended by then (a renewal wins). False if nothing changed."""
        ...

    async def enqueue(self, grant: Grant, reason: str, *, announce: bool, now_ms: int) -> bool:
        """Pending -> queued at the grant's queue score, with why it waits (a grant that starts
        later waits aside until due). `announce`: a QUEUED change for watchers (fresh requests
        only; a dispatch attempt putting it back is no change)."""
        ...

    async def dequeue(self, grant_id: str, now_ms: int) -> bool:
        """Queued -> pending for a dispatch attempt; False when it is no longer queued."""
        ...

    async def cancel_queued(self, grant_id: str, now_ms: int) -> bool: ...
    async def queued(self, limit: int) -> list[str]: ...
    async def queue_rank(self, grant_id: str) -> int | None: ...
    async def note_waiting(self, grant_id: str, reason: str) -> None: ...
    async def expiring(self, limit: int) -> list[tuple[str, int]]: ...
    async def cleaned(self, grant_ids: Sequence[str]) -> None: ...
    async def renew(self, grant_id: str, now_ms: int, expires_ms: int) -> str:
        """Extends an active, unexpired lease. Returns the grant's state ("active" when renewed,
        "expired" when its lease already ran out), or "" when there is no such grant."""
        ...

    async def get(self, grant_id: str) -> Grant | None: ...
    async def get_many(self, grant_ids: Sequence[str]) -> list[Grant | None]: ...
    async def page(
        self, project: str, state: GrantState | None, page_size: int, after: str
    ) -> tuple[list[Grant], str]: ...
    async def expired(self, now_ms: int, limit: int) -> list[str]: ...
    async def ending(self, before_ms: int, limit: int) -> list[str]: ...
    async def pending_before(self, before_ms: int, limit: int) -> list[str]: ...
    async def outbox_read(self, limit: int) -> list[tuple[str, GrantEvent]]: ...
    # Requests that start later.
    async def scheduled_due(self, now_ms: int, limit: int) -> list[str]: ...
    async def promote(self, grant_id: str) -> bool:
        """A due request joins the queue; False if it was cancelled meanwhile."""
        ...

    async def next_scheduled(self) -> int | None:
        """The earliest start_after of the requests waiting aside (ms), or None."""
        ...

    # Preemption.
    async def notice(self, grant_id: str, now_ms: int, deadline_ms: int, reason: str) -> bool:
        """Active, not yet noticed → under notice until `deadline_ms`, with a PREEMPTION_NOTICE
        change; False if not active or already under notice (the first notice stands)."""
        ...

    async def under_notice(self, limit: int) -> list[tuple[str, int]]: ...
    async def preemption_due(self, now_ms: int, limit: int) -> list[str]: ...
    # The change stream (WatchGrants).
    async def live_ids(self) -> list[str]: ...
    async def change_bounds(self) -> tuple[str, str]:
        """(last revision written, the revision at or below which changes may have been trimmed
        away), "0-0" for none."""
        ...

    async def changes_after(self, after: str, block_ms: int, count: int) -> list[GrantChange]: ...
    async def changes_between(self, after: str, until: str, count: int | None = None) -> list[GrantChange]: ...
    async def outbox_ack(self, entry_ids: Sequence[str]) -> None: ...
