"""The asyncio client against real grpc.aio servers: the same retries, key replay, pagination and
errors as the blocking client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
import pytest

from slicebroker.client import (
    AsyncClient,
    ClientOptions,
    ConfigurationError,
    GrantState,
    NotFoundError,
    RetryPolicy,
    UnavailableError,
)
from slicebroker.v1 import broker_pb2_grpc
from tests.unit.client.fakemesh import FakeBroker, FakeMesh, Recorder, rich_status

FAST_RETRIES = RetryPolicy(initial_backoff=0.005, max_backoff=0.02)


@pytest.fixture
async def broker() -> AsyncIterator[tuple[str, FakeBroker]]:
    """A broker alone, served by a grpc.aio server in the test's own event loop."""
    server = grpc.aio.server()
    servicer = FakeBroker(Recorder())
    broker_pb2_grpc.add_BrokerServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", servicer
    await server.stop(0)


async def test_unavailable_twice_then_granted_with_the_same_key_three_times(broker: tuple[str, FakeBroker]) -> None:
    address, servicer = broker
    unavailable = rich_status(grpc.StatusCode.UNAVAILABLE, "DEPENDENCY_UNAVAILABLE", "inventory is restarting")
    servicer.rec.fail("RequestGrant", unavailable, unavailable)
    async with AsyncClient(ClientOptions(broker_addr=address, retries=FAST_RETRIES)) as sb:
        grant = await sb.request_grant("snu-llm", "H100-SXM-80GB", count=4, lease=timedelta(minutes=30))
    calls = servicer.rec.calls_of("RequestGrant")
    assert [c.request.idempotency_key for c in calls] == [grant.idempotency_key] * 3
    assert len({c.metadata["x-request-id"] for c in calls}) == 1
    assert len(servicer.grants) == 1
    assert (grant.state, grant.count) == (GrantState.ACTIVE, 4)


async def test_retries_give_up_after_the_last_attempt(broker: tuple[str, FakeBroker]) -> None:
    address, servicer = broker
    servicer.rec.fail("GetGrant", *[rich_status(grpc.StatusCode.UNAVAILABLE, "DEPENDENCY_UNAVAILABLE", "down")] * 3)
    options = ClientOptions(broker_addr=address, retries=RetryPolicy(attempts=3, initial_backoff=0.001))
    async with AsyncClient(options) as sb:
        with pytest.raises(UnavailableError):
            await sb.get_grant("gr_x")
    assert len(servicer.rec.calls_of("GetGrant")) == 3


async def test_async_lists_follow_page_tokens(mesh: FakeMesh) -> None:
    async with AsyncClient.from_env(mesh.env) as sb:
        made = [await sb.request_grant("snu-llm", "RNGD", lease=600) for _ in range(3)]
        listed = [g.id async for g in sb.list_grants(project="snu-llm")]
        nodes = [n.id async for n in sb.nodes(sku="H100-SXM-80GB")]
    assert listed == [g.id for g in reversed(made)]
    assert nodes == ["h100-r01-n01", "h100-r01-n02"]


async def test_async_reads_and_errors(mesh: FakeMesh) -> None:
    async with AsyncClient.from_env({**mesh.env, "SLICEBROKER_TOKEN": "t0k"}) as sb:
        assert [c.sku for c in await sb.capacity()] == ["H100-SXM-80GB", "RNGD"]
        assert len(await sb.skus()) == 2
        assert (await sb.usage(project="snu-llm")).rows[0].grants == 3
        assert [p.id for p in await sb.projects()] == ["snu-llm", "kaist-vision"]
        assert [i.id for i in await sb.institutions()] == ["kaist", "snu"]
        grant = await sb.request_grant("snu-llm", "RNGD")
        assert (await sb.renew_grant(grant.id, "2h")).expires_at is not None
        assert (await sb.release_grant(grant.id)).state is GrantState.ENDED
        with pytest.raises(NotFoundError) as caught:
            await sb.get_grant("gr_nope")
    assert caught.value.reason == "GRANT_NOT_FOUND"
    assert all(c.metadata["authorization"] == "Bearer t0k" for c in mesh.recorder.calls)


async def test_async_missing_address_and_close() -> None:
    sb = AsyncClient(ClientOptions())
    with pytest.raises(ConfigurationError):
        await sb.skus()
    await sb.close()
    await sb.close()  # closing twice is harmless
