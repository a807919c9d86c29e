"""Client channels from one service to another, with a deadline on every call and the request id
passed along so one request can be followed through the mesh's logs."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from slicebroker.runtime.context import REQUEST_ID_HEADER, current_request_id
from slicebroker.runtime.tls import TlsFiles, channel_credentials

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
]


def open_channel(target: str, tls: TlsFiles | None) -> grpc.aio.Channel:
    if tls is None:
        return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
    return grpc.aio.secure_channel(target, channel_credentials(tls), options=CHANNEL_OPTIONS)


def call_metadata(token: str = "") -> Sequence[tuple[str, str]]:
    md = [(REQUEST_ID_HEADER, current_request_id())]
    if token:
        md.append(("authorization", f"Bearer {token}"))
    return md
