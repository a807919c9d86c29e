"""The audit log: who did what, when, with what outcome — every mutating call and every refusal,
appended to a Redis stream per service ("{<key_prefix>}:audit"), and the AuditService that lets
facility admins page through it.

Entries are buffered and written in pipelined batches every few milliseconds, off the request path:
auditing must not double the cost of a grant. The price is that a process killed with SIGKILL loses
the entries of its last flush interval (at most `flush_interval_s`); a clean stop flushes them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from slicebroker.core.errors import InvalidArgument
from slicebroker.runtime.policy import rule_for
from slicebroker.v1 import audit_pb2, audit_pb2_grpc

log = logging.getLogger("slicebroker.audit")

AUDIT_SERVICE = "slicebroker.v1.AuditService"
_TARGET_FIELDS = (
    "id",
    "project",
    "institution",
    "tenant",
    "parent",
    "node_id",
    "period",
    "grant_ids",
    "idempotency_key",
    "sku",
)
_MAX_BUFFER = 100_000
_SCAN_LIMIT = 20_000


def audit_key(key_prefix: str) -> str:
    return f"{{{key_prefix}}}:audit"


def describe_target(request: Message | None) -> str:
    """What the request named, short: ids and names, and the size of each batch."""
    if request is None:
        return ""
    parts: list[str] = []
    try:
        for field, value in request.ListFields():
            if field.name in _TARGET_FIELDS:
                if isinstance(value, str):
                    parts.append(f"{field.name}={value[:64]}")
                elif hasattr(value, "__len__") and not isinstance(value, Message):
                    items = [str(v)[:40] for v in list(value)[:3]]
                    more = f"+{len(value) - 3}" if len(value) > 3 else ""
                    parts.append(f"{field.name}={','.join(items)}{more}")
            elif field.message_type is not None and hasattr(value, "__len__") and not isinstance(value, Message):
                parts.append(f"{field.name}:{len(value)}")
    except Exception:  # a description must never fail the call it describes
        return ""
    return " ".join(parts)[:512]


class AuditLog:
    """Buffered appends to one service's audit stream."""

    def __init__(
        self,
        client: aioredis.Redis,
        key: str,
        service: str,
        max_entries: int = 1_000_000,
        flush_interval_s: float = 0.02,
    ) -> None:
        self._client = client
        self.key = key
        self.service = service
        self._max_entries = max_entries
        self._interval = flush_interval_s
        self._buffer: list[dict[str, str]] = []
        self._lock = asyncio.Lock()
        self.dropped = 0

    def record(
        self,
        *,
        method: str,
        principal: str,
        role: str,
        institution: str,
        outcome: str,
        reason: str,
        request_id: str,
        message: str,
        target: str,
        duration_ms: float,
    ) -> None:
        if len(self._buffer) >= _MAX_BUFFER:
            # Redis has been unreachable for a long while: keep the newest, count what is lost.
            del self._buffer[: _MAX_BUFFER // 10]
            self.dropped += _MAX_BUFFER // 10
            log.error("audit buffer full; dropped %d entries so far", self.dropped)
        self._buffer.append(
            {
                "ts": str(int(time.time() * 1000)),
                "service": self.service,
                "method": method.rsplit("/", 1)[-1],
                "principal": principal,
                "role": role,
                "institution": institution,
                "outcome": outcome,
                "reason": reason,
                "request_id": request_id,
                "message": message[:500],
                "target": target,
                "duration_ms": f"{duration_ms:.3f}",
            }
        )

    async def flush(self) -> None:
        async with self._lock:
            if not self._buffer:
                return
            batch, self._buffer = self._buffer, []
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for entry in batch:
                        if self._max_entries > 0:
                            pipe.xadd(self.key, entry, maxlen=self._max_entries, approximate=True)
                        else:
                            pipe.xadd(self.key, entry)
                    await pipe.execute()
            except Exception:
                # Put them back in front: the next flush retries in order.
                self._buffer[:0] = batch
                raise

    async def run(self) -> None:
        """The flush loop; runs until cancelled, then flushes what is left."""
        try:
            while True:
                await asyncio.sleep(self._interval)
                try:
                    await self.flush()
                except Exception as exc:
                    log.warning("audit flush failed (will retry): %s", exc)
                    await asyncio.sleep(0.5)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.flush())

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.flush()
        await self._client.aclose()


