"""The four real servers in this process with a token file: a facility admin, the broker's service
identity, and tenants of two institutions (uni-a, lab-b) of the small demo facility."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from slicebroker.accounting.main import build as build_accounting
from slicebroker.accounting.settings import AccountingSettings
from slicebroker.broker.main import build as build_broker
from slicebroker.broker.settings import BrokerSettings
from slicebroker.inventory.main import build as build_inventory
from slicebroker.inventory.settings import InventorySettings
from slicebroker.quota.main import build as build_quota
from slicebroker.quota.settings import QuotaSettings
from slicebroker.runtime.auth import append_entries, issue_token
from slicebroker.runtime.server import RunningServer
from slicebroker.v1 import quota_pb2, quota_pb2_grpc
from tests.mesh_fixtures import load_small_demo

IDENTITIES = {
    "admin": ("ops", "facility-admin", "", ()),
    "broker": ("broker", "service", "", ()),
    "uni-a": ("uni-a-admin", "institution-admin", "uni-a", ()),
    "uni-a-llm": ("ana", "project-member", "uni-a", ("uni-a-llm",)),
    "lab-b": ("lab-b-admin", "institution-admin", "lab-b", ()),
}


@dataclass
class SecureMesh:
    servers: dict[str, RunningServer]
    tokens: dict[str, str]
    token_file: Path

    def md(self, who: str) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.tokens[who]}")]

    def channel(self, service: str) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(self.servers[service].address)

    async def cap_user(self, project: str, user: str, sku: str, cap: str) -> None:
        """Adds the user tenant "<project>/<user>" with a hard cap on `sku` (as the admin)."""
        async with self.channel("quota") as channel:
            quota = quota_pb2_grpc.QuotaServiceStub(channel)
            tenant = f"{project}/{user}"
            await quota.UpsertTenant(
                quota_pb2.UpsertTenantRequest(id=tenant, kind=quota_pb2.TENANT_KIND_USER, parent=project),
                metadata=self.md("admin"),
            )
            entry = quota_pb2.QuotaEntry(resource_class=sku, hard_cap=cap)
            await quota.SetQuota(quota_pb2.SetQuotaRequest(tenant=tenant, entries=[entry]), metadata=self.md("admin"))


def write_tokens(path: Path) -> dict[str, str]:
    issued = {key: issue_token(*spec) for key, spec in IDENTITIES.items()}
    append_entries(path, {t.token_id: t.entry for t in issued.values()})
    return {key: t.token for key, t in issued.items()}


async def start_secure_mesh(start_service: Any, redis_url: str, tmp_path: Path, **common: Any) -> SecureMesh:
    token_file = tmp_path / "tokens.yaml"
    tokens = write_tokens(token_file)
    base = {"redis_url": redis_url, "listen": "127.0.0.1:0", "auth_tokens_file": token_file, **common}
    servers = {
        "inventory": await start_service(build_inventory, InventorySettings(**base)),
        "quota": await start_service(build_quota, QuotaSettings(**base)),
        "accounting": await start_service(build_accounting, AccountingSettings(**base)),
    }
    admin = [("authorization", f"Bearer {tokens['admin']}")]
    await load_small_demo(lambda name: grpc.aio.insecure_channel(servers[name].address), admin)
    broker_settings = BrokerSettings(
        **base,
        inventory_addr=servers["inventory"].address,
        quota_addr=servers["quota"].address,
        accounting_addr=servers["accounting"].address,
        service_token=tokens["broker"],
        reaper_interval_s=0.05,
        relay_interval_s=0.02,
    )
    servers["broker"] = await start_service(build_broker, broker_settings)
    return SecureMesh(servers=servers, tokens=tokens, token_file=token_file)
