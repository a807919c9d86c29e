"""AccountingService.Rate through the real server: a prospective use priced as the ledger would
bill it (tier, preemptible discount, slice kinds, prices changing mid-use), its refusals naming the
field, and who may ask for which institution."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from slicebroker.accounting.main import build
from slicebroker.accounting.settings import AccountingSettings
from slicebroker.core.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from slicebroker.core.ids import new_grant_id
from slicebroker.v1 import accounting_pb2, accounting_pb2_grpc
from tests.api.accounting.test_billing_api import BOOK, H100, HOUR, RNGD, grant_events, ingest, ms, refused, ts


def rate(
    institution: str = "kaist",
    sku: str = H100,
    hours: float = 1,
    count: int = 1,
    kind: str = "",
    at: int | None = None,
    priority: str = "",
) -> Any:
    request = accounting_pb2.RateRequest(
        institution=institution,
        sku=sku,
        slice_kind=kind,
        count=count,
        duration=Duration(seconds=int(hours * 3600)),
        priority_class=priority,
    )
    if at is not None:
        request.at.CopyFrom(ts(at))
    return request


@pytest.fixture
async def stub(redis_url: str, start_service: Any) -> AsyncIterator[Any]:
    running = await start_service(build, AccountingSettings(redis_url=redis_url, listen="127.0.0.1:0"))
    async with grpc.aio.insecure_channel(running.address) as channel:
        yield accounting_pb2_grpc.AccountingServiceStub(channel)


async def test_a_quote_is_what_the_ledger_later_bills(stub: Any) -> None:
    await stub.PublishPriceBook(accounting_pb2.PublishPriceBookRequest(book=BOOK), timeout=5)
    # 22:00 on Nov 14 for 4 hours, 2 devices: two hours at 3000, two at 2500 (the price changes at midnight).
    start = ms(2025, 11, 14, 22)
    quote = await stub.Rate(rate(hours=4, count=2, at=start), timeout=5)
    assert (quote.currency, quote.tier, quote.price_book_version) == ("KRW", "academic", 1)
    assert quote.cost == 2 * (2 * 3000 + 2 * 2500)
    assert quote.cost_per_hour == 2 * 3000
    assert quote.accelerator_hours == 8

    await ingest(stub, grant_events(new_grant_id(), start, start + 4 * HOUR, count=2))
    billed = await stub.QueryLedger(
        accounting_pb2.QueryLedgerRequest(start=ts(ms(2025, 11, 1)), end=ts(ms(2025, 12, 1))), timeout=5
    )
    (row,) = billed.rows
    assert Decimal(row.cost) == Decimal(str(quote.cost))
    assert row.accelerator_hours == quote.accelerator_hours


async def test_tier_discount_and_slice_kind_are_priced(stub: Any) -> None:
    await stub.PublishPriceBook(accounting_pb2.PublishPriceBookRequest(book=BOOK), timeout=5)
    at = ms(2025, 12, 1)
    industry = await stub.Rate(rate("samsung", hours=10, at=at), timeout=5)
    assert (industry.tier, industry.cost) == ("industry", 90_000)
    preemptible = await stub.Rate(rate(hours=10, at=at, priority="preemptible"), timeout=5)
    assert (preemptible.cost, preemptible.cost_per_hour) == (12_500, 1250)
    mig = await stub.Rate(rate(hours=7, count=7, kind="mig-1g.10gb", at=at), timeout=5)
    # Seven 1g.10gb slices for 7 hours are 49 slice-hours at 500, and 7 accelerator-hours: each is
    # a seventh of the device.
    assert (mig.cost, mig.accelerator_hours) == (24_500, pytest.approx(7, abs=1e-5))
    npu = await stub.Rate(rate(sku=RNGD, hours=0, at=at), timeout=5)
    assert (npu.cost, npu.cost_per_hour, npu.accelerator_hours) == (0, 1000, 0)
    # No `at`: priced now, with the entry open-ended from 2025-11-15.
    now = await stub.Rate(rate(hours=1), timeout=5)
    assert now.cost == 2500


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (rate(sku="TPU-v9"), "sku"),
        (rate(sku="H100|x"), "sku"),
        (rate(sku=""), "sku"),
        (rate(kind="mig-7g.80gb"), "slice_kind"),
        (rate(count=0), "count"),
        (rate(count=-3), "count"),
        (rate(hours=-1), "duration"),
        (rate(institution="no such!"), "institution"),
        (rate(at=ms(1990, 1, 1)), "at"),
    ],
)
async def test_bad_input_is_refused_with_the_field_named(stub: Any, request_: Any, field: str) -> None:
    await stub.PublishPriceBook(accounting_pb2.PublishPriceBookRequest(book=BOOK), timeout=5)
    err = await refused(stub.Rate(request_, timeout=5))
    assert isinstance(err, InvalidArgument) and err.field == field


async def test_a_use_outside_every_price_is_refused_naming_at(stub: Any) -> None:
    await stub.PublishPriceBook(accounting_pb2.PublishPriceBookRequest(book=BOOK), timeout=5)
    # H100 is priced from 2025-01-01 on: a use starting before it has no price for its first hour.
    err = await refused(stub.Rate(rate(at=ms(2024, 12, 31, 23), hours=2), timeout=5))
    assert isinstance(err, InvalidArgument) and err.field == "at"


async def test_nothing_is_priced_before_a_book_is_published(stub: Any) -> None:
    err = await refused(stub.Rate(rate(), timeout=5))
    assert isinstance(err, FailedPrecondition)


async def test_tenants_rate_for_their_own_institution_only(redis_url: str, start_service: Any, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(
        "admin-token: {name: ops, role: facility-admin}\n"
        "broker-token: {name: broker, role: service}\n"
        "snu-token: {name: snu-user, role: project-member, institution: snu, projects: [snu-llm]}\n"
    )
    settings = AccountingSettings(redis_url=redis_url, listen="127.0.0.1:0", auth_tokens_file=tokens)
    running = await start_service(build, settings)
    admin, broker, snu = ([("authorization", f"Bearer {t}-token")] for t in ("admin", "broker", "snu"))
    async with grpc.aio.insecure_channel(running.address) as channel:
        stub = accounting_pb2_grpc.AccountingServiceStub(channel)
        await stub.PublishPriceBook(accounting_pb2.PublishPriceBookRequest(book=BOOK), metadata=admin, timeout=5)
        at = ms(2025, 12, 1)
        # The broker's service identity quotes for any institution, tier included.
        assert (await stub.Rate(rate("samsung", at=at), metadata=broker, timeout=5)).tier == "industry"
        own = await stub.Rate(rate("snu", at=at), metadata=snu, timeout=5)
        implicit = await stub.Rate(rate("", at=at), metadata=snu, timeout=5)
        assert own == implicit and own.cost == 2500
        err = await refused(stub.Rate(rate("samsung", at=at), metadata=snu, timeout=5))
        assert isinstance(err, PermissionDenied)