def _ms(ts: Timestamp) -> int:
    return ts.seconds * 1000 + ts.nanos // 1_000_000


def _entry_pb(entry_id: str, fields: Mapping[str, str]) -> Any:
    ts = int(fields.get("ts", "0") or 0)
    when = Timestamp()
    when.FromMilliseconds(ts)
    return audit_pb2.AuditEntry(
        id=entry_id,
        time=when,
        service=fields.get("service", ""),
        method=fields.get("method", ""),
        principal=fields.get("principal", ""),
        role=fields.get("role", ""),
        institution=fields.get("institution", ""),
        outcome=fields.get("outcome", ""),
        reason=fields.get("reason", ""),
        request_id=fields.get("request_id", ""),
        message=fields.get("message", ""),
        target=fields.get("target", ""),
        duration_ms=float(fields.get("duration_ms", "0") or 0),
    )


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    """ListAudit over the service's own stream, newest first. Filters are applied while scanning;
    one call scans at most _SCAN_LIMIT entries and hands back a page token to go on from."""

    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    async def ListAudit(self, request: Any, context: Any) -> Any:
        if not 0 <= request.page_size <= 1000:
            raise InvalidArgument("page_size", "must be between 0 and 1000")
        page_size = request.page_size or 100
        start = "+"
        if request.page_token:
            if not _is_stream_id(request.page_token):
                raise InvalidArgument("page_token", "not a token from a previous ListAudit")
            start = "(" + request.page_token
        until_ms = _ms(request.until) if request.HasField("until") else None
        since_ms = _ms(request.since) if request.HasField("since") else None
        if until_ms is not None and until_ms <= 0:
            return audit_pb2.ListAuditResponse()  # nothing is older than the epoch
        if until_ms is not None:
            # Stream ids are "<ms>-<seq>": the time filter becomes the scan range.
            bound = f"({until_ms}-0"
            start = bound if start == "+" else min(start, bound, key=_stream_order)
        end = f"{since_ms}-0" if since_ms is not None else "-"
        method = request.method.rsplit("/", 1)[-1]
        await self._audit.flush()
        client = self._audit._client
        entries: list[Any] = []
        scanned, last_id = 0, ""
        while len(entries) < page_size and scanned < _SCAN_LIMIT:
            chunk = await client.xrevrange(self._audit.key, max=start, min=end, count=min(1000, _SCAN_LIMIT - scanned))
            if not chunk:
                last_id = ""
                break
            for entry_id, fields in chunk:
                scanned += 1
                last_id = entry_id
                if request.principal and fields.get("principal") != request.principal:
                    continue
                if method and fields.get("method") != method:
                    continue
                if request.outcome and fields.get("outcome") != request.outcome:
                    continue
                entries.append(_entry_pb(entry_id, fields))
                if len(entries) == page_size:
                    break
            start = "(" + last_id
        return audit_pb2.ListAuditResponse(entries=entries, next_page_token=last_id)


def _is_stream_id(token: str) -> bool:
    ms, _, seq = token.partition("-")
    return ms.isdigit() and seq.isdigit() and len(token) <= 40


def _stream_order(bound: str) -> tuple[int, int]:
    ms, _, seq = bound.lstrip("(").partition("-")
    return int(ms), int(seq or 0)


def is_audited(method: str, outcome: str) -> bool:
    """Mutations always; reads when refused for who the caller is or how much it asks."""
    return rule_for(method).mutating or outcome in ("UNAUTHENTICATED", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED")
