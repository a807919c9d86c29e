"""Composition root of the broker: Redis store, peers, placer, grant service, repair loops, server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable

import grpc

from slicebroker.broker.api.servicer import BrokerServicer
from slicebroker.broker.domain.grants import GrantLimits, GrantService
from slicebroker.broker.domain.model import SkuShapes
from slicebroker.broker.domain.placer import Placer
from slicebroker.broker.domain.queue import Dispatcher, PreemptionPolicy
from slicebroker.broker.domain.quote import QuoteService
from slicebroker.broker.domain.repair import Repair
from slicebroker.broker.domain.watch import GrantWatch
from slicebroker.broker.peers import GrpcAccounting, GrpcInventory, GrpcQuota
from slicebroker.broker.settings import BrokerSettings
from slicebroker.broker.storage.keys import BrokerKeys
from slicebroker.broker.storage.store import RedisGrantStore
from slicebroker.runtime.leader import LeaderLock
from slicebroker.runtime.redis import connect
from slicebroker.runtime.server import ServiceSpec, run_service
from slicebroker.v1 import broker_pb2, broker_pb2_grpc


def clock_ms() -> int:
    return int(time.time() * 1000)


async def build(settings: BrokerSettings) -> ServiceSpec:
    client = connect(settings.redis_url)
    # Watches block on the change stream: a pool of their own, one connection per watch.
    watch_client = connect(settings.redis_url, max_connections=settings.watch_max_streams)
    store = RedisGrantStore(
        client, settings.key_prefix, change_cap=settings.change_stream_max, watch_client=watch_client
    )
    tls = settings.tls()
    inventory = GrpcInventory(settings.inventory_addr, settings.service_token, settings.peer_timeout_s, tls)
    quota = GrpcQuota(settings.quota_addr, settings.service_token, settings.peer_timeout_s, tls)
    accounting = GrpcAccounting(settings.accounting_addr, settings.service_token, settings.peer_timeout_s * 2, tls)
    placer = Placer(inventory, clock_ms, claim_attempts=settings.claim_attempts)
    catalogue: dict[str, SkuShapes] = {}
    grants = GrantService(
        store,
        quota,
        placer,
        lambda: catalogue,
        clock_ms,
        GrantLimits(
            max_count=settings.max_count,
            max_lease_ms=settings.max_lease_s * 1000,
            reservation_ttl_s=settings.reservation_ttl_s,
            max_start_after_ms=settings.max_start_after_s * 1000,
            clock_skew_ms=int(settings.clock_skew_s * 1000),
        ),
        failpoint=_failpoint(settings.failpoint),
    )
    dispatcher = Dispatcher(
        store,
        grants,
        placer,
        quota,
        clock_ms,
        preemption=PreemptionPolicy(
            notice_ms=int(settings.preemption_notice_s * 1000),
            min_runtime_ms=int(settings.preemption_min_runtime_s * 1000),
            enabled=settings.preemption_enabled,
        ),
    )
    watch = GrantWatch(
        store, grants, clock_ms, block_ms=settings.watch_block_ms, max_streams=settings.watch_max_streams
    )
    placer.on_change = grants.capacity_changed.set
    # Quotes ask quota's CheckReserve, accounting's price book and the queue's own start estimate.
    quotes = QuoteService(grants, placer, store, quota, accounting, dispatcher._estimated_start, clock_ms)
    repair = Repair(
        store,
        grants,
        inventory,
        quota,
        accounting,
        clock_ms,
        grace_ms=int(settings.repair_grace_s * 1000),
    )
    leader = LeaderLock(client, BrokerKeys(settings.key_prefix).leader, int(settings.leader_ttl_s * 1000))

    async def ready() -> None:
        await client.ping()
        await store.scripts.load()
        catalogue.update(await inventory.skus())
        for name, shapes in catalogue.items():
            for kind in shapes.kinds - {"whole", "share"}:
                placer.snapshot.slice_capacity[(name, kind)] = shapes.geometry

    async def hold_leadership() -> None:
        while True:
            await leader.acquire_or_renew()
            await asyncio.sleep(settings.leader_ttl_s / 3)

    def as_leader(step: Callable[[], Awaitable[int]], idle_s: float) -> Callable[[], Awaitable[None]]:
        async def loop() -> None:
            while True:
                # Busy steps go again at once; idle ones (or followers) wait.
                if not (leader.held and await step()):
                    await asyncio.sleep(idle_s)

        loop.__name__ = step.__name__
        return loop

    async def serve_queue() -> None:
        """Event-driven dispatch by the leader: on releases and inventory changes, and every second
        for what other replicas freed."""
        while True:
            # Wake early for a request that asked to start later and is due before the interval ends.
            wait_s = settings.dispatch_interval_s
            if dispatcher.next_due_ms is not None:
                wait_s = min(wait_s, max(0.0, (dispatcher.next_due_ms - clock_ms()) / 1000))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(grants.capacity_changed.wait(), wait_s)
            grants.capacity_changed.clear()
            if leader.held:
                await dispatcher.dispatch()

    async def close() -> None:
        await grants.close()
        await placer.close()
        await leader.release()
        for peer in (inventory, quota, accounting):
            await peer.close()
        await client.aclose()
        await watch_client.aclose()

    def register(server: grpc.aio.Server) -> None:
        broker_pb2_grpc.add_BrokerServiceServicer_to_server(BrokerServicer(grants, watch, quotes), server)

    return ServiceSpec(
        name="broker",
        proto_services=[broker_pb2.DESCRIPTOR.services_by_name["BrokerService"].full_name],
        register=register,
        ready=ready,
        loops=[
            placer.follow_inventory,
            hold_leadership,
            serve_queue,
            as_leader(repair.relay, settings.relay_interval_s),
            as_leader(repair.expire, settings.reaper_interval_s),
            as_leader(repair.reconcile, settings.reconcile_interval_s),
        ],
        close=close,
    )


def _failpoint(armed: str) -> Callable[[str], None] | None:
    """Testing only: exit at once, as kill -9 would, when the grant path passes step `armed`."""
    if not armed:
        return None

    def hit(step: str) -> None:
        if step == armed:
            os._exit(137)

    return hit


def main() -> None:
    run_service(BrokerSettings(), build)
