"""Shared values of the quota storage tests."""

from __future__ import annotations

from slicebroker.core.ids import new_grant_id
from slicebroker.quota.domain.model import ProjectSpec, ReservationRequest
from slicebroker.quota.domain.resources import charges
from slicebroker.quota.domain.service import QuotaService
from slicebroker.quota.domain.store import ChargedRequest
from slicebroker.quota.domain.tree import Priority
from slicebroker.quota.storage.redis_store import RedisQuotaStore

PREFIX = "sb:quota-test"
H100 = "H100-SXM-80GB"
T0 = 1_750_000_000_000  # a fixed clock, epoch ms


def req(
    count: int = 1,
    sku: str = H100,
    project: str = "p",
    ttl: int = 30,
    grant: str = "",
    shape: str = "",
    priority: Priority = Priority.STANDARD,
) -> ReservationRequest:
    return ReservationRequest(grant or new_grant_id(), project, sku, count, ttl, shape, priority)


def res(
    count: int = 1,
    sku: str = H100,
    project: str = "p",
    ttl: int = 30,
    grant: str = "",
    shape: str = "",
    priority: Priority = Priority.STANDARD,
) -> ChargedRequest:
    """A reservation as the store takes it (with its charges)."""
    r = req(count, sku, project, ttl, grant, shape, priority)
    return ChargedRequest(r, charges(sku, shape, count))


async def upsert_project(store: RedisQuotaStore, spec: ProjectSpec) -> None:
    await QuotaService(store).upsert_project(spec)
