"""A small facility and tenants for end-to-end tests, and a mesh of the four real servers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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
from slicebroker.runtime.server import RunningServer
from slicebroker.v1 import (
    inventory_pb2,
    inventory_pb2_grpc,
    quota_pb2,
    quota_pb2_grpc,
)

# 8 nodes x 8 H100 = 64 devices, plus 2 RNGD nodes.
SMALL_FACILITY = """
sites:
  - name: test-site
    racks:
      - name: r01
        node_groups:
          - {prefix: h100-r01-n, count: 4, sku: H100-SXM-80GB, devices: 8}
      - name: r02
        node_groups:
          - {prefix: h100-r02-n, count: 4, sku: H100-SXM-80GB, devices: 8}
      - name: r03
        node_groups:
          - {prefix: rngd-r03-n, count: 2, sku: RNGD, devices: 8}
"""

# Four projects of two institutions; H100 caps sum to 80, above the 64 devices there are.
PROJECTS = {
    "uni-a-llm": ("uni-a", {"H100-SXM-80GB": 20, "RNGD": 32}),
    "uni-a-vision": ("uni-a", {"H100-SXM-80GB": 20}),
    "lab-b-bio": ("lab-b", {"H100-SXM-80GB": 20}),
    "lab-b-chem": ("lab-b", {"H100-SXM-80GB": 20}),
    # For topology and alternatives: plenty of H200 (TOPOLOGY_FACILITY), no H100.
    "topo-lab": ("lab-b", {"H200-SXM-141GB": 200}),
}

# The projects that may hold H100s (what load generators cycle through).
H100_PROJECTS = sorted(p for p, (_, caps) in PROJECTS.items() if "H100-SXM-80GB" in caps)

# Two leaf switches of H200 nodes: 2 nodes under leaf-a, 4 under leaf-b. Loaded by the tests that need it.
TOPOLOGY_FACILITY = """
sites:
  - name: topo
    halls:
      - name: hall-1
        pods:
          - name: pod-a
            leaf: leaf-a
            racks:
              - {name: h200-ra, node_groups: [{prefix: h200-a-n, count: 2, sku: H200-SXM-141GB, devices: 8}]}
          - name: pod-b
            leaf: leaf-b
            racks:
              - {name: h200-rb, node_groups: [{prefix: h200-b-n, count: 4, sku: H200-SXM-141GB, devices: 8}]}
"""


@dataclass
class MeshUnderTest:
    inventory: RunningServer
    quota: RunningServer
    accounting: RunningServer
    broker: RunningServer

    @property
    def addresses(self) -> dict[str, str]:
        return {
            "inventory": self.inventory.address,
            "quota": self.quota.address,
            "accounting": self.accounting.address,
            "broker": self.broker.address,
        }


StartService = Callable[[Callable[[Any], Awaitable[Any]], Any], Awaitable[RunningServer]]


async def start_mesh(start_service: StartService, redis_url: str, **broker_overrides: Any) -> MeshUnderTest:
    listen = "127.0.0.1:0"
    inventory = await start_service(build_inventory, InventorySettings(redis_url=redis_url, listen=listen))
    quota = await start_service(build_quota, QuotaSettings(redis_url=redis_url, listen=listen))
    accounting = await start_service(build_accounting, AccountingSettings(redis_url=redis_url, listen=listen))
    addresses = {"inventory": inventory.address, "quota": quota.address}
    await load_small_demo(lambda name: grpc.aio.insecure_channel(addresses[name]))
    broker_settings = BrokerSettings(
        redis_url=redis_url,
        listen=listen,
        inventory_addr=inventory.address,
        quota_addr=quota.address,
        accounting_addr=accounting.address,
        **{"reaper_interval_s": 0.05, "relay_interval_s": 0.02, **broker_overrides},
    )
    broker = await start_service(build_broker, broker_settings)
    return MeshUnderTest(inventory=inventory, quota=quota, accounting=accounting, broker=broker)


async def load_small_demo(channel_to: Callable[[str], grpc.aio.Channel], metadata: Any = ()) -> None:
    """Loads SMALL_FACILITY and PROJECTS through channels opened by `channel_to(service name)`."""
    async with channel_to("inventory") as channel:
        await inventory_pb2_grpc.InventoryServiceStub(channel).LoadFacility(
            inventory_pb2.LoadFacilityRequest(yaml=SMALL_FACILITY), metadata=metadata
        )
    async with channel_to("quota") as channel:
        stub = quota_pb2_grpc.QuotaServiceStub(channel)
        for institution in sorted({inst for inst, _ in PROJECTS.values()}):
            await stub.UpsertInstitution(quota_pb2.UpsertInstitutionRequest(id=institution), metadata=metadata)
        for project, (institution, caps) in PROJECTS.items():
            await stub.UpsertProject(
                quota_pb2.UpsertProjectRequest(id=project, institution=institution, device_caps=caps),
                metadata=metadata,
            )
