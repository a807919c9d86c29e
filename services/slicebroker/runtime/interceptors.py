"""Server interceptors: request id, authentication, error mapping and metrics — one wrapper for all.

Servicer methods raise domain errors; this is the only place they become gRPC statuses, so no
servicer carries its own try/except.
"""

from __future__ import annotations

import contextlib
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
    """Wraps every method's handler once (cached by method name): the wrapper reads the call's
    metadata from its context, so no per-call handler needs building."""

    def __init__(self, service: str, authenticator: Authenticator) -> None:
        self._service = service
        self._auth = authenticator
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method: str = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = await continuation(handler_call_details)
            if handler is None:
                return handler
            wrapped = self._wrapped[method] = self._wrap(method, handler)
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        auth = None if method.startswith(_UNAUTHENTICATED_PREFIXES) else self._auth
        meter = _Meter(self._service, method)
        if handler.unary_unary is not None:
            inner_unary = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                with _Call(meter, context, auth) as call:
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
                with _Call(meter, context, auth) as call:
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


class _Meter:
    """One method's metric children, resolved once (label lookups are not free per call)."""

    def __init__(self, service: str, method: str) -> None:
        self.method = method
        self._service = service
        self._short = method.rsplit("/", 1)[-1]
        self.seconds = RPC_SECONDS.labels(service, self._short)
        self._totals: dict[grpc.StatusCode, Any] = {}

    def count(self, code: grpc.StatusCode) -> None:
        total = self._totals.get(code)
        if total is None:
            total = self._totals[code] = RPC_TOTAL.labels(self._service, self._short, code.name)
        total.inc()


class _Call:
    """The bookkeeping of one call: context variables in, metrics and logs out."""

    def __init__(self, meter: _Meter, context: grpc.aio.ServicerContext, auth: Authenticator | None) -> None:
        self.meter, self.auth = meter, auth
        self.metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
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
            code = context.code()
            self.code = code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.CANCELLED
            return
        if not isinstance(exc, SlicebrokerError):
            log.exception("unhandled error in %s", self.meter.method)
            exc = Internal("internal error; the request id is in the server log", metadata={})
        self.code = STATUS_OF_KIND[exc.kind]
        if self.code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE):
            log.warning("%s failed: %s", self.meter.method, exc, extra=log_fields(reason=str(exc.reason)))
        await context.abort_with_status(rpc_status.to_status(to_status(exc)))

    def __exit__(self, *exc: object) -> None:
        self.meter.seconds.observe(time.perf_counter() - self.start)
        self.meter.count(self.code)
        # Each RPC runs in its own task, so these values die with it anyway. A cancelled stream is
        # closed from another context, where a reset is refused: nothing to undo there.
        with contextlib.suppress(ValueError):
            if self._principal is not None:
                principal_var.reset(self._principal)
            request_id_var.reset(self._rid)
