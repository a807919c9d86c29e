"""Watching grants with automatic resume, independent of sync or asyncio.

The broker's WatchGrants stream sends a snapshot (when the reader has no revision, or one too old),
then every change with its revision. `Resume` remembers the last revision the caller was handed, so
that after UNAVAILABLE (a broker restart, a dropped connection) or a stream the server ended (a
graceful shutdown), the next stream starts right after it: nothing is missed and nothing repeats.
A snapshot's own grants carry no revision; its end does, so a snapshot cut short is sent again.
"""

from __future__ import annotations

import time

import grpc

from slicebroker.client import _ops as ops
from slicebroker.client._errors import SlicebrokerError, UnavailableError
from slicebroker.client._models import GrantChange
from slicebroker.v1 import broker_pb2

# Codes after which the watch reconnects: the broker (or the path to it) is away for a while.
_RECONNECT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED})
_FIRST_S, _GROWTH, _MAX_S = 0.05, 2.0, 2.0


class Resume:
    def __init__(self, project: str | None, grant_id: str | None, from_revision: str, reconnect_timeout: float) -> None:
        self.project = project
        self.grant_id = grant_id
        self.revision = from_revision
        self._timeout = reconnect_timeout
        self._failing_since: float | None = None
        self._attempt = 0
        self.reconnects = 0

    def request(self) -> broker_pb2.WatchGrantsRequest:
        return ops.watch_grants(self.project, self.grant_id, self.revision)

    def seen(self, change: GrantChange) -> GrantChange:
        """Notes a change handed to the caller; the connection works again."""
        if change.revision:
            self.revision = change.revision
        self._failing_since = None
        self._attempt = 0
        return change

    def next_delay(self, error: SlicebrokerError | None) -> float:
        """Seconds to wait before reconnecting after `error` (None: the server ended the stream);
        raises the error when it is not one to reconnect after, or reconnecting took too long."""
        if error is not None and error.code not in _RECONNECT:
            raise error
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        elif now - self._failing_since > self._timeout:
            if error is not None:
                raise error
            raise UnavailableError(
                grpc.StatusCode.UNAVAILABLE,
                "WATCH_RESUME_TIMEOUT",
                f"the grant watch could not resume for {self._timeout:g} s",
                {"revision": self.revision},
            )
        delay = min(_FIRST_S * _GROWTH**self._attempt, _MAX_S)
        self._attempt += 1
        self.reconnects += 1
        return delay
