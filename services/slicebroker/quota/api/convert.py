"""Converters between `slicebroker.v1.quota_pb2` messages and the quota domain's values."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from slicebroker.quota.domain.model import (
    GrantIdResult,
    HeldReservation,
    Institution,
    InstitutionSpec,
    Phase,
    Project,
    ProjectSpec,
    ReservationRequest,
    ReserveResult,
)
from slicebroker.runtime import status
from slicebroker.v1 import quota_pb2

_PHASE = {
    Phase.RESERVED: quota_pb2.RESERVATION_PHASE_RESERVED,
    Phase.COMMITTED: quota_pb2.RESERVATION_PHASE_COMMITTED,
}


def institution_spec(request: Any) -> InstitutionSpec:
    return InstitutionSpec(id=request.id, display_name=request.display_name)


def institution(value: Institution) -> Any:
    return quota_pb2.Institution(id=value.id, display_name=value.display_name, generation=value.generation)


def institutions(values: Iterable[Institution]) -> Any:
    return quota_pb2.ListInstitutionsResponse(institutions=[institution(v) for v in values])


def project_spec(request: Any) -> ProjectSpec:
    return ProjectSpec(
        id=request.id,
        institution=request.institution,
        display_name=request.display_name,
        device_caps=dict(request.device_caps),
    )


def project(value: Project) -> Any:
    return quota_pb2.Project(
        id=value.id,
        institution=value.institution,
        display_name=value.display_name,
        device_caps=dict(value.device_caps),
        devices_in_use=dict(value.devices_in_use),
        generation=value.generation,
    )


def projects(values: Iterable[Project]) -> Any:
    return quota_pb2.ListProjectsResponse(projects=[project(v) for v in values])


def reservation_requests(request: Any) -> list[ReservationRequest]:
    return [
        ReservationRequest(grant_id=r.grant_id, project=r.project, sku=r.sku, count=r.count, ttl_seconds=r.ttl_seconds)
        for r in request.reservations
    ]


def reserve_response(results: Iterable[ReserveResult]) -> Any:
    return quota_pb2.ReserveResponse(
        results=[
            quota_pb2.ReserveResult(
                grant_id=r.grant_id,
                status=status.OK if r.error is None else status.to_status(r.error),
                institution=r.institution,
            )
            for r in results
        ]
    )


def grant_id_results(results: Iterable[GrantIdResult]) -> list[Any]:
    return [
        quota_pb2.GrantIdResult(grant_id=r.grant_id, status=status.OK if r.error is None else status.to_status(r.error))
        for r in results
    ]


def timestamp(ms: int) -> Timestamp:
    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def held_reservations(values: Iterable[HeldReservation]) -> Any:
    return quota_pb2.ListReservationsResponse(
        reservations=[
            quota_pb2.HeldReservation(
                grant_id=r.grant_id,
                project=r.project,
                sku=r.sku,
                count=r.count,
                phase=_PHASE[r.phase],
                created_at=timestamp(r.created_ms),
            )
            for r in values
        ]
    )
