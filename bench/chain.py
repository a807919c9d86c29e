"""The bare chain the mesh is compared with: client → A → B → Redis claim script.

Two gRPC servers in two processes with no slicebroker code in them: A forwards each request to
B, B runs a claim-sized Lua script. What the mesh reaches as a share of this is what our code
costs on top of the stack itself.

Run as `python -m bench.chain a PORT B_PORT` or `python -m bench.chain b PORT REDIS_URL`.
"""

from __future__ import annotations

import asyncio
import sys

import grpc
import redis.asyncio as aioredis

CLAIM = """
local holder = redis.call('HGET', KEYS[1], ARGV[1])
if holder and holder ~= '' then
  redis.call('HSET', KEYS[1], ARGV[1], '')
  redis.call('HINCRBY', KEYS[2], 'generation', 1)
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], 'generation', 1)
return 1
"""
METHOD = "/bench.Chain/Claim"


def _identity(b: bytes) -> bytes:
    return b


async def serve_b(port: int, redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    script = client.register_script(CLAIM)

    async def claim(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        result = await script(keys=["{chain}:holders", "{chain}:node"], args=[request, b"g"])
        return b"1" if result else b"0"

    await _serve(port, claim)


async def serve_a(port: int, b_port: int) -> None:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{b_port}")
    forward = channel.unary_unary(METHOD, request_serializer=_identity, response_deserializer=_identity)

    async def claim(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        response: bytes = await forward(request, timeout=5)
        return response

    await _serve(port, claim)


async def _serve(port: int, handler: object) -> None:
    server = grpc.aio.server()
    rpc = grpc.unary_unary_rpc_method_handler(handler, request_deserializer=_identity, response_serializer=_identity)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("bench.Chain", {"Claim": rpc})])
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def stub(target: str) -> tuple[grpc.aio.Channel, object]:
    channel = grpc.aio.insecure_channel(target)
    return channel, channel.unary_unary(METHOD, request_serializer=_identity, response_deserializer=_identity)


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    role, port = sys.argv[1], int(sys.argv[2])
    if role == "a":
        asyncio.run(serve_a(port, int(sys.argv[3])))
    else:
        asyncio.run(serve_b(port, sys.argv[3]))
