"""The accounting server driven through its generated stub: usage queries, refusals, replays."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from slicebroker.accounting.main import build
from slicebroker.accounting.settings import AccountingSettings
from slicebroker.core.errors import InvalidArgument
from slicebroker.core.ids import new_grant_id
from slicebroker.core.reasons import Reason
from slicebroker.runtime.status import from_rpc_error
from slicebroker.v1 import accounting_pb2, accounting_pb2_grpc, common_pb2

H100 = "H100-SXM-80GB"
GRANTED, ENDED = common_pb2.GRANT_EVENT_TYPE_GRANTED, common_pb2.GRANT_EVENT_TYPE_ENDED


@pytest.fixture
async def stub(redis_url: str, start_service: Any) -> AsyncIterator[Any]:
    settings = AccountingSettings(redis_url=redis_url, listen="127.0.0.1:0")
    running = await start_service(build, settings)
    async with grpc.aio.insecure_channel(running.address) as channel:
        yield accounting_pb2_grpc.AccountingServiceStub(channel)


def ts(ms: int) -> Timestamp:
    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def event(gid: str, kind: int, at_ms: int, **fields: Any) -> Any:
    values: dict[str, Any] = {
        "event_id": f"{gid}:{'granted' if kind == GRANTED else 'ended'}",
        "grant_id": gid,
        "type": kind,
        "institution": "kaist",
        "project": "llm",
        "sku": H100,
        "count": 8,
        "at": ts(at_ms),
        "reason": "" if kind == GRANTED else "released",
        **fields,
    }
    return common_pb2.GrantEvent(**values)


async def ingest(stub: Any, *events: Any) -> tuple[int, int]:
    reply = await stub.IngestEvents(accounting_pb2.IngestEventsRequest(events=list(events)), timeout=5)
    return reply.applied, reply.duplicates


async def usage(stub: Any, **filters: str) -> Any:
    return await stub.GetUsage(accounting_pb2.GetUsageRequest(**filters), timeout=5)


async def test_usage_shows_closed_and_running_grants(stub: Any) -> None:
    now = int(time.time() * 1000)
    closed, running = new_grant_id(), new_grant_id()
    assert await ingest(
        stub,
        event(closed, GRANTED, now - 60_000, count=4),
        event(closed, ENDED, now - 30_000, count=4),
        event(running, GRANTED, now - 10_000, count=2),
    ) == (3, 0)

    reply = await usage(stub)
    as_of = reply.as_of.seconds * 1000 + reply.as_of.nanos // 1_000_000
    assert now <= as_of <= int(time.time() * 1000)
    (row,) = reply.rows
    assert (row.institution, row.project, row.sku) == ("kaist", "llm", H100)
    assert (row.device_seconds, row.grants, row.running_grants) == (120.0, 1, 1)
    assert row.running_device_seconds == pytest.approx(2 * (as_of - (now - 10_000)) / 1000)


async def test_usage_filters_by_institution_project_and_sku(stub: Any) -> None:
    now = int(time.time() * 1000)
    events = []
    for inst, proj, sku in [("kaist", "llm", H100), ("kaist", "vision", "RNGD"), ("snu", "llm", H100)]:
        gid = new_grant_id()
        events += [
            event(gid, GRANTED, now - 2_000, institution=inst, project=proj, sku=sku, count=1),
            event(gid, ENDED, now - 1_000, institution=inst, project=proj, sku=sku, count=1),
        ]
    await ingest(stub, *events)

    def names(reply: Any) -> list[tuple[str, str, str]]:
        return [(r.institution, r.project, r.sku) for r in reply.rows]

    assert names(await usage(stub)) == [
        ("kaist", "llm", H100),
        ("kaist", "vision", "RNGD"),
        ("snu", "llm", H100),
    ]
    assert names(await usage(stub, institution="kaist")) == [
        ("kaist", "llm", H100),
        ("kaist", "vision", "RNGD"),
    ]
    assert names(await usage(stub, project="llm", sku=H100)) == [("kaist", "llm", H100), ("snu", "llm", H100)]
    assert names(await usage(stub, institution="kaist", project="vision", sku="RNGD")) == [("kaist", "vision", "RNGD")]
    assert names(await usage(stub, institution="postech")) == []
    assert all(r.device_seconds == 1.0 for r in (await usage(stub)).rows)


async def test_a_replayed_batch_is_counted_as_duplicates_and_changes_nothing(stub: Any) -> None:
    now = int(time.time() * 1000)
    gid = new_grant_id()
    batch = [event(gid, GRANTED, now - 5_000), event(gid, ENDED, now - 2_500)]
    assert await ingest(stub, *batch) == (2, 0)
    before = (await usage(stub)).rows
    assert await ingest(stub, *batch) == (0, 2)
    racing_expiry = event(gid, ENDED, now, event_id=f"{gid}:expired", reason="expired")
    assert await ingest(stub, racing_expiry) == (0, 1)
    assert (await usage(stub)).rows == before
    assert before[0].device_seconds == 20.0


async def test_an_end_before_its_grant_closes_the_grant_when_it_arrives(stub: Any) -> None:
    now = int(time.time() * 1000)
    gid = new_grant_id()
    assert await ingest(stub, event(gid, ENDED, now - 1_000, count=3)) == (1, 0)
    assert list((await usage(stub)).rows) == []
    assert await ingest(stub, event(gid, GRANTED, now - 4_000, count=3)) == (1, 0)
    (row,) = (await usage(stub)).rows
    assert (row.device_seconds, row.grants, row.running_grants) == (9.0, 1, 0)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"event_id": ""}, "event_id"),
        ({"grant_id": "not-a-grant"}, "grant_id"),
        ({"type": common_pb2.GRANT_EVENT_TYPE_UNSPECIFIED}, "type"),
        ({"institution": "Bad Name"}, "institution"),
        ({"project": ""}, "project"),
        ({"sku": ""}, "sku"),
        ({"count": 0}, "count"),
        ({"at": None}, "at"),
    ],
)
async def test_a_bad_event_refuses_the_whole_batch_naming_the_field(
    stub: Any, changes: dict[str, Any], field: str
) -> None:
    now = int(time.time() * 1000)
    good = [event(new_grant_id(), GRANTED, now - 1_000) for _ in range(4)]
    bad = event(new_grant_id(), GRANTED, now - 1_000, **changes)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await ingest(stub, *good, bad)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = from_rpc_error(exc.value)
    assert isinstance(err, InvalidArgument)
    assert (err.reason, err.field) == (Reason.INVALID_FIELD, f"events[4].{field}")
    status = rpc_status.from_call(exc.value)
    assert status is not None
    violations = [
        v.field
        for detail in status.details
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR)
        for v in _unpack_bad_request(detail).field_violations
    ]
    assert violations == [f"events[4].{field}"]
    # Nothing was written: no usage, and the four good events are still new.
    assert list((await usage(stub)).rows) == []
    assert await ingest(stub, *good) == (4, 0)


@pytest.mark.parametrize(
    ("filters", "field"),
    [({"institution": "KAIST"}, "institution"), ({"project": "a|b"}, "project"), ({"sku": "a b"}, "sku")],
)
async def test_a_bad_usage_filter_is_refused_naming_the_field(stub: Any, filters: dict[str, str], field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await usage(stub, **filters)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = from_rpc_error(exc.value)
    assert isinstance(err, InvalidArgument) and err.field == field


async def test_an_empty_batch_is_answered_with_zeros(stub: Any) -> None:
    assert await ingest(stub) == (0, 0)


def _unpack_bad_request(detail: Any) -> Any:
    bad_request = error_details_pb2.BadRequest()
    detail.Unpack(bad_request)
    return bad_request
