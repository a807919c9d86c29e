"""The inventory's composition root: Redis client -> store -> domain service -> gRPC servicer."""

from __future__ import annotations

import grpc

from slicebroker.inventory.api.servicer import SERVICE_NAME, InventoryServicer
from slicebroker.inventory.api.watch_wire import add_inventory_service
from slicebroker.inventory.domain.service import InventoryService
from slicebroker.inventory.settings import InventorySettings
from slicebroker.inventory.storage.store import RedisInventoryStore
from slicebroker.runtime.redis import connect
from slicebroker.runtime.server import ServiceSpec, run_service


async def build(settings: InventorySettings) -> ServiceSpec:
    client = connect(settings.redis_url, max_connections=settings.redis_max_connections)
    store = RedisInventoryStore(
        client,
        settings.key_prefix,
        register_chunk_nodes=settings.register_chunk_nodes,
        release_attempts=settings.release_attempts,
        remembered_grants=settings.remembered_grants,
        change_log_length=settings.change_log_length,
    )
    servicer = InventoryServicer(
        InventoryService(
            store, watch_block_ms=settings.watch_block_ms, watch_buffer_events=settings.watch_buffer_events
        )
    )

    def register(server: grpc.aio.Server) -> None:
        add_inventory_service(servicer, server)

    async def ready() -> None:
        await client.ping()
        await store.load_scripts()

    async def close() -> None:
        await client.aclose()

    return ServiceSpec(name="inventory", proto_services=[SERVICE_NAME], register=register, ready=ready, close=close)


def main() -> None:
    run_service(InventorySettings(), build)
