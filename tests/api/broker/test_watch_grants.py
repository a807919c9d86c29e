"""WatchGrants against the real servers: a snapshot, then every change in order; resuming by
revision (across a broker restart) misses nothing and repeats nothing; a reader trimmed past
starts over with a snapshot; tenants see only their own grants."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf.duration_pb2 import Duration

from slicebroker.core.errors import InvalidArgument
from slicebroker.runtime.status import from_rpc_error
from slicebroker.v1 import broker_pb2, broker_pb2_grpc
from tests.api.broker.conftest import RestartBroker
from tests.api.mesh.conftest import Stubs
from tests.security.secure_mesh import SecureMesh, start_secure_mesh

H100 = "H100-SXM-80GB"
T = broker_pb2
CHANGES = "{sb:broker}:changes"


def ask(project: str, count: int, **extra: Any) -> broker_pb2.RequestGrantRequest:
    return broker_pb2.RequestGrantRequest(project=project, sku=H100, count=count, lease=Duration(seconds=600), **extra)


class Reader:
    """One WatchGrants stream, read with a deadline per message."""

    def __init__(self, stub: broker_pb2_grpc.BrokerServiceStub, metadata: Any = (), **request: Any) -> None:
        self.call = stub.WatchGrants(broker_pb2.WatchGrantsRequest(**request), metadata=metadata)

    async def next(self, timeout_s: float = 15) -> broker_pb2.GrantChange:
        message = await asyncio.wait_for(self.call.read(), timeout_s)
        assert message is not grpc.aio.EOF
        return message

    async def snapshot(self) -> tuple[list[broker_pb2.Grant], str]:
        first = await self.next()
        assert first.type == T.GRANT_CHANGE_TYPE_SNAPSHOT_BEGIN
        grants = []
        while (change := await self.next()).type == T.GRANT_CHANGE_TYPE_SNAPSHOT:
            grants.append(change.grant)
        assert change.type == T.GRANT_CHANGE_TYPE_SNAPSHOT_END and change.revision
        return grants, change.revision

    async def quiet(self, timeout_s: float = 0.5) -> bool:
        """True when nothing arrives within `timeout_s`."""
        try:
            await asyncio.wait_for(asyncio.shield(self._peek()), timeout_s)
        except TimeoutError:
            return True
        return False

    async def _peek(self) -> None:
        self.peeked = await self.call.read()

    def cancel(self) -> None:
        self.call.cancel()


async def test_a_snapshot_of_live_grants_then_every_change_in_order(stubs: Stubs) -> None:
    a = await stubs.broker.RequestGrant(ask("uni-a-llm", 2))
    b = await stubs.broker.RequestGrant(ask("lab-b-bio", 3))
    released = await stubs.broker.RequestGrant(ask("lab-b-chem", 1))
    await stubs.broker.ReleaseGrant(T.ReleaseGrantRequest(id=released.id))
    reader = Reader(stubs.broker)
    live, revision = await reader.snapshot()
    assert {g.id: g.state for g in live} == {a.id: T.GRANT_STATE_ACTIVE, b.id: T.GRANT_STATE_ACTIVE}

    await stubs.broker.RenewGrant(T.RenewGrantRequest(id=a.id, lease=Duration(seconds=900)))
    await stubs.broker.ReleaseGrant(T.ReleaseGrantRequest(id=b.id))
    c = await stubs.broker.RequestGrant(ask("uni-a-vision", 1))
    seen = [await reader.next() for _ in range(3)]
    assert [(s.type, s.grant.id) for s in seen] == [
        (T.GRANT_CHANGE_TYPE_RENEWED, a.id),
        (T.GRANT_CHANGE_TYPE_RELEASED, b.id),
        (T.GRANT_CHANGE_TYPE_GRANTED, c.id),
    ]
    assert seen[0].grant.expires_at.ToMilliseconds() > a.expires_at.ToMilliseconds()
    assert seen[1].grant.state == T.GRANT_STATE_ENDED and seen[1].grant.end_reason == "released"
    revisions = [revision, *(s.revision for s in seen)]
    assert (
        revisions == sorted(revisions, key=lambda r: tuple(int(p) for p in r.split("-"))) and len(set(revisions)) == 4
    )
    reader.cancel()


async def test_one_grant_or_one_project(stubs: Stubs) -> None:
    mine = await stubs.broker.RequestGrant(ask("uni-a-llm", 1))
    by_grant = Reader(stubs.broker, grant_id=mine.id)
    by_project = Reader(stubs.broker, project="lab-b-bio")
    assert [g.id for g in (await by_grant.snapshot())[0]] == [mine.id]
    assert (await by_project.snapshot())[0] == []
    other = await stubs.broker.RequestGrant(ask("lab-b-bio", 1))
    await stubs.broker.ReleaseGrant(T.ReleaseGrantRequest(id=mine.id))
    assert (await by_grant.next()).type == T.GRANT_CHANGE_TYPE_RELEASED
    got = await by_project.next()
    assert (got.type, got.grant.id) == (T.GRANT_CHANGE_TYPE_GRANTED, other.id)
    assert await by_project.quiet(), "the release of another project's grant is not sent"
    by_grant.cancel()
    by_project.cancel()


async def test_queued_then_granted_when_room_appears(stubs: Stubs) -> None:
    held = [
        await stubs.broker.RequestGrant(ask(p, 16)) for p in ("uni-a-llm", "uni-a-vision", "lab-b-bio", "lab-b-chem")
    ]
    reader = Reader(stubs.broker, project="uni-a-llm")
    await reader.snapshot()
    queued = await stubs.broker.RequestGrant(ask("uni-a-llm", 2, queue=True))
    change = await reader.next()
    assert (change.type, change.grant.id, change.grant.state) == (
        T.GRANT_CHANGE_TYPE_QUEUED,
        queued.id,
        T.GRANT_STATE_QUEUED,
    )
    await asyncio.sleep(2.5)  # dispatch passes put it back in the queue: no further change
    await stubs.broker.ReleaseGrant(T.ReleaseGrantRequest(id=held[2].id))
    granted = await reader.next()
    assert (granted.type, granted.grant.id, len(granted.grant.slices)) == (T.GRANT_CHANGE_TYPE_GRANTED, queued.id, 2)
    reader.cancel()


async def test_resume_after_a_broker_restart_misses_nothing_and_repeats_nothing(
    stubs: Stubs, restart_broker: RestartBroker, redis_client: aioredis.Redis
) -> None:
    broker = stubs.broker
    stop = asyncio.Event()

    async def load() -> None:
        n = 0
        while not stop.is_set():
            with contextlib.suppress(grpc.aio.AioRpcError):
                g = await broker.RequestGrant(ask(("uni-a-llm", "lab-b-bio")[n % 2], 1), timeout=5)
                await broker.RenewGrant(T.RenewGrantRequest(id=g.id, lease=Duration(seconds=60)), timeout=5)
                await broker.ReleaseGrant(T.ReleaseGrantRequest(id=g.id), timeout=5)
            n += 1

    task = asyncio.create_task(load())
    reader = Reader(broker)
    _, start = await reader.snapshot()
    applied: list[str] = []
    for _ in range(20):
        applied.append((await reader.next()).revision)
    # The broker goes away mid-load (the open stream ends, it does not hang) and another takes
    # over; the reader resumes where it was.
    broker = await restart_broker()
    with pytest.raises(grpc.aio.AioRpcError):
        while True:
            await reader.next()
    await asyncio.sleep(0.5)
    reader = Reader(broker, from_revision=applied[-1])
    first = await reader.next()
    assert first.type != T.GRANT_CHANGE_TYPE_SNAPSHOT_BEGIN
    applied.append(first.revision)
    while len(applied) < 60:
        applied.append((await reader.next()).revision)
    stop.set()
    await task
    reader.cancel()
    truth = [entry_id for entry_id, _ in await redis_client.xrange(CHANGES, f"({start}", applied[-1])]
    assert applied == truth
    assert len(set(applied)) == len(applied)


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"from_revision": "yesterday"}, "from_revision"),
        ({"from_revision": "17-"}, "from_revision"),
        ({"grant_id": "not a grant"}, "grant_id"),
        ({"project": "no such/project"}, "project"),
    ],
)
async def test_bad_input_is_refused_naming_the_field(stubs: Stubs, request_fields: dict[str, str], field: str) -> None:
    reader = Reader(stubs.broker, **request_fields)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await reader.next()
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = from_rpc_error(info.value)
    assert isinstance(err, InvalidArgument) and err.field == field


@pytest.fixture
async def secure(start_service: Any, redis_url: str, tmp_path: Path) -> SecureMesh:
    return await start_secure_mesh(start_service, redis_url, tmp_path)


async def test_tenants_watch_only_their_own_grants(secure: SecureMesh) -> None:
    async with secure.channel("broker") as channel:
        broker = broker_pb2_grpc.BrokerServiceStub(channel)
        theirs = await broker.RequestGrant(ask("lab-b-bio", 1), metadata=secure.md("admin"))
        # Another institution's project, or one of its grants: refused.
        for request in ({"project": "lab-b-bio"}, {"grant_id": theirs.id}):
            reader = Reader(broker, secure.md("uni-a"), **request)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await reader.next()
            assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # A project member: not even its own institution's other projects.
        reader = Reader(broker, secure.md("uni-a-llm"), project="uni-a-vision")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await reader.next()
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # Watching everything it may see: its own grants only, in the snapshot and after it.
        mine = await broker.RequestGrant(ask("uni-a-llm", 1), metadata=secure.md("uni-a-llm"))
        reader = Reader(broker, secure.md("uni-a"))
        live, _ = await reader.snapshot()
        assert [g.id for g in live] == [mine.id]
        admin = Reader(broker, secure.md("admin"))
        assert {g.id for g in (await admin.snapshot())[0]} == {mine.id, theirs.id}
        await broker.ReleaseGrant(T.ReleaseGrantRequest(id=theirs.id), metadata=secure.md("lab-b"))
        await broker.ReleaseGrant(T.ReleaseGrantRequest(id=mine.id), metadata=secure.md("uni-a"))
        got = await reader.next()
        assert (got.type, got.grant.id) == (T.GRANT_CHANGE_TYPE_RELEASED, mine.id)
        assert [(await admin.next()).grant.id for _ in range(2)] == [theirs.id, mine.id]
        reader.cancel()
        admin.cancel()
