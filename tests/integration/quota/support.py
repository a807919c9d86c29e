"""Shared values of the quota storage tests."""

from __future__ import annotations

from slicebroker.core.ids import new_grant_id
from slicebroker.quota.domain.model import ReservationRequest

PREFIX = "sb:quota-test"
H100 = "H100-SXM-80GB"
T0 = 1_750_000_000_000  # a fixed clock, epoch ms


def res(count: int = 1, sku: str = H100, project: str = "p", ttl: int = 30, grant: str = "") -> ReservationRequest:
    return ReservationRequest(grant or new_grant_id(), project, sku, count, ttl)
