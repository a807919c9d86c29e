"""Server interceptors: request id, authentication, authorisation, limits, audit, error mapping and
metrics — one wrapper for all.

Servicer methods raise domain errors; this is the only place they become gRPC statuses, so no
servicer carries its own try/except. Who may call what is decided here, from one policy table
(`slicebroker.runtime.policy`), before the handler runs; so are the rate limit and the request
bounds, so a refusal never reaches a handler and never changes state.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import Token
from dataclasses import dataclass
from typing import Any

import grpc
import redis.exceptions
from grpc_status import rpc_status

from slicebroker.core.errors import Internal, SlicebrokerError, Unavailable
from slicebroker.runtime.admission import Admission
from slicebroker.runtime.audit import AuditLog, describe_target, is_audited
from slicebroker.runtime.auth import Authenticator
from slicebroker.runtime.context import (
    ANONYMOUS_ADMIN,
    REQUEST_ID_HEADER,
    Principal,
    new_request_id,
    principal_var,
    request_id_var,
)
from slicebroker.runtime.limits import Bounds, RateLimiter, check_request
from slicebroker.runtime.logs import log_fields
from slicebroker.runtime.metrics import RPC_SECONDS, RPC_TOTAL
from slicebroker.runtime.policy import Rule, authorize, rule_for
from slicebroker.runtime.status import STATUS_OF_KIND, to_status

log = logging.getLogger("slicebroker.rpc")

# Health checks and reflection are open to probes and tools without a token.
_UNAUTHENTICATED_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


@dataclass
class Guard:
    """What every call passes before its handler: who (auth), whether (policy), how often (rate),
    how much (bounds); and where the outcome is written down (audit)."""

    auth: Authenticator
    limiter: RateLimiter | None = None
    admission: Admission | None = None
    bounds: Bounds | None = None
    audit: AuditLog | None = None


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every method's handler once (cached by method name): the wrapper reads the call's
    metadata from its context, so no per-call handler needs building."""

    def __init__(self, service: str, guard: Guard | Authenticator) -> None:
        self._service = service
        self._guard = guard if isinstance(guard, Guard) else Guard(auth=guard)
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
        guard = None if method.startswith(_UNAUTHENTICATED_PREFIXES) else self._guard
        meter = _Meter(self._service, method)
        if handler.unary_unary is not None:
            inner_unary = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                with _Call(meter, context, guard) as call:
                    try:
                        call.enter(request)
                        async with call.admitted():
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
                with _Call(meter, context, guard) as call:
                    try:
                        call.enter(request)
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
    """The bookkeeping of one call: context variables in, metrics, logs and the audit entry out."""

    def __init__(self, meter: _Meter, context: grpc.aio.ServicerContext, guard: Guard | None) -> None:
        self.meter, self.guard, self.context = meter, guard, context
        self.metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        self.code = grpc.StatusCode.OK
        self.start = time.perf_counter()
        self.caller: Principal | None = None
        self.request: Any = None
        self.error: SlicebrokerError | None = None

    def __enter__(self) -> _Call:
        self._rid = request_id_var.set(self.metadata.get(REQUEST_ID_HEADER) or new_request_id())
        self._principal: Token[Principal] | None = None
        return self

    def enter(self, request: Any) -> None:
        guard = self.guard
        if guard is None:
            return
        self.request = request
        principal = guard.auth.authenticate(self.metadata, _cert_names(self.context)) if guard.auth.enabled else None
        self.caller = principal or ANONYMOUS_ADMIN
        if principal is not None:
            self._principal = principal_var.set(principal)
        rule = authorize(self.caller, self.meter.method)
        if self.caller.local or self.caller.is_service:
            # The mesh's own calls are trusted and batched: no per-call limits on the grant path.
            return
        if guard.limiter is not None and not self.caller.is_admin:
            # Per tenant: facility admins (and benchmarks run as one) are operators, not tenants.
            guard.limiter.take(f"{self.caller.institution}/{self.caller.name}")
        if guard.bounds is not None:
            check_request(request, guard.bounds, _max_string(rule))

    @contextlib.asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        """Holds a slot of the server's admission control while the handler runs (tenant calls)."""
        guard, caller = self.guard, self.caller
        if guard is None or guard.admission is None or caller is None or caller.local or caller.is_service:
            yield
            return
        async with guard.admission.admit(f"{caller.institution}/{caller.name}", self.context.time_remaining()):
            yield

    async def fail(self, exc: BaseException, context: grpc.aio.ServicerContext) -> None:
        if isinstance(exc, grpc.aio.AbortError) or not isinstance(exc, Exception):
            code = context.code()
            self.code = code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.CANCELLED
            return
        if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            # Redis restarting or unreachable: a retryable UNAVAILABLE, not an INTERNAL bug.
            exc = Unavailable(f"the service's Redis is unreachable: {exc}")
        elif not isinstance(exc, SlicebrokerError):
            log.exception("unhandled error in %s", self.meter.method)
            exc = Internal("internal error; the request id is in the server log", metadata={})
        self.error = exc
        self.code = STATUS_OF_KIND[exc.kind]
        if self.code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE):
            log.warning("%s failed: %s", self.meter.method, exc, extra=log_fields(reason=str(exc.reason)))
        await context.abort_with_status(rpc_status.to_status(to_status(exc)))

    def __exit__(self, *exc: object) -> None:
        elapsed = time.perf_counter() - self.start
        self.meter.seconds.observe(elapsed)
        self.meter.count(self.code)
        guard = self.guard
        if guard is not None and guard.audit is not None and is_audited(self.meter.method, self.code.name):
            self._audit(guard.audit, elapsed)
        # Each RPC runs in its own task, so these values die with it anyway. A cancelled stream is
        # closed from another context, where a reset is refused: nothing to undo there.
        with contextlib.suppress(ValueError):
            if self._principal is not None:
                principal_var.reset(self._principal)
            request_id_var.reset(self._rid)

    def _audit(self, audit: AuditLog, elapsed_s: float) -> None:
        who = self.caller
        err = self.error
        audit.record(
            method=self.meter.method,
            principal=who.name if who else "",
            role=who.role if who else "",
            institution=who.institution if who else "",
            outcome=self.code.name,
            reason=str(err.reason) if err else "",
            request_id=request_id_var.get(),
            message=err.message if err else "",
            target=describe_target(self.request),
            duration_ms=elapsed_s * 1000,
        )


def _max_string(rule: Rule) -> int | None:
    return rule.max_string


def _cert_names(context: grpc.aio.ServicerContext) -> list[str]:
    """The common names of the client certificate of an mTLS call (empty for plaintext)."""
    try:
        auth_context = context.auth_context() or {}
    except Exception:
        return []
    return [n.decode() if isinstance(n, bytes) else str(n) for n in auth_context.get("x509_common_name", ())]


__all__ = ["Authenticator", "Guard", "ServiceInterceptor", "rule_for"]
