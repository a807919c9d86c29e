"""A real gRPC hop between the SDK and the broker that forwards every call and, for the first calls
of one method, throws the broker's answer away and tells the client UNAVAILABLE instead: the
failure where the server committed but the client never heard. Runs a grpc.aio server on its own
event loop in a thread, so blocking clients can call it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc

FORWARDED_HEADERS = ("authorization", "x-request-id")


@dataclass
class DroppingProxy:
    address: str = ""
    calls: list[tuple[str, bytes]] = field(default_factory=list)
    """(method path, request bytes) of every call forwarded, in order."""
    dropped: list[str] = field(default_factory=list)
    """Method paths whose committed answer was replaced by UNAVAILABLE."""


@contextmanager
def dropping_proxy(upstream: Callable[[], grpc.aio.Channel], method: str, drops: int = 1) -> Iterator[DroppingProxy]:
    """Serves on a loopback port (plaintext) and forwards to the channel `upstream()` opens; the
    first `drops` calls whose path ends with `/method` get UNAVAILABLE after the upstream answered."""
    proxy = DroppingProxy()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: asyncio.Event | None = None

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        channel = upstream()
        left = drops

        async def forward(request: bytes, context: grpc.aio.ServicerContext[Any, Any], path: str) -> bytes:
            nonlocal left
            proxy.calls.append((path, request))
            metadata = [(k, v) for k, v in context.invocation_metadata() or () if k in FORWARDED_HEADERS]
            call = channel.unary_unary(path)
            try:
                response: bytes = await call(request, metadata=metadata, timeout=context.time_remaining())
            except grpc.aio.AioRpcError as err:
                await context.abort(err.code(), err.details() or "", trailing_metadata=err.trailing_metadata())
            if path.endswith("/" + method) and left > 0:
                left -= 1
                proxy.dropped.append(path)
                await context.abort(grpc.StatusCode.UNAVAILABLE, "proxy: upstream answered, answer dropped")
            return response

        class Handler(grpc.GenericRpcHandler):
            def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
                path: str = details.method  # type: ignore[attr-defined]

                async def behaviour(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
                    return await forward(request, context, path)

                return grpc.unary_unary_rpc_method_handler(behaviour)

        server = grpc.aio.server()
        server.add_generic_rpc_handlers((Handler(),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        proxy.address = f"127.0.0.1:{port}"
        started.set()
        await stop.wait()
        await server.stop(grace=None)
        await channel.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("proxy did not start")
    try:
        yield proxy
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
