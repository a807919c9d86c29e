"""Watch on the wire: each event is serialized once for every stream of the process, and streams
send those bytes as they are.

The shared change tail (domain/watch.py) hands the same event object to every Watch stream, so
`WatchEncoder` turns it into `WatchEvent` bytes once; gRPC would otherwise serialize the message
again for each of ten streams. The Watch method is registered with a serializer that passes bytes
through (`add_inventory_service`). A reader that asked for batches gets one BATCH message per
group of events that were ready together, built by concatenating the cached bytes of its events
as the encoding of `repeated WatchEvent events = 5` (tag, length, bytes): no event is serialized
twice whatever batches the streams cut.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import grpc

from slicebroker.inventory.api.convert import watch_event_to_pb
from slicebroker.inventory.domain.model import WatchEvent
from slicebroker.v1 import inventory_pb2 as pb
from slicebroker.v1 import inventory_pb2_grpc as pb_grpc

SERVICE = "slicebroker.v1.InventoryService"
# Field 5 (`events`) of WatchEvent, wire type 2 (length-delimited).
_EVENTS_TAG = bytes([5 << 3 | 2])


class WatchEncoder:
    """Event -> serialized `WatchEvent`, once per event for all streams. Keyed by identity and
    checked with `is`, so a recycled id never returns another event's bytes."""

    def __init__(self, size: int = 8192) -> None:
        self._size = size
        self._cache: dict[int, tuple[WatchEvent, bytes]] = {}

    def __call__(self, event: WatchEvent) -> bytes:
        hit = self._cache.get(id(event))
        if hit is not None and hit[0] is event:
            return hit[1]
        data: bytes = watch_event_to_pb(event).SerializeToString()
        if len(self._cache) >= self._size:
            # Oldest first (dicts keep insertion order); streams read events at about the same time.
            del self._cache[next(iter(self._cache))]
        self._cache[id(event)] = (event, data)
        return data

    def batch(self, events: Sequence[WatchEvent]) -> bytes:
        """One WATCH_EVENT_TYPE_BATCH message holding `events` (not empty), as bytes."""
        head: bytes = pb.WatchEvent(type=pb.WATCH_EVENT_TYPE_BATCH, revision=events[-1].revision).SerializeToString()
        parts = [head]
        for event in events:
            data = self(event)
            parts += (_EVENTS_TAG, _varint(len(data)), data)
        return b"".join(parts)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def serialize(message: Any) -> bytes:
    """Watch's response serializer: bytes (already encoded) go as they are."""
    if isinstance(message, bytes):
        return message
    data: bytes = message.SerializeToString()
    return data


def add_inventory_service(servicer: pb_grpc.InventoryServiceServicer, server: grpc.aio.Server) -> None:
    """`add_InventoryServiceServicer_to_server`, with Watch's serializer passing bytes through."""
    pb_grpc.add_InventoryServiceServicer_to_server(servicer, _WatchBytes(server))


class _WatchBytes:
    """The server as the generated registration sees it: it hands over the method handlers, and
    the Watch handler is swapped for one whose serializer is `serialize` before they are added."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        # Added from the method handlers below instead, so that both carry the same Watch handler.
        del handlers

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, grpc.RpcMethodHandler]) -> None:
        rewritten = dict(handlers)
        watch = rewritten["Watch"]
        rewritten["Watch"] = grpc.unary_stream_rpc_method_handler(
            watch.unary_stream, request_deserializer=watch.request_deserializer, response_serializer=serialize
        )
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, rewritten),))
        self._server.add_registered_method_handlers(service, rewritten)
