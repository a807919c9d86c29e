"""A mesh of the four real servers in this process, with a broker whose settings a test may
override (small preemption notices, a small change stream), and a way to restart that broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest

from slicebroker.broker.main import build as build_broker
from slicebroker.broker.settings import BrokerSettings
from slicebroker.runtime.server import RunningServer
from slicebroker.v1 import broker_pb2_grpc
from tests.api.mesh.conftest import Stubs
from tests.mesh_fixtures import MeshUnderTest, StartService, start_mesh

# Overrides of the broker's settings for the tests of one module: `BROKER = {...}` at its top.
DEFAULT_BROKER: dict[str, Any] = {}


@pytest.fixture
async def mesh(start_service: StartService, redis_url: str, request: pytest.FixtureRequest) -> MeshUnderTest:
    overrides = getattr(request.module, "BROKER", DEFAULT_BROKER)
    return await start_mesh(start_service, redis_url, **overrides)


@pytest.fixture
async def stubs(mesh: MeshUnderTest) -> AsyncIterator[Stubs]:
    s = Stubs(mesh)
    yield s
    await s.close()


RestartBroker = Callable[[], Awaitable[broker_pb2_grpc.BrokerServiceStub]]


@pytest.fixture
async def restart_broker(
    mesh: MeshUnderTest, start_service: StartService, redis_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[RestartBroker]:
    """Stops the mesh's broker and starts another on the same Redis; returns a stub to the new one."""
    channels: list[grpc.aio.Channel] = []

    async def restart() -> broker_pb2_grpc.BrokerServiceStub:
        await mesh.broker.stop(0.2)
        settings = BrokerSettings(
            redis_url=redis_url,
            listen="127.0.0.1:0",
            inventory_addr=mesh.inventory.address,
            quota_addr=mesh.quota.address,
            accounting_addr=mesh.accounting.address,
            **{"reaper_interval_s": 0.05, "relay_interval_s": 0.02, **getattr(request.module, "BROKER", {})},
        )
        running: RunningServer = await start_service(build_broker, settings)
        mesh.broker = running
        channel = grpc.aio.insecure_channel(running.address)
        channels.append(channel)
        return broker_pb2_grpc.BrokerServiceStub(channel)

    yield restart
    for channel in channels:
        await channel.close()
