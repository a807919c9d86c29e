"""Server interceptors: request id, authentication, error mapping and metrics — one wrapper for all.

Servicer methods raise domain errors; this is the only place they become gRPC statuses, so no
servicer carries its own try/except.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextvars import Token
from typing import Any

import grpc
from grpc_status import rpc_status

from slicebroker.core.errors import Internal, SlicebrokerError, Unauthenticated
from slicebroker.runtime.context import (
    REQUEST_ID_HEADER,
    Principal,
    new_request_id,
    principal_var,
    request_id_var,
)
from slicebroker.runtime.logs import log_fields
from slicebroker.runtime.metrics import RPC_SECONDS, RPC_TOTAL
from slicebroker.runtime.status import STATUS_OF_KIND, to_status

log = logging.getLogger("slicebroker.rpc")

# Health checks and reflection are open to probes and tools without a token.
_UNAUTHENTICATED_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


class Authenticator:
    """Maps bearer tokens to principals. With no tokens configured every caller is a local admin."""

    def __init__(self, tokens: Mapping[str, Principal] | None) -> None:
        self._tokens = dict(tokens) if tokens else None

    def principal(self, metadata: Mapping[str, str]) -> Principal | None:
        if self._tokens is None:
            return principal_var.get()
        header = metadata.get("authorization", "")
        token = header.removeprefix("Bearer ").strip()
        return self._tokens.get(token)


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, service: str, authenticator: Authenticator) -> None:
        self._service = service
        self._auth = authenticator

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method: str = handler_call_details.method
        metadata = {k: v for k, v in (handler_call_details.invocation_metadata or ()) if isinstance(v, str)}
        open_method = method.startswith(_UNAUTHENTICATED_PREFIXES)
        if handler.unary_unary is not None:
            inner_unary = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                with self._call(method, metadata, open_method) as call:
                    try:
                        call.enter()
                        return await inner_unary(request, context)
                    except BaseException as exc:
                        await call.fail(exc, context)
                        raise

            return grpc.unary_unary_rpc_method_handler(
                unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                with self._call(method, metadata, open_method) as call:
                    try:
                        call.enter()
                        async for item in inner_stream(request, context):
                            yield item
                    except BaseException as exc:
                        await call.fail(exc, context)
                        raise

            return grpc.unary_stream_rpc_method_handler(
                stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _call(self, method: str, metadata: Mapping[str, str], open_method: bool) -> _Call:
        return _Call(self._service, method, metadata, None if open_method else self._auth)


class _Call:
    """The bookkeeping of one call: context variables in, metrics and logs out."""

    def __init__(self, service: str, method: str, metadata: Mapping[str, str], auth: Authenticator | None) -> None:
        self.service, self.method, self.metadata, self.auth = service, method, metadata, auth
        self.code = grpc.StatusCode.OK
        self.start = time.perf_counter()

    def __enter__(self) -> _Call:
        self._rid = request_id_var.set(self.metadata.get(REQUEST_ID_HEADER) or new_request_id())
        self._principal: Token[Principal] | None = None
        return self

    def enter(self) -> None:
        if self.auth is not None:
            principal = self.auth.principal(self.metadata)
            if principal is None:
                raise Unauthenticated("missing or unknown bearer token (set SLICEBROKER_TOKEN)")
            self._principal = principal_var.set(principal)

    async def fail(self, exc: BaseException, context: grpc.aio.ServicerContext) -> None:
        if isinstance(exc, grpc.aio.AbortError) or not isinstance(exc, Exception):
            self.code = context.code() if isinstance(context.code(), grpc.StatusCode) else grpc.StatusCode.CANCELLED
            return
        if not isinstance(exc, SlicebrokerError):
            log.exception("unhandled error in %s", self.method)
            exc = Internal("internal error; the request id is in the server log", metadata={})
        self.code = STATUS_OF_KIND[exc.kind]
        if self.code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE):
            log.warning("%s failed: %s", self.method, exc, extra=log_fields(reason=str(exc.reason)))
        await context.abort_with_status(rpc_status.to_status(to_status(exc)))

    def __exit__(self, *exc: object) -> None:
        elapsed = time.perf_counter() - self.start
        short = self.method.rsplit("/", 1)[-1]
        RPC_TOTAL.labels(self.service, short, self.code.name).inc()
        RPC_SECONDS.labels(self.service, short).observe(elapsed)
        if self._principal is not None:
            principal_var.reset(self._principal)
        request_id_var.reset(self._rid)
