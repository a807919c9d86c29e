"""A WatchGrants reader whose revision was trimmed from the change stream starts over with a
snapshot (the broker here keeps only ~50 changes)."""

from __future__ import annotations

from google.protobuf.duration_pb2 import Duration

from slicebroker.v1 import broker_pb2 as T
from tests.api.broker.test_watch_grants import Reader, ask
from tests.api.mesh.conftest import Stubs

BROKER = {"change_stream_max": 50}


async def test_a_reader_trimmed_past_starts_over_with_a_snapshot(stubs: Stubs) -> None:
    grant = await stubs.broker.RequestGrant(ask("uni-a-llm", 1))
    reader = Reader(stubs.broker)
    _, old = await reader.snapshot()
    reader.cancel()
    for _ in range(300):  # far more than the stream keeps (BROKER["change_stream_max"])
        await stubs.broker.RenewGrant(T.RenewGrantRequest(id=grant.id, lease=Duration(seconds=600)))
    reader = Reader(stubs.broker, from_revision=old)
    live, _ = await reader.snapshot()
    assert [g.id for g in live] == [grant.id]
    await stubs.broker.ReleaseGrant(T.ReleaseGrantRequest(id=grant.id))
    assert (await reader.next()).type == T.GRANT_CHANGE_TYPE_RELEASED
    reader.cancel()
