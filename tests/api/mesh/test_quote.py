"""Quote through the real services: the price from accounting's book, quota's verdict as part of the
answer (never an error), the expected start from the snapshot and the queue — and nothing written."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from slicebroker.runtime.status import from_rpc_error
from slicebroker.v1 import accounting_pb2, broker_pb2, quota_pb2
from tests.api.accounting.test_billing_api import BOOK
from tests.api.mesh.conftest import Stubs

H100 = "H100-SXM-80GB"


def ask(count: int, project: str = "uni-a-llm", hours: float = 2, **extra: object) -> broker_pb2.RequestGrantRequest:
    return broker_pb2.RequestGrantRequest(
        project=project,
        sku=H100,
        count=count,
        lease=Duration(seconds=int(hours * 3600)),
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
async def priced(stubs: Stubs) -> Stubs:
    await stubs.accounting.PublishPriceBook(accounting_pb2.PublishPriceBookRequest(book=BOOK))
    return stubs


async def test_a_quote_prices_the_lease_and_starts_now_when_there_is_room(priced: Stubs) -> None:
    quote = await priced.broker.Quote(ask(4, hours=2))
    assert (quote.sku, quote.count) == (H100, 4)
    # The book's current academic H100 price is 2500 an hour per device.
    assert (quote.currency, quote.price_tier, quote.price_book_version) == ("KRW", "academic", 1)
    assert (quote.cost_per_hour, quote.cost) == (4 * 2500, 4 * 2 * 2500)
    assert quote.accelerator_hours == pytest.approx(8)
    assert quote.available_now and quote.HasField("estimated_start")
    assert not quote.refusal_reason and quote.queue_position == 0


async def test_a_quote_writes_nothing(priced: Stubs) -> None:
    before = await priced.quota.GetProject(quota_pb2.GetProjectRequest(id="uni-a-llm"))
    for _ in range(3):
        await priced.broker.Quote(ask(8, idempotency_key="same-key"))
    after = await priced.quota.GetProject(quota_pb2.GetProjectRequest(id="uni-a-llm"))
    assert dict(after.devices_in_use) == dict(before.devices_in_use)
    assert not (await priced.broker.ListGrants(broker_pb2.ListGrantsRequest(project="uni-a-llm"))).grants
    assert not (await priced.quota.ListReservations(quota_pb2.ListReservationsRequest())).reservations
    # The key a quote carried is still free for the real request.
    grant = await priced.broker.RequestGrant(ask(8, idempotency_key="same-key"))
    assert grant.state == broker_pb2.GRANT_STATE_ACTIVE


async def test_over_quota_is_a_refusal_in_the_answer_not_an_error(priced: Stubs) -> None:
    quote = await priced.broker.Quote(ask(21))  # the project's H100 cap is 20
    assert quote.refusal_reason == "QUOTA_EXCEEDED"
    assert "H100" in quote.refusal_message and "uni-a-llm" in quote.refusal_message
    assert not quote.available_now
    assert quote.cost > 0  # still priced
    with pytest.raises(grpc.aio.AioRpcError) as real:
        await priced.broker.RequestGrant(ask(21))
    assert from_rpc_error(real.value).reason == "QUOTA_EXCEEDED"


async def test_when_the_facility_is_full_the_quote_says_when_it_would_start(priced: Stubs) -> None:
    # 64 H100s: fill them with 10-minute leases.
    for project, n in (("uni-a-llm", 20), ("uni-a-vision", 20), ("lab-b-bio", 20), ("lab-b-chem", 4)):
        await priced.broker.RequestGrant(ask(n, project=project, hours=1 / 6))
    quote = await priced.broker.Quote(ask(8, project="lab-b-chem"))
    assert not quote.refusal_reason
    assert not quote.available_now
    assert quote.queue_position == 1
    assert "waiting for 8 x H100" in quote.waiting_reason and "0 whole devices free" in quote.waiting_reason
    grants = (await priced.broker.ListGrants(broker_pb2.ListGrantsRequest(project="uni-a-llm"))).grants
    assert quote.estimated_start.ToMilliseconds() == pytest.approx(
        min(g.expires_at.ToMilliseconds() for g in grants), abs=2_000
    )


async def test_bad_input_is_refused_as_request_grant_refuses_it(priced: Stubs) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await priced.broker.Quote(ask(0))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert from_rpc_error(caught.value).metadata.get("field") == "count"
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await priced.broker.Quote(ask(1, project="nobody"))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_without_a_price_book_the_quote_still_answers_and_says_why_there_is_no_price(stubs: Stubs) -> None:
    quote = await stubs.broker.Quote(ask(1))
    assert quote.available_now and quote.cost == 0 and not quote.currency
    assert any("no price" in w for w in quote.warnings)


async def test_a_later_start_is_quoted_as_a_later_start(priced: Stubs) -> None:
    from google.protobuf.timestamp_pb2 import Timestamp

    at = Timestamp()
    at.GetCurrentTime()
    at.FromSeconds(at.seconds + 3600)
    quote = await priced.broker.Quote(ask(2, start_after=at))
    assert not quote.available_now and not quote.refusal_reason
    assert quote.estimated_start.seconds >= at.seconds
    with pytest.raises(grpc.aio.AioRpcError) as far:
        await priced.broker.Quote(ask(2, start_after=Timestamp(seconds=at.seconds + 90 * 86_400)))
    assert from_rpc_error(far.value).metadata.get("field") == "start_after"
