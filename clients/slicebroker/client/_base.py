"""What the sync and async clients share: addressing, call metadata and channel options."""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from slicebroker.client._errors import ConfigurationError
from slicebroker.client._ops import Rpc
from slicebroker.client._options import ClientOptions

REQUEST_ID_HEADER = "x-request-id"
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


class ClientBase(ABC):
    def __init__(self, options: ClientOptions) -> None:
        self._options = options
        self._channels: dict[str, Any] = {}
        self._callables: dict[str, Callable[..., Any]] = {}

    @property
    def options(self) -> ClientOptions:
        return self._options

    def _target(self, rpc: Rpc) -> str:
        target = rpc.service.target(self._options)
        if not target:
            raise ConfigurationError(rpc.service.value, rpc.service.env_var)
        return target

    def _callable(self, rpc: Rpc, *, streaming: bool = False) -> tuple[Callable[..., Any], str]:
        """The stub of `rpc` (unary, or server-streaming with `streaming`) on its service's channel
        (opened on first use, one per address) and "<service> at <address>" for error messages."""
        target = self._target(rpc)
        key = f"{target}{rpc.path}"
        call = self._callables.get(key)
        if call is None:
            channel = self._channels.get(target)
            if channel is None:
                channel = self._channels[target] = self._open_channel(target)
            make = channel.unary_stream if streaming else channel.unary_unary
            call = self._callables[key] = make(
                rpc.path, request_serializer=_serialize, response_deserializer=rpc.deserialize
            )
        return call, f"{rpc.service} at {target}"

    def _stream_callable(self, rpc: Rpc) -> tuple[Callable[..., Any], str]:
        """`_callable` for a server-streaming `rpc` (billing exports)."""
        target = self._target(rpc)
        key = f"{target}{rpc.path}#stream"
        call = self._callables.get(key)
        if call is None:
            channel = self._channels.get(target)
            if channel is None:
                channel = self._channels[target] = self._open_channel(target)
            call = self._callables[key] = channel.unary_stream(
                rpc.path, request_serializer=_serialize, response_deserializer=rpc.deserialize
            )
        return call, f"{rpc.service} at {target}"

    @abstractmethod
    def _open_channel(self, target: str) -> Any:
        """A channel to `target` (blocking or asyncio, per client)."""

    def _forget_channels(self) -> list[Any]:
        channels = list(self._channels.values())
        self._channels.clear()
        self._callables.clear()
        return channels

    def _metadata(self, request_id: str) -> tuple[tuple[str, str], ...]:
        # One request id per SDK call, kept across its retries, so the services' logs show them as one.
        md = [(REQUEST_ID_HEADER, request_id)]
        if self._options.token:
            md.append(("authorization", f"Bearer {self._options.token}"))
        return tuple(md)

    @staticmethod
    def _new_request_id() -> str:
        return secrets.token_hex(8)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._options!r})"


def _serialize(message: Any) -> bytes:
    data: bytes = message.SerializeToString()
    return data
