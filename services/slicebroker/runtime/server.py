"""The one bootstrap every slicebroker server is built with.

1. A `grpc.aio` server with the shared interceptor (request id, auth, errors, metrics).
2. The standard health service, NOT_SERVING until the service's readiness check passes (Redis
   reachable, Lua scripts loaded); server reflection for grpcurl and friends.
3. The service's background loops (relay, reaper, reconciler…) start once it is ready.
4. SIGTERM/SIGINT: health goes NOT_SERVING, in-flight calls get `shutdown_grace_s`, loops stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import grpc
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from slicebroker.runtime.admission import Admission
from slicebroker.runtime.audit import AUDIT_SERVICE, AuditLog, AuditServicer, audit_key
from slicebroker.runtime.auth import Authenticator, parse_tokens
from slicebroker.runtime.context import Principal
from slicebroker.runtime.interceptors import Guard, ServiceInterceptor
from slicebroker.runtime.limits import Bounds, RateLimiter
from slicebroker.runtime.logs import configure_logging
from slicebroker.runtime.metrics import serve_metrics
from slicebroker.runtime.redis import connect
from slicebroker.runtime.settings import ServiceSettings
from slicebroker.runtime.tls import server_credentials
from slicebroker.v1 import audit_pb2_grpc

log = logging.getLogger("slicebroker.server")

GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.so_reuseport", 0),
    # gRPC core cancels calls it has accepted but the application has not yet picked up beyond 1,000
    # (a burst): they would fail as a bare CANCELLED that no client retries. Let them through to
    # admission control, which answers each one with a clear status (see runtime/admission.py).
    ("grpc.server.max_pending_requests", 20_000),
    ("grpc.server.max_pending_requests_hard_limit", 40_000),
]


@dataclass
class ServiceSpec:
    """What a service's composition root hands to the bootstrap."""

    name: str
    # Full proto names, e.g. "slicebroker.v1.InventoryService", for health and reflection.
    proto_services: Sequence[str]
    register: Callable[[grpc.aio.Server], None]
    # Raises until the service can serve (Redis reachable, scripts loaded).
    ready: Callable[[], Awaitable[None]]
    # Long-running loops started once ready; each runs until cancelled.
    loops: Sequence[Callable[[], Awaitable[None]]] = ()
    close: Callable[[], Awaitable[None]] | None = None


@dataclass
class RunningServer:
    spec: ServiceSpec
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    ready_event: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    audit: AuditLog | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def wait_ready(self, timeout_s: float = 30.0) -> None:
        await asyncio.wait_for(self.ready_event.wait(), timeout_s)

    async def stop(self, grace_s: float = 2.0) -> None:
        """Stops serving, then the loops, then the service's clients. Each step is bounded: a stuck
        dependency must not keep a process from exiting on SIGTERM."""
        await self.health.enter_graceful_shutdown()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.server.stop(grace_s), grace_s + 5)
        for task in self.tasks:
            task.cancel()
        await asyncio.wait(self.tasks, timeout=5)
        if self.audit is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.audit.close(), 5)
        if self.spec.close is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.spec.close(), 10)


def load_tokens(path: Path | None) -> dict[str, Principal] | None:
    """The principals of a token file by key (token id, plaintext token or "cert:<CN>")."""
    if path is None:
        return None
    raw = yaml.safe_load(path.read_text()) or {}
    return {key: entry.principal for key, entry in parse_tokens(raw).items()}


def build_guard(spec: ServiceSpec, settings: ServiceSettings) -> Guard:
    """Authentication, policy, limits and the audit log every service runs with."""
    audit = AuditLog(
        connect(settings.redis_url, max_connections=4),
        audit_key(settings.key_prefix),
        spec.name,
        max_entries=settings.audit_max_entries,
        flush_interval_s=settings.audit_flush_interval_s,
    )
    return Guard(
        auth=Authenticator(settings.auth_tokens_file),
        limiter=RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst),
        admission=Admission(
            settings.admission_max_in_flight, settings.admission_max_queue, settings.admission_max_wait_s
        ),
        bounds=Bounds(
            max_string=settings.max_string_chars,
            max_items=settings.max_batch_items,
            max_page_size=settings.max_page_size,
        ),
        audit=audit,
    )


async def start_server(spec: ServiceSpec, settings: ServiceSettings) -> RunningServer:
    guard = build_guard(spec, settings)
    interceptor = ServiceInterceptor(spec.name, guard)
    server = grpc.aio.server(interceptors=[interceptor], options=GRPC_OPTIONS)
    spec.register(server)
    assert guard.audit is not None
    audit_pb2_grpc.add_AuditServiceServicer_to_server(AuditServicer(guard.audit), server)
    proto_services = [*spec.proto_services, AUDIT_SERVICE]
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = ["", *proto_services]
    for name in names:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    reflection.enable_server_reflection(
        [
            *proto_services,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    tls = settings.tls()
    if tls is None:
        port = server.add_insecure_port(settings.listen)
    else:
        port = server.add_secure_port(settings.listen, server_credentials(tls))
    if port == 0:
        raise RuntimeError(f"{spec.name}: cannot bind {settings.listen}")
    await server.start()
    running = RunningServer(spec=spec, server=server, port=port, health=health_servicer, audit=guard.audit)
    running.tasks.append(asyncio.create_task(guard.audit.run(), name=f"{spec.name}-audit"))
    running.tasks.append(asyncio.create_task(_become_ready(running, names), name=f"{spec.name}-ready"))
    return running


async def _become_ready(running: RunningServer, names: Sequence[str]) -> None:
    delay = 0.05
    while True:
        try:
            await running.spec.ready()
            break
        except Exception as exc:  # keep NOT_SERVING and retry: Redis may come up later
            log.warning("%s not ready yet: %s", running.spec.name, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
    for loop in running.spec.loops:
        running.tasks.append(asyncio.create_task(_supervise(running.spec.name, loop)))
    for name in names:
        await running.health.set(name, health_pb2.HealthCheckResponse.SERVING)
    running.ready_event.set()
    log.info("%s serving on port %d", running.spec.name, running.port)


async def _supervise(service: str, loop: Callable[[], Awaitable[None]]) -> None:
    """Restarts a background loop that crashed, with backoff; a loop is never silently lost."""
    delay = 0.1
    while True:
        try:
            await loop()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: background loop %s crashed; restarting", service, getattr(loop, "__name__", loop))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def install_event_loop() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        pass


S = TypeVar("S", bound=ServiceSettings)


def run_service(settings: S, build: Callable[[S], Awaitable[ServiceSpec]]) -> None:
    """Runs one service in the foreground until SIGTERM or SIGINT."""
    configure_logging(settings.log_level, settings.log_json)
    serve_metrics(settings.metrics_port)
    install_event_loop()

    async def main() -> None:
        running = await start_server(await build(settings), settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("%s shutting down", running.spec.name)
        await running.stop(settings.shutdown_grace_s)

    asyncio.run(main())
