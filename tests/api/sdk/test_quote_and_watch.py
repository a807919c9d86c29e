"""`quote()`, `watch()` and host resources through the SDK against the real mesh (separate processes,
mTLS, tokens): a quote prices and places without submitting, a watch sees every change once, and
keeps going — resuming from its last revision — across a broker restart."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from slicebroker.client import (
    AsyncClient,
    Client,
    ClientOptions,
    GrantChange,
    GrantChangeType,
    HostResources,
    InvalidArgumentError,
    Quote,
)
from slicebroker.mesh.launcher import Mesh
from slicebroker.v1 import accounting_pb2, accounting_pb2_grpc
from tests.api.accounting.test_billing_api import BOOK

H100 = "H100-SXM-80GB"


@pytest.fixture(scope="module")
def priced(mesh: Mesh) -> Mesh:
    with mesh.channel("accounting") as channel:
        stub = accounting_pb2_grpc.AccountingServiceStub(channel)
        stub.PublishPriceBook(accounting_pb2.PublishPriceBookRequest(book=BOOK), metadata=mesh.metadata, timeout=10)
    return mesh


def test_a_quote_is_typed_priced_and_submits_nothing(priced: Mesh, options: ClientOptions) -> None:
    with Client(options) as sb:
        before = {c.sku: c.free for c in sb.capacity()}[H100]
        quote = sb.quote("snu-llm", H100, count=2, lease="3h")
        assert isinstance(quote, Quote)
        assert (quote.sku, quote.count, quote.currency) == (H100, 2, "KRW")
        assert quote.cost == pytest.approx(2 * 3 * quote.cost_per_hour / 2)
        assert quote.available_now and not quote.refused and quote.estimated_start is not None
        assert {c.sku: c.free for c in sb.capacity()}[H100] == before
        over = sb.quote("snu-llm", H100, count=65, lease="1h")
        assert over.refused and over.refusal_reason == "QUOTA_EXCEEDED" and over.refusal_message


def test_quote_refuses_bad_input_like_request_grant(options: ClientOptions) -> None:
    with Client(options) as sb, pytest.raises(InvalidArgumentError) as bad:
        sb.quote("snu-llm", H100, count=0)
    assert bad.value.field == "count"


def test_host_resources_per_slice_are_granted_and_reported(options: ClientOptions) -> None:
    with Client(options) as sb:
        host = HostResources.of(cpu=8, memory="64Gi")
        grant = sb.request_grant("snu-llm", H100, count=2, lease="10m", host=host)
        try:
            assert grant.host_per_slice == HostResources(8_000, 65_536)
            assert sb.get_grant(grant.id).host_per_slice == host
            # 64 cores per node: 9 slices of 8 cores never fit on one node.
            quote = sb.quote("snu-llm", H100, count=9, lease="10m", placement="same-node", host=host)
            assert not quote.available_now
        finally:
            sb.release_grant(grant.id)


def _collect(it: Iterator[GrantChange], into: list[GrantChange], stop: threading.Event) -> None:
    for change in it:
        into.append(change)
        if stop.is_set():
            return


def _wait_for(changes: list[GrantChange], what: tuple[GrantChangeType, str], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any((c.type, c.grant.id if c.grant else "") == what for c in changes):
            return
        time.sleep(0.05)
    raise AssertionError(f"no {what} among {[(c.type, c.grant.id if c.grant else '') for c in changes]}")


def test_watch_sees_every_change_once_across_a_broker_restart(mesh: Mesh, options: ClientOptions) -> None:
    changes: list[GrantChange] = []
    stop = threading.Event()
    with Client(options) as sb, Client(options) as watcher:
        stream = watcher.watch(project="kaist-vision")
        reader = threading.Thread(target=_collect, args=(stream, changes, stop), daemon=True)
        reader.start()
        first = sb.request_grant("kaist-vision", H100, 1, lease="10m")
        _wait_for(changes, (GrantChangeType.GRANTED, first.id))
        assert changes[0].type is GrantChangeType.SNAPSHOT_BEGIN
        assert any(c.type is GrantChangeType.SNAPSHOT_END for c in changes)

        mesh.kill("broker")
        mesh.start_service("broker")
        mesh.wait_serving(("broker",))
        seen_before = len(changes)

        sb.release_grant(first.id)
        second = sb.request_grant("kaist-vision", H100, 1, lease="10m")
        sb.release_grant(second.id)
        _wait_for(changes, (GrantChangeType.RELEASED, second.id))
        stop.set()
        sb.request_grant("kaist-vision", H100, 1, lease="1s")  # one more change lets the reader stop
        reader.join(timeout=10)

    after = [(c.type, c.grant.id if c.grant else "") for c in changes[seen_before:]]
    # Resumed from its revision: no second snapshot, nothing repeated, nothing missed.
    assert GrantChangeType.SNAPSHOT_BEGIN not in [t for t, _ in after]
    assert after[:3] == [
        (GrantChangeType.RELEASED, first.id),
        (GrantChangeType.GRANTED, second.id),
        (GrantChangeType.RELEASED, second.id),
    ]
    revisions = [c.revision for c in changes if c.revision]
    assert len(revisions) == len(set(revisions))


def test_async_watch_of_one_grant(options: ClientOptions) -> None:
    async def scenario() -> list[GrantChangeType]:
        async with AsyncClient(options) as sb:
            grant = await sb.request_grant("kaist-vision", H100, 1, lease="10m")
            seen: list[GrantChangeType] = []
            stream = sb.watch(grant_id=grant.id)
            async for change in stream:
                seen.append(change.type)
                if change.type is GrantChangeType.SNAPSHOT_END:
                    await sb.renew_grant(grant.id, "20m")
                elif change.type is GrantChangeType.RENEWED:
                    await sb.release_grant(grant.id)
                elif change.type is GrantChangeType.RELEASED:
                    break
            return seen

    seen = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert seen == [
        GrantChangeType.SNAPSHOT_BEGIN,
        GrantChangeType.SNAPSHOT,
        GrantChangeType.SNAPSHOT_END,
        GrantChangeType.RENEWED,
        GrantChangeType.RELEASED,
    ]
