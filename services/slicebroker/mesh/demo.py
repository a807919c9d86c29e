"""Loads a facility and its tenants into a running mesh through the public API."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slicebroker.mesh.launcher import Mesh
from slicebroker.quota.domain.tenants import parse_tenants
from slicebroker.v1 import inventory_pb2, inventory_pb2_grpc, quota_pb2, quota_pb2_grpc


@dataclass(frozen=True, slots=True)
class Loaded:
    nodes: int
    devices: int
    institutions: int
    projects: int


def load_demo(mesh: Mesh, facility: Path, tenants: Path) -> Loaded:
    metadata = mesh.metadata
    with mesh.channel("inventory") as channel:
        result = inventory_pb2_grpc.InventoryServiceStub(channel).LoadFacility(
            inventory_pb2.LoadFacilityRequest(yaml=facility.read_text()), timeout=120, metadata=metadata
        )
    institutions, projects = parse_tenants(tenants.read_text())
    with mesh.channel("quota") as channel:
        stub = quota_pb2_grpc.QuotaServiceStub(channel)
        for inst in institutions:
            stub.UpsertInstitution(
                quota_pb2.UpsertInstitutionRequest(id=inst.id, display_name=inst.display_name),
                timeout=10,
                metadata=metadata,
            )
        for project in projects:
            stub.UpsertProject(
                quota_pb2.UpsertProjectRequest(
                    id=project.id,
                    institution=project.institution,
                    display_name=project.display_name,
                    device_caps=dict(project.device_caps),
                ),
                timeout=10,
                metadata=metadata,
            )
    return Loaded(
        nodes=result.nodes_registered + result.nodes_unchanged,
        devices=result.devices,
        institutions=len(institutions),
        projects=len(projects),
    )
