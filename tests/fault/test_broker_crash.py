"""Kill the broker between claim and commit; after a restart nothing is leaked.

The mesh runs as real processes. The broker is started with the 'after-claim' failpoint, so it
exits (as if killed) the moment inventory and quota both hold the grant, before the commit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from slicebroker.mesh.launcher import Mesh
from slicebroker.v1 import (
    broker_pb2,
    broker_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
    quota_pb2,
    quota_pb2_grpc,
)
from tests.mesh_fixtures import load_small_demo

pytestmark = pytest.mark.slow


@pytest.fixture
def mesh(tmp_path: Path, redis_url: str) -> Iterator[Mesh]:
    fast_repair = {
        "SLICEBROKER_BROKER_REPAIR_GRACE_S": "1",
        "SLICEBROKER_BROKER_RECONCILE_INTERVAL_S": "0.2",
        "SLICEBROKER_BROKER_LEADER_TTL_S": "1",
    }
    m = Mesh(run_dir=tmp_path / "run", redis_url=redis_url, extra_env={"broker": fast_repair})
    m.start()
    try:
        m.wait_serving()
        yield m
    finally:
        m.stop()


async def test_broker_killed_between_claim_and_commit_leaks_nothing(mesh: Mesh) -> None:
    md = mesh.metadata
    await load_small_demo(mesh.aio_channel, md)

    # 1. Restart the broker with the failpoint armed, and ask for a grant: it dies mid-way.
    mesh.kill("broker")
    mesh.start_service("broker", env={"SLICEBROKER_BROKER_FAILPOINT": "after-claim"})
    mesh.wait_serving(("broker",))
    request = broker_pb2.RequestGrantRequest(
        project="uni-a-llm",
        sku="H100-SXM-80GB",
        count=3,
        lease=Duration(seconds=600),
        idempotency_key="crash-1",
    )
    async with mesh.aio_channel("broker") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await broker_pb2_grpc.BrokerServiceStub(channel).RequestGrant(request, metadata=md, timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert mesh.processes["broker"].wait(timeout=10) == 137

    async with (
        mesh.aio_channel("inventory") as inv_ch,
        mesh.aio_channel("quota") as quota_ch,
    ):
        inventory = inventory_pb2_grpc.InventoryServiceStub(inv_ch)
        quota = quota_pb2_grpc.QuotaServiceStub(quota_ch)

        async def leaked() -> tuple[int, int]:
            holders = await inventory.ListHolders(inventory_pb2.ListHoldersRequest(), metadata=md)
            held = await quota.ListReservations(quota_pb2.ListReservationsRequest(), metadata=md)
            return len(holders.grant_ids), len(held.reservations)

        # The crash left the claim and the reservation behind.
        assert await leaked() == (1, 1)

        # 2. Restart the broker normally: the reconciler fails the stuck grant and returns everything.
        mesh.start_service("broker")
        mesh.wait_serving(("broker",))
        deadline = time.monotonic() + 20
        while await leaked() != (0, 0) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert await leaked() == (0, 0)
        project = await quota.GetProject(quota_pb2.GetProjectRequest(id="uni-a-llm"), metadata=md)
        assert project.devices_in_use.get("H100-SXM-80GB", 0) == 0

    async with mesh.aio_channel("broker") as channel:
        broker = broker_pb2_grpc.BrokerServiceStub(channel)
        failed = await broker.ListGrants(broker_pb2.ListGrantsRequest(project="uni-a-llm"), metadata=md)
        assert [g.state for g in failed.grants] == [broker_pb2.GRANT_STATE_FAILED]
        # 3. The client's retry with the same key is a fresh attempt, and succeeds.
        grant = await broker.RequestGrant(request, metadata=md, timeout=10)
        assert grant.state == broker_pb2.GRANT_STATE_ACTIVE
        assert grant.id != failed.grants[0].id
