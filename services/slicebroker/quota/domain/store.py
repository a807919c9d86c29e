"""The port `QuotaService` needs from storage, and the raw outcomes the store reports.

The store applies whole batches atomically per item and reports what happened as plain outcomes;
turning an outcome into a caller-facing error (and its message) is the domain's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from slicebroker.quota.domain.model import (
    HeldReservation,
    Institution,
    InstitutionSpec,
    Project,
    ProjectSpec,
    ReservationRequest,
)


class ReserveStatus(StrEnum):
    OK = "OK"
    PROJECT_NOT_FOUND = "PROJECT_NOT_FOUND"
    # The grant id already holds a reservation for a different project, SKU or count.
    MISMATCH = "MISMATCH"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"


@dataclass(frozen=True, slots=True)
class ReserveOutcome:
    status: ReserveStatus
    # OK: the project's institution.
    institution: str = ""
    # QUOTA_EXCEEDED: the cap and the devices in use when the item was refused.
    cap: int = 0
    in_use: int = 0
    # MISMATCH: what the grant id holds already.
    held_project: str = ""
    held_sku: str = ""
    held_count: int = 0


class CommitStatus(StrEnum):
    OK = "OK"
    NOT_FOUND = "NOT_FOUND"
    # The TTL had passed; the store released the reservation in the same atomic step.
    EXPIRED = "EXPIRED"


class QuotaStore(Protocol):
    async def upsert_institution(self, spec: InstitutionSpec) -> Institution:
        """Creates or changes an institution; an identical upsert leaves its generation as it is."""
        ...

    async def list_institutions(self) -> list[Institution]: ...

    async def institution_exists(self, institution_id: str) -> bool: ...

    async def upsert_project(self, spec: ProjectSpec) -> Project | None:
        """Creates or changes a project; None when its institution does not exist (nothing written)."""
        ...

    async def get_projects(self, project_ids: Sequence[str]) -> list[Project | None]: ...

    async def list_projects(self) -> list[Project]: ...

    async def reserve(self, items: Sequence[ReservationRequest], now_ms: int) -> list[ReserveOutcome]:
        """One atomic step per item, all items in one round trip, in order."""
        ...

    async def commit(self, grant_ids: Sequence[str], now_ms: int) -> list[CommitStatus]: ...

    async def cancel(self, grant_ids: Sequence[str], now_ms: int) -> list[int]:
        """Devices returned per item (0: nothing was held)."""
        ...

    async def sweep(self, now_ms: int, limit: int) -> list[str]:
        """Releases up to `limit` reservations whose TTL passed by `now_ms`; their grant ids."""
        ...

    async def list_reservations(self) -> list[HeldReservation]: ...
