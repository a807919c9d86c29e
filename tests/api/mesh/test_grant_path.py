"""The grant path end to end, through the four real servers on loopback."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from slicebroker.runtime.status import from_rpc_error
from slicebroker.v1 import accounting_pb2, broker_pb2, inventory_pb2, quota_pb2
from tests.api.mesh.conftest import Stubs

H100 = "H100-SXM-80GB"


def request(project: str = "uni-a-llm", count: int = 1, lease_s: float = 600, key: str = "", sku: str = H100):
    lease = Duration()
    lease.FromMilliseconds(int(lease_s * 1000))
    return broker_pb2.RequestGrantRequest(project=project, sku=sku, count=count, lease=lease, idempotency_key=key)


async def held_devices(stubs: Stubs) -> dict[str, str]:
    response = await stubs.inventory.ListNodes(inventory_pb2.ListNodesRequest(page_size=1000))
    return {d.id: d.holder for n in response.nodes for d in n.devices if d.holder}


async def in_use(stubs: Stubs, project: str, sku: str = H100) -> int:
    p = await stubs.quota.GetProject(quota_pb2.GetProjectRequest(id=project))
    return p.devices_in_use.get(sku, 0)


async def eventually(check, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.05)


async def usage_rows(stubs: Stubs, project: str):
    return (await stubs.accounting.GetUsage(accounting_pb2.GetUsageRequest(project=project))).rows


async def test_grant_holds_devices_and_quota_then_release_frees_them(stubs: Stubs) -> None:
    grant = await stubs.broker.RequestGrant(request(count=4, key="k1"))
    assert grant.state == broker_pb2.GRANT_STATE_ACTIVE
    assert grant.institution == "uni-a"
    assert len(grant.slices) == 4
    assert len({s.node_id for s in grant.slices}) == 1, "best fit keeps a 4-device request on one node"
    assert set((await held_devices(stubs)).values()) == {grant.id}
    assert await in_use(stubs, "uni-a-llm") == 4

    released = await stubs.broker.ReleaseGrant(broker_pb2.ReleaseGrantRequest(id=grant.id))
    assert released.state == broker_pb2.GRANT_STATE_ENDED
    assert released.end_reason == "released"
    assert await held_devices(stubs) == {}
    assert await in_use(stubs, "uni-a-llm") == 0
    # Releasing again changes nothing.
    again = await stubs.broker.ReleaseGrant(broker_pb2.ReleaseGrantRequest(id=grant.id))
    assert again.ended_at == released.ended_at

    async def closed():
        rows = await usage_rows(stubs, "uni-a-llm")
        return rows and rows[0].grants == 1 and rows[0].running_grants == 0

    assert await eventually(closed), "the relay delivered both events to accounting"
    rows = await usage_rows(stubs, "uni-a-llm")
    assert rows[0].institution == "uni-a" and rows[0].sku == H100
    assert rows[0].device_seconds == pytest.approx(
        4 * (released.ended_at.ToMilliseconds() - grant.expires_at.ToMilliseconds() + 600_000) / 1000, abs=0.5
    )


async def test_200_concurrent_requests_on_64_devices_grant_exactly_64(stubs: Stubs) -> None:
    projects = ["uni-a-llm", "uni-a-vision", "lab-b-bio", "lab-b-chem"]  # caps of 20 each: 80 > 64

    async def one(i: int):
        try:
            return await stubs.broker.RequestGrant(request(project=projects[i % 4], key=f"c{i}"))
        except grpc.aio.AioRpcError as err:
            return err

    results = await asyncio.gather(*(one(i) for i in range(200)))
    grants = [r for r in results if isinstance(r, broker_pb2.Grant)]
    refusals = [r for r in results if not isinstance(r, broker_pb2.Grant)]
    assert len(grants) == 64
    assert all(r.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for r in refusals), {r.code() for r in refusals}
    devices = [s.device_id for g in grants for s in g.slices]
    assert len(devices) == len(set(devices)) == 64, "no device held twice"
    per_project = Counter(g.project for g in grants)
    assert max(per_project.values()) <= 20, per_project
    held = await held_devices(stubs)
    assert len(held) == 64 and set(held.values()) == {g.id for g in grants}
    for project in projects:
        assert await in_use(stubs, project) == per_project[project]


async def test_replayed_idempotency_key_returns_the_same_grant(stubs: Stubs) -> None:
    first = await stubs.broker.RequestGrant(request(count=2, key="same"))
    replays = await asyncio.gather(*(stubs.broker.RequestGrant(request(count=2, key="same")) for _ in range(10)))
    assert {r.id for r in replays} == {first.id}
    listed = await stubs.broker.ListGrants(broker_pb2.ListGrantsRequest(project="uni-a-llm"))
    assert [g.id for g in listed.grants] == [first.id]
    assert len(await held_devices(stubs)) == 2
    assert await in_use(stubs, "uni-a-llm") == 2


async def test_concurrent_first_requests_with_one_key_make_one_grant(stubs: Stubs) -> None:
    results = await asyncio.gather(*(stubs.broker.RequestGrant(request(count=3, key="race")) for _ in range(20)))
    assert len({r.id for r in results}) == 1
    assert len(await held_devices(stubs)) == 3


async def test_key_reused_for_a_different_request_is_refused(stubs: Stubs) -> None:
    await stubs.broker.RequestGrant(request(count=1, key="k"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.broker.RequestGrant(request(count=2, key="k"))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert from_rpc_error(info.value).reason == "IDEMPOTENCY_KEY_REUSED"


async def test_expired_lease_is_reclaimed_and_recorded_once(stubs: Stubs) -> None:
    grant = await stubs.broker.RequestGrant(request(count=2, lease_s=0.3))

    async def ended():
        g = await stubs.broker.GetGrant(broker_pb2.GetGrantRequest(id=grant.id))
        return g if g.state == broker_pb2.GRANT_STATE_ENDED else None

    done = await eventually(ended)
    assert done, "the reaper ended the grant"
    assert done.end_reason == "expired"
    assert await held_devices(stubs) == {}
    assert await in_use(stubs, "uni-a-llm") == 0

    async def recorded():
        rows = await usage_rows(stubs, "uni-a-llm")
        return rows and rows[0].grants == 1

    assert await eventually(recorded)
    await asyncio.sleep(0.3)  # a second ENDED would have arrived by now
    rows = await usage_rows(stubs, "uni-a-llm")
    assert rows[0].grants == 1 and rows[0].running_grants == 0
    lifetime_s = (done.ended_at.ToMilliseconds() - done.created_at.ToMilliseconds()) / 1000
    assert 0 < rows[0].device_seconds <= 2 * lifetime_s


async def test_renew_extends_the_lease(stubs: Stubs) -> None:
    grant = await stubs.broker.RequestGrant(request(lease_s=0.5))
    lease = Duration(seconds=60)
    renewed = await stubs.broker.RenewGrant(broker_pb2.RenewGrantRequest(id=grant.id, lease=lease))
    assert renewed.expires_at.ToMilliseconds() > grant.expires_at.ToMilliseconds() + 50_000
    await asyncio.sleep(0.8)
    still = await stubs.broker.GetGrant(broker_pb2.GetGrantRequest(id=grant.id))
    assert still.state == broker_pb2.GRANT_STATE_ACTIVE


async def test_over_quota_is_refused_with_the_limit_and_holds_nothing(stubs: Stubs) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.broker.RequestGrant(request(project="lab-b-bio", count=21))
    err = from_rpc_error(info.value)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.reason == "QUOTA_EXCEEDED"
    assert err.metadata["limit"] == "20"
    assert await held_devices(stubs) == {}
    assert (await stubs.broker.ListGrants(broker_pb2.ListGrantsRequest())).grants == []


async def test_more_than_the_facility_has_is_insufficient_capacity(stubs: Stubs) -> None:
    # The project may hold 32 RNGD; the facility has 16.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.broker.RequestGrant(request(sku="RNGD", count=17))
    err = from_rpc_error(info.value)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.reason == "INSUFFICIENT_CAPACITY"
    assert err.metadata["free"] == "16"
    assert await in_use(stubs, "uni-a-llm", "RNGD") == 0, "the reservation was cancelled"
    grant = await stubs.broker.RequestGrant(request(sku="RNGD", count=16))
    assert len({s.node_id for s in grant.slices}) == 2


BAD_REQUESTS = [
    ("sku", dict(sku="H900")),
    ("sku", dict(sku="")),
    ("count", dict(count=0)),
    ("count", dict(count=-3)),
    ("count", dict(count=1_000_000)),
    ("project", dict(project="")),
    ("project", dict(project="Not A Name!")),
    ("lease", dict(lease_s=-5)),
    ("lease", dict(lease_s=0)),
    ("idempotency_key", dict(key="spaces are not allowed")),
]


@pytest.mark.parametrize(("field", "kwargs"), BAD_REQUESTS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_REQUESTS)])
async def test_bad_request_is_invalid_argument_naming_the_field_and_changes_nothing(
    stubs: Stubs, field: str, kwargs: dict
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.broker.RequestGrant(request(**kwargs))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = from_rpc_error(info.value)
    assert err.metadata["field"] == field
    assert field in info.value.details()
    assert (await stubs.broker.ListGrants(broker_pb2.ListGrantsRequest())).grants == []
    assert await held_devices(stubs) == {}


@pytest.mark.parametrize("bad_id", ["", "gr_short", "not-a-grant", "gr_" + "u" * 26, "gr_" + "0" * 27])
async def test_malformed_grant_ids_are_invalid_argument(stubs: Stubs, bad_id: str) -> None:
    for call in (
        stubs.broker.GetGrant(broker_pb2.GetGrantRequest(id=bad_id)),
        stubs.broker.ReleaseGrant(broker_pb2.ReleaseGrantRequest(id=bad_id)),
        stubs.broker.RenewGrant(broker_pb2.RenewGrantRequest(id=bad_id, lease=Duration(seconds=5))),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert from_rpc_error(info.value).metadata["field"] == "id"


async def test_unknown_grant_is_not_found(stubs: Stubs) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.broker.GetGrant(broker_pb2.GetGrantRequest(id="gr_" + "0" * 26))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert from_rpc_error(info.value).reason == "GRANT_NOT_FOUND"


async def test_list_grants_pages_newest_first(stubs: Stubs) -> None:
    ids = [(await stubs.broker.RequestGrant(request(key=f"p{i}"))).id for i in range(5)]
    seen: list[str] = []
    token = ""
    while True:
        page = await stubs.broker.ListGrants(broker_pb2.ListGrantsRequest(page_size=2, page_token=token))
        seen += [g.id for g in page.grants]
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(ids))
    active = await stubs.broker.ListGrants(broker_pb2.ListGrantsRequest(state=broker_pb2.GRANT_STATE_ENDED))
    assert active.grants == []
