"""The accounting service's composition root: Redis client -> store -> domain service -> servicer."""

from __future__ import annotations

import asyncio

import grpc

from slicebroker.accounting.api.servicer import AccountingServicer
from slicebroker.accounting.domain.budget import BudgetFeed
from slicebroker.accounting.domain.pricebook import PriceBook
from slicebroker.accounting.domain.service import AccountingService
from slicebroker.accounting.exports.encoders import encoder
from slicebroker.accounting.peers import GrpcBudgetSink
from slicebroker.accounting.settings import AccountingSettings
from slicebroker.accounting.storage.keys import AccountingKeys
from slicebroker.accounting.storage.redis_store import LUA_PACKAGE, SCRIPTS, RedisUsageStore
from slicebroker.runtime.redis import Scripts, connect
from slicebroker.runtime.server import ServiceSpec, run_service
from slicebroker.v1 import accounting_pb2_grpc

SERVICE_NAME = "slicebroker.v1.AccountingService"


async def build(settings: AccountingSettings) -> ServiceSpec:
    client = connect(settings.redis_url)
    scripts = Scripts(client, LUA_PACKAGE, SCRIPTS)
    store = RedisUsageStore(client, scripts, AccountingKeys(settings.key_prefix))
    service = AccountingService(
        store,
        max_ingest_events=settings.max_ingest_events,
        currency=settings.currency,
        encoders=encoder,
        provider=settings.provider_name,
    )
    servicer = AccountingServicer(service)

    def register(server: grpc.aio.Server) -> None:
        accounting_pb2_grpc.add_AccountingServiceServicer_to_server(servicer, server)

    async def ready() -> None:
        await client.ping()
        await scripts.load()

    loops = []
    sink = GrpcBudgetSink(settings.quota_addr, settings.service_token, settings.tls()) if settings.quota_addr else None
    if sink is not None:

        async def latest_book() -> PriceBook | None:
            return await store.price_book()

        feed = BudgetFeed(store, sink, latest_book)

        async def push_budget_burn() -> None:
            """Feeds quota's budgets from the ledger. Safe on every replica at once: quota applies
            each burn event id once."""
            while True:
                if not await feed.push_once():
                    await asyncio.sleep(settings.budget_feed_interval_s)

        loops.append(push_budget_burn)

    async def close() -> None:
        if sink is not None:
            await sink.close()
        await client.aclose()

    return ServiceSpec(
        name="accounting", proto_services=[SERVICE_NAME], register=register, ready=ready, loops=loops, close=close
    )


def main() -> None:
    # Without the pydantic mypy plugin, fields with positional defaults read as required, and
    # run_service is typed for the base settings class.
    run_service(AccountingSettings(), build)
