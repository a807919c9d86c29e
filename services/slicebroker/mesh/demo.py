"""Loads a facility and its tenants into a running mesh through the public API."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import yaml
from google.protobuf import json_format

from slicebroker.mesh.launcher import Mesh
from slicebroker.quota.api.convert import budget_pb, quota_entry_pb
from slicebroker.quota.domain import budget as budgets
from slicebroker.quota.domain.model import NodeKind
from slicebroker.quota.domain.tenants import parse_tenants_file
from slicebroker.v1 import (
    accounting_pb2,
    accounting_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
    quota_pb2,
    quota_pb2_grpc,
)


@dataclass(frozen=True, slots=True)
class Loaded:
    nodes: int
    devices: int
    institutions: int
    projects: int


def publish_price_book(mesh: Mesh, path: Path) -> int:
    """Publishes the price book in `path` (YAML with PriceBook's fields) unless one is published
    already (a restarted demo keeps its book and the versions it billed with). Its version."""
    with mesh.channel("accounting") as channel:
        stub = accounting_pb2_grpc.AccountingServiceStub(channel)
        try:
            return int(
                stub.GetPriceBook(accounting_pb2.GetPriceBookRequest(), timeout=10, metadata=mesh.metadata).version
            )
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.NOT_FOUND:
                raise
        book = json_format.ParseDict(yaml.safe_load(path.read_text()), accounting_pb2.PriceBook())
        published = stub.PublishPriceBook(
            accounting_pb2.PublishPriceBookRequest(book=book), timeout=10, metadata=mesh.metadata
        )
        return int(published.version)


def load_demo(mesh: Mesh, facility: Path, tenants: Path) -> Loaded:
    metadata = mesh.metadata
    with mesh.channel("inventory") as channel:
        result = inventory_pb2_grpc.InventoryServiceStub(channel).LoadFacility(
            inventory_pb2.LoadFacilityRequest(yaml=facility.read_text()), timeout=120, metadata=metadata
        )
    parsed = parse_tenants_file(tenants.read_text())
    institutions, projects = parsed.institutions, parsed.projects
    kinds = {
        NodeKind.COHORT: quota_pb2.TENANT_KIND_COHORT,
        NodeKind.INSTITUTION: quota_pb2.TENANT_KIND_INSTITUTION,
        NodeKind.USER: quota_pb2.TENANT_KIND_USER,
    }
    with mesh.channel("quota") as channel:
        stub = quota_pb2_grpc.QuotaServiceStub(channel)

        def upsert_nodes(users: bool) -> None:
            # A fresh demo: the file's places and weights as they are (state left unspecified: active).
            for spec in parsed.nodes:
                if (spec.kind is NodeKind.USER) == users:
                    stub.UpsertTenant(
                        quota_pb2.UpsertTenantRequest(
                            id=spec.id,
                            kind=kinds[spec.kind],
                            parent=spec.parent,
                            display_name=spec.display_name,
                            weight=spec.weight,
                        ),
                        timeout=10,
                        metadata=metadata,
                    )

        for inst in institutions:
            stub.UpsertInstitution(
                quota_pb2.UpsertInstitutionRequest(id=inst.id, display_name=inst.display_name),
                timeout=10,
                metadata=metadata,
            )
        upsert_nodes(users=False)
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
        upsert_nodes(users=True)
        for node_id, entries in parsed.quotas.items():
            request = quota_pb2.SetQuotaRequest(
                tenant=node_id, entries=[quota_entry_pb(c, e) for c, e in entries.items() if e is not None]
            )
            stub.SetQuota(request, timeout=10, metadata=metadata)
        now_ms = int(time.time() * 1000)
        for node_id, budget in parsed.budgets.items():
            if not stub.GetTenant(quota_pb2.GetTenantRequest(id=node_id), timeout=10, metadata=metadata).HasField(
                "budget"
            ):
                award = quota_pb2.SetBudgetRequest(tenant=node_id, budget=budget_pb(budgets.current(budget, now_ms)))
                stub.SetBudget(award, timeout=10, metadata=metadata)
    return Loaded(
        nodes=result.nodes_registered + result.nodes_unchanged,
        devices=result.devices,
        institutions=len(institutions),
        projects=len(projects),
    )
