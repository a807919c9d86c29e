"""The port `QuotaService` needs from storage, and the raw outcomes the store reports.

The store applies whole batches atomically and reports what happened as plain outcomes; turning an
outcome into a caller-facing error (and its message) is the domain's job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from slicebroker.quota.domain.budget import Budget
from slicebroker.quota.domain.model import HeldReservation, NodeSpec, ReservationRequest, TenantNode
from slicebroker.quota.domain.tree import QuotaEntry


class ReserveStatus(StrEnum):
    OK = "OK"
    PROJECT_NOT_FOUND = "PROJECT_NOT_FOUND"
    # The grant id already holds a reservation for a different project, SKU, count or shape.
    MISMATCH = "MISMATCH"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    NOT_ACTIVE = "NOT_ACTIVE"
    BUDGET_EXHAUSTED = "BUDGET_EXHAUSTED"


@dataclass(frozen=True, slots=True)
class ReserveOutcome:
    status: ReserveStatus
    # OK: the project's institution, whether the grant is preemptible, soft-budget warnings
    # ("<node>:<mh left>").
    institution: str = ""
    preemptible: bool = False
    warnings: tuple[str, ...] = ()
    # QUOTA_EXCEEDED: which limit of which node refused which resource; requested and available
    # units, and what that node's subtree holds of it.
    limit: str = ""
    node: str = ""
    resource: str = ""
    requested: int = 0
    available: int = 0
    in_use: int = 0
    # QUOTA_EXCEEDED by the root's pool ("nominal") while within the project's own quota along its
    # path: what others borrow may be reclaimed for it (`node` is that pool).
    reclaimable: bool = False
    # NOT_ACTIVE: the node's state. BUDGET_EXHAUSTED: `node` and the mh left.
    state: str = ""
    left_mh: int = 0
    # MISMATCH: what the grant id holds already.
    held_project: str = ""
    held_sku: str = ""
    held_count: int = 0
    held_shape: str = ""


@dataclass(frozen=True, slots=True)
class ChargedRequest:
    """A validated reservation with the units it charges per resource."""

    request: ReservationRequest
    charges: Mapping[str, int]

    @property
    def grant_id(self) -> str:
        return self.request.grant_id


class CommitStatus(StrEnum):
    OK = "OK"
    NOT_FOUND = "NOT_FOUND"
    # The TTL had passed; the store released the reservation in the same atomic step.
    EXPIRED = "EXPIRED"


class WriteStatus(StrEnum):
    OK = "OK"
    # A roll-over computed from a budget or burn that has changed since.
    STALE = "STALE"
    CONFLICT = "CONFLICT"
    NOT_FOUND = "NOT_FOUND"
    PARENT_NOT_FOUND = "PARENT_NOT_FOUND"
    KIND_MISMATCH = "KIND_MISMATCH"
    BAD_PARENT = "BAD_PARENT"
    CYCLE = "CYCLE"


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    status: WriteStatus
    # OK: the generation after the write; CONFLICT: the current one.
    generation: int = 0
    # KIND_MISMATCH: the existing kind; BAD_PARENT: the parent's kind.
    detail: str = ""


@dataclass(frozen=True, slots=True)
class BurnEvent:
    event_id: str
    project: str
    mh: int


class QuotaStore(Protocol):
    async def upsert_node(
        self,
        spec: NodeSpec,
        *,
        keep_parent: bool = False,
        keep_state: bool = False,
        entries: Mapping[str, QuotaEntry | None] | None = None,
    ) -> WriteOutcome:
        """Creates or changes a node (and sets `entries`, None removing one) in one atomic step;
        the generation grows, once, only when something changed."""
        ...

    async def set_entries(
        self, node: str, entries: Mapping[str, QuotaEntry | None], expected_generation: int | None
    ) -> WriteOutcome:
        """Sets (None: removes) quota entries of one node by class, in one atomic step."""
        ...

    async def set_budget(
        self, node: str, budget: Budget | None, new_period: bool, expected_generation: int | None
    ) -> WriteOutcome: ...

    async def roll_budget(self, node: str, current: Budget, burned_mh: int, following: Budget) -> WriteOutcome:
        """Replaces `current` by `following` and restarts the burn, in one atomic step, only while
        the node still has exactly `current` and `burned_mh` (else STALE, nothing written)."""
        ...

    async def get_nodes(self, node_ids: Sequence[str]) -> list[TenantNode | None]: ...

    async def list_nodes(self) -> list[TenantNode]: ...

    async def reserve(self, items: Sequence[ChargedRequest], now_ms: int) -> list[ReserveOutcome]:
        """One atomic step per item, all items in one round trip, in order."""
        ...

    async def check(self, items: Sequence[ChargedRequest], now_ms: int) -> list[ReserveOutcome]:
        """What `reserve` would answer each item now, each against the tree as it is (the items do
        not add up); grant ids are ignored and nothing is written."""
        ...

    async def commit(self, grant_ids: Sequence[str], now_ms: int) -> list[CommitStatus]: ...

    async def cancel(self, grant_ids: Sequence[str], now_ms: int) -> list[int]:
        """Slices returned per item (0: nothing was held)."""
        ...

    async def sweep(self, now_ms: int, limit: int) -> list[str]:
        """Releases up to `limit` reservations whose TTL passed by `now_ms`; their grant ids."""
        ...

    async def list_reservations(self) -> list[HeldReservation]: ...

    async def burn(self, events: Sequence[BurnEvent], now_ms: int, half_life_ms: int) -> list[int]:
        """Per event 1 applied, 0 seen before, -1 no such project."""
        ...
