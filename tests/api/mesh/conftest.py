from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from slicebroker.v1 import (
    accounting_pb2_grpc,
    broker_pb2_grpc,
    inventory_pb2_grpc,
    quota_pb2_grpc,
)
from tests.mesh_fixtures import MeshUnderTest, StartService, start_mesh


@pytest.fixture
async def mesh(start_service: StartService, redis_url: str) -> MeshUnderTest:
    return await start_mesh(start_service, redis_url)


class Stubs:
    def __init__(self, mesh: MeshUnderTest) -> None:
        self.channels = [grpc.aio.insecure_channel(addr) for addr in mesh.addresses.values()]
        by_name = dict(zip(mesh.addresses, self.channels, strict=True))
        self.broker = broker_pb2_grpc.BrokerServiceStub(by_name["broker"])
        self.inventory = inventory_pb2_grpc.InventoryServiceStub(by_name["inventory"])
        self.quota = quota_pb2_grpc.QuotaServiceStub(by_name["quota"])
        self.accounting = accounting_pb2_grpc.AccountingServiceStub(by_name["accounting"])

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()


@pytest.fixture
async def stubs(mesh: MeshUnderTest) -> AsyncIterator[Stubs]:
    s = Stubs(mesh)
    yield s
    await s.close()
