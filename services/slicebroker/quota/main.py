"""The quota service's composition root: Redis client → store → QuotaService → servicer, plus the
background sweep that releases reservations whose TTL passed."""

from __future__ import annotations

import asyncio
import logging
import time

import grpc

from slicebroker.quota.api.servicer import QuotaServicer
from slicebroker.quota.domain.service import FairShareSettings, QuotaService
from slicebroker.quota.domain.tenants import apply_tenants
from slicebroker.quota.peers import GrpcCapacity
from slicebroker.quota.settings import QuotaSettings
from slicebroker.quota.storage.keys import QuotaKeys
from slicebroker.quota.storage.redis_store import RedisQuotaStore
from slicebroker.runtime.leader import LeaderLock
from slicebroker.runtime.logs import log_fields
from slicebroker.runtime.redis import connect
from slicebroker.runtime.server import ServiceSpec, run_service
from slicebroker.v1 import quota_pb2_grpc

log = logging.getLogger("slicebroker.quota")


async def build(settings: QuotaSettings) -> ServiceSpec:
    client = connect(settings.redis_url)
    store = RedisQuotaStore(client, settings.key_prefix, calls_in_flight=settings.script_calls_in_flight)
    fair = FairShareSettings(
        half_life_ms=int(settings.fair_share_half_life_s * 1000), history_weight=settings.fair_share_history_weight
    )
    capacity = None
    if settings.inventory_addr:
        capacity = GrpcCapacity(
            settings.inventory_addr, settings.service_token, settings.tls(), timeout_s=settings.peer_timeout_s
        )
    service = QuotaService(store, sweep_batch=settings.sweep_batch, fair=fair, capacity=capacity)
    servicer = QuotaServicer(service)
    leader = LeaderLock(client, QuotaKeys(settings.key_prefix).leader, int(settings.leader_ttl_s * 1000))

    def register(server: grpc.aio.Server) -> None:
        quota_pb2_grpc.add_QuotaServiceServicer_to_server(servicer, server)

    async def ready() -> None:
        await client.ping()
        await store.scripts.load()
        if settings.tenants_file is not None:
            institutions, projects = await apply_tenants(
                service, settings.tenants_file.read_text(), int(time.time() * 1000)
            )
            log.info(
                "applied %s",
                settings.tenants_file,
                extra=log_fields(institutions=len(institutions), projects=len(projects)),
            )

    async def sweep_loop() -> None:
        # Every replica sweeps: the script is atomic and idempotent, so overlapping sweeps release
        # each reservation once and no leader lock is needed.
        while True:
            released = await service.sweep(int(time.time() * 1000))
            if released:
                log.info("released lapsed reservations", extra=log_fields(count=released))
            await asyncio.sleep(settings.sweep_interval_s)

    async def roll_budgets_loop() -> None:
        # Only the leader rolls budgets. The roll itself is idempotent (see roll_budgets), so a
        # leadership hand-over that briefly lets two replicas roll cannot double a period.
        while True:
            if await leader.acquire_or_renew():
                rolled = await service.roll_budgets(int(time.time() * 1000))
                if rolled:
                    log.info("started the next budget period", extra=log_fields(tenants=rolled))
            await asyncio.sleep(min(settings.budget_roll_interval_s, settings.leader_ttl_s / 3))

    async def close() -> None:
        await leader.release()
        if capacity is not None:
            await capacity.close()
        await client.aclose()

    return ServiceSpec(
        name="quota",
        proto_services=["slicebroker.v1.QuotaService"],
        register=register,
        ready=ready,
        loops=[sweep_loop, roll_budgets_loop],
        close=close,
    )


def main() -> None:
    settings = QuotaSettings()
    run_service(settings, lambda _: build(settings))
