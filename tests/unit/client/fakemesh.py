"""A tiny, real gRPC mesh for SDK and CLI tests: in-memory servicers of the four services, served by a
grpc.aio server on a loopback port in its own thread (so blocking clients and CliRunner can call it).

The servicers record every call (request, metadata, remaining deadline) and can be told to fail the
next calls of a method with given status codes, each carrying a google.rpc.Status the way the real
services send it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from slicebroker.v1 import (
    accounting_pb2,
    accounting_pb2_grpc,
    broker_pb2,
    broker_pb2_grpc,
    common_pb2,
    inventory_pb2,
    inventory_pb2_grpc,
    quota_pb2,
    quota_pb2_grpc,
)

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SKUS = ["H100-SXM-80GB", "RNGD"]


def rich_status(
    code: grpc.StatusCode, reason: str, message: str, field: str | None = None, **metadata: str
) -> status_pb2.Status:
    """A google.rpc.Status as the services build it: ErrorInfo, plus BadRequest naming `field`."""
    details = [_pack(error_details_pb2.ErrorInfo(reason=reason, domain="slicebroker.io", metadata=metadata))]
    if field is not None:
        violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=message)
        details.append(_pack(error_details_pb2.BadRequest(field_violations=[violation])))
    return status_pb2.Status(code=code.value[0], message=message, details=details)


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


async def abort(context: grpc.aio.ServicerContext, status: status_pb2.Status) -> None:
    code = next(c for c in grpc.StatusCode if c.value[0] == status.code)
    await context.abort(
        code, status.message, trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),)
    )


@dataclass
class Call:
    method: str
    request: Any
    metadata: dict[str, str]
    time_remaining: float | None


@dataclass
class Recorder:
    """Calls seen by all servicers, and failures queued per method name."""

    calls: list[Call] = field(default_factory=list)
    failures: dict[str, list[status_pb2.Status]] = field(default_factory=dict)

    def fail(self, method: str, *statuses: status_pb2.Status) -> None:
        self.failures.setdefault(method, []).extend(statuses)

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def enter(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        self.calls.append(Call(method, request, metadata, context.time_remaining()))
        queued = self.failures.get(method)
        if queued:
            await abort(context, queued.pop(0))


def _page(items: list[Any], page_size: int, token: str, default_size: int) -> tuple[list[Any], str]:
    start = int(token or 0)
    end = start + (page_size or default_size)
    return items[start:end], str(end) if end < len(items) else ""


class FakeBroker(broker_pb2_grpc.BrokerServiceServicer):
    def __init__(self, recorder: Recorder) -> None:
        self.rec = recorder
        self.grants: list[broker_pb2.Grant] = []
        self._by_key: dict[tuple[str, str], broker_pb2.Grant] = {}

    def _find(self, grant_id: str) -> broker_pb2.Grant | None:
        return next((g for g in self.grants if g.id == grant_id), None)

    async def _missing(self, context: grpc.aio.ServicerContext, grant_id: str) -> None:
        await abort(
            context,
            rich_status(grpc.StatusCode.NOT_FOUND, "GRANT_NOT_FOUND", f"no grant {grant_id}", grant_id=grant_id),
        )

    async def RequestGrant(self, request: Any, context: grpc.aio.ServicerContext) -> broker_pb2.Grant:
        await self.rec.enter("RequestGrant", request, context)
        if request.sku not in SKUS:
            await abort(
                context,
                rich_status(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "UNKNOWN_SKU",
                    f"sku: unknown SKU {request.sku!r}; known: {', '.join(SKUS)}",
                    field="sku",
                    field_name="sku",
                ),
            )
        replay = self._by_key.get((request.project, request.idempotency_key))
        if replay is not None:
            return replay
        number = len(self.grants) + 1
        node = f"node-{number:02d}"
        grant = broker_pb2.Grant(
            id=f"gr_{number:026d}",
            project=request.project,
            institution="snu",
            sku=request.sku,
            count=request.count,
            slices=[common_pb2.Slice(node_id=node, device_id=f"{node}/gpu{i}") for i in range(request.count)],
            state=broker_pb2.GRANT_STATE_ACTIVE,
            created_at=NOW,
            expires_at=NOW + request.lease.ToTimedelta(),
            idempotency_key=request.idempotency_key,
        )
        self.grants.insert(0, grant)  # newest first, like the broker lists them
        self._by_key[(request.project, request.idempotency_key)] = grant
        return grant

    async def GetGrant(self, request: Any, context: grpc.aio.ServicerContext) -> broker_pb2.Grant:
        await self.rec.enter("GetGrant", request, context)
        grant = self._find(request.id)
        if grant is None:
            await self._missing(context, request.id)
        assert grant is not None
        return grant

    async def ListGrants(self, request: Any, context: grpc.aio.ServicerContext) -> broker_pb2.ListGrantsResponse:
        await self.rec.enter("ListGrants", request, context)
        matching = [
            g
            for g in self.grants
            if (not request.project or g.project == request.project) and (not request.state or g.state == request.state)
        ]
        page, token = _page(matching, request.page_size, request.page_token, default_size=2)
        return broker_pb2.ListGrantsResponse(grants=page, next_page_token=token)

    async def RenewGrant(self, request: Any, context: grpc.aio.ServicerContext) -> broker_pb2.Grant:
        await self.rec.enter("RenewGrant", request, context)
        grant = self._find(request.id)
        if grant is None:
            await self._missing(context, request.id)
        assert grant is not None
        if grant.state != broker_pb2.GRANT_STATE_ACTIVE:
            await abort(
                context,
                rich_status(grpc.StatusCode.FAILED_PRECONDITION, "GRANT_NOT_ACTIVE", f"grant {grant.id} has ended"),
            )
        grant.expires_at.FromDatetime(NOW + request.lease.ToTimedelta())
        return grant

    async def Quote(self, request: Any, context: grpc.aio.ServicerContext) -> broker_pb2.QuoteResponse:
        await self.rec.enter("Quote", request, context)
        hours = request.lease.ToTimedelta().total_seconds() / 3600
        refused = request.count > 8
        return broker_pb2.QuoteResponse(
            sku=request.sku,
            count=request.count,
            currency="KRW",
            cost=2500.0 * request.count * hours,
            cost_per_hour=2500.0 * request.count,
            accelerator_hours=request.count * hours,
            price_tier="academic",
            price_book_version=1,
            available_now=request.count <= 4,
            estimated_start=NOW if request.count <= 4 else NOW + timedelta(minutes=40),
            queue_position=0 if request.count <= 4 or refused else 2,
            waiting_reason="" if request.count <= 4 or refused else f"waiting for {request.count} x {request.sku}",
            refusal_reason="QUOTA_EXCEEDED" if refused else "",
            refusal_message=f"the hard cap of {request.project} leaves 8" if refused else "",
        )

    async def WatchGrants(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        """A snapshot of the grants and one change; a resumed watch (from the last revision sent)
        ends the fake's story with FAILED_PRECONDITION, so a client shows what it got and stops."""
        await self.rec.enter("WatchGrants", request, context)
        if request.from_revision == "1700000000001-0":
            await abort(context, rich_status(grpc.StatusCode.FAILED_PRECONDITION, "WATCH_OVER", "the fake has no more"))
        yield broker_pb2.GrantChange(type=broker_pb2.GRANT_CHANGE_TYPE_SNAPSHOT_BEGIN, at=NOW)
        for grant in self.grants:
            yield broker_pb2.GrantChange(type=broker_pb2.GRANT_CHANGE_TYPE_SNAPSHOT, grant=grant, at=NOW)
        yield broker_pb2.GrantChange(type=broker_pb2.GRANT_CHANGE_TYPE_SNAPSHOT_END, revision="1700000000000-0", at=NOW)
        if self.grants:
            renewed = broker_pb2.Grant()
            renewed.CopyFrom(self.grants[0])
            renewed.preemption_deadline.FromDatetime(NOW + timedelta(minutes=5))
            renewed.preemption_reason = "guaranteed demand of project kaist-llm for 8 H100-SXM-80GB"
            yield broker_pb2.GrantChange(
                type=broker_pb2.GRANT_CHANGE_TYPE_PREEMPTION_NOTICE, revision="1700000000001-0", grant=renewed, at=NOW
            )

    async def ReleaseGrant(self, request: Any, context: grpc.aio.ServicerContext) -> broker_pb2.Grant:
        await self.rec.enter("ReleaseGrant", request, context)
        grant = self._find(request.id)
        if grant is None:
            await self._missing(context, request.id)
        assert grant is not None
        if grant.state == broker_pb2.GRANT_STATE_ACTIVE:
            grant.state = broker_pb2.GRANT_STATE_ENDED
            grant.ended_at.FromDatetime(NOW + timedelta(minutes=30))
            grant.end_reason = "released"
        return grant


def _node(node_id: str, sku: str, kind: str, holders: list[str], unhealthy: int = 0) -> inventory_pb2.Node:
    devices = [
        inventory_pb2.Device(id=f"{node_id}/{kind}{i}", sku=sku, index=i, healthy=i >= unhealthy, holder=holder)
        for i, holder in enumerate(holders)
    ]
    return inventory_pb2.Node(
        id=node_id,
        site="daejeon",
        rack=node_id[:-4],
        devices=devices,
        generation=7,
        schedulable=True,
        hall="hall-a" if kind == "gpu" else "hall-n",
        sku=sku,
    )


class FakeInventory(inventory_pb2_grpc.InventoryServiceServicer):
    def __init__(self, recorder: Recorder) -> None:
        self.rec = recorder
        self.nodes = [
            _node("h100-r01-n01", "H100-SXM-80GB", "gpu", ["gr_a", "gr_a", "", ""]),
            _node("h100-r01-n02", "H100-SXM-80GB", "gpu", ["", "", "", ""], unhealthy=1),
            _node("rngd-r02-n01", "RNGD", "npu", ["", ""]),
        ]

    async def ListSkus(self, request: Any, context: grpc.aio.ServicerContext) -> inventory_pb2.ListSkusResponse:
        await self.rec.enter("ListSkus", request, context)
        return inventory_pb2.ListSkusResponse(
            skus=[
                inventory_pb2.Sku(name="H100-SXM-80GB", vendor="nvidia", model="H100 SXM", memory_gib=80, kind="gpu"),
                inventory_pb2.Sku(name="RNGD", vendor="furiosa", model="RNGD", memory_gib=48, kind="npu"),
            ]
        )

    async def ListNodes(self, request: Any, context: grpc.aio.ServicerContext) -> inventory_pb2.ListNodesResponse:
        await self.rec.enter("ListNodes", request, context)
        matching = [n for n in self.nodes if not request.sku or any(d.sku == request.sku for d in n.devices)]
        page, token = _page(matching, request.page_size, request.page_token, default_size=2)
        return inventory_pb2.ListNodesResponse(nodes=page, next_page_token=token)

    async def GetCapacity(self, request: Any, context: grpc.aio.ServicerContext) -> inventory_pb2.GetCapacityResponse:
        await self.rec.enter("GetCapacity", request, context)
        capacity: dict[str, inventory_pb2.SkuCapacity] = {}
        for n in self.nodes:
            sku = n.devices[0].sku
            c = capacity.setdefault(sku, inventory_pb2.SkuCapacity(sku=sku))
            c.nodes += 1
            c.devices += len(n.devices)
            c.free += sum(1 for d in n.devices if d.healthy and not d.holder)
            c.unhealthy += sum(1 for d in n.devices if not d.healthy)
        return inventory_pb2.GetCapacityResponse(skus=list(capacity.values()))

    async def QueryCapacity(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.QueryCapacityResponse:
        await self.rec.enter("QueryCapacity", request, context)
        rows: dict[tuple[str, str], inventory_pb2.CapacityRow] = {}
        for n in self.nodes:
            sku = n.devices[0].sku
            if request.sku and sku != request.sku:
                continue
            group = getattr(n, request.group_by) if request.group_by else ""
            r = rows.setdefault((group, sku), inventory_pb2.CapacityRow(group=group, sku=sku))
            r.nodes += 1
            r.devices += len(n.devices)
            r.free += sum(1 for d in n.devices if d.healthy and not d.holder)
            r.held += sum(1 for d in n.devices if d.healthy and d.holder)
            r.unhealthy += sum(1 for d in n.devices if not d.healthy)
            r.free_units = float(r.free)
        return inventory_pb2.QueryCapacityResponse(rows=list(rows.values()))


class FakeQuota(quota_pb2_grpc.QuotaServiceServicer):
    def __init__(self, recorder: Recorder) -> None:
        self.rec = recorder

    async def ListInstitutions(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> quota_pb2.ListInstitutionsResponse:
        await self.rec.enter("ListInstitutions", request, context)
        return quota_pb2.ListInstitutionsResponse(
            institutions=[
                quota_pb2.Institution(id="kaist", display_name="KAIST", generation=1),
                quota_pb2.Institution(id="snu", display_name="Seoul National University", generation=2),
            ]
        )

    async def ListProjects(self, request: Any, context: grpc.aio.ServicerContext) -> quota_pb2.ListProjectsResponse:
        await self.rec.enter("ListProjects", request, context)
        projects = [
            quota_pb2.Project(
                id="snu-llm",
                institution="snu",
                display_name="Korean LLM pre-training",
                device_caps={"RNGD": 8, "H100-SXM-80GB": 64},
                devices_in_use={"H100-SXM-80GB": 2},
                generation=3,
            ),
            quota_pb2.Project(
                id="kaist-vision", institution="kaist", display_name="Vision [foundation] models", generation=1
            ),
        ]
        return quota_pb2.ListProjectsResponse(
            projects=[p for p in projects if not request.institution or p.institution == request.institution]
        )


class FakeAccounting(accounting_pb2_grpc.AccountingServiceServicer):
    def __init__(self, recorder: Recorder) -> None:
        self.rec = recorder

    async def GetUsage(self, request: Any, context: grpc.aio.ServicerContext) -> accounting_pb2.GetUsageResponse:
        await self.rec.enter("GetUsage", request, context)
        rows = [
            accounting_pb2.UsageRow(
                institution="snu",
                project="snu-llm",
                sku="H100-SXM-80GB",
                device_seconds=8 * 3600.0,
                running_device_seconds=1800.0,
                grants=3,
                running_grants=1,
            ),
            accounting_pb2.UsageRow(
                institution="kaist", project="kaist-vision", sku="RNGD", device_seconds=5400.0, grants=1
            ),
        ]
        return accounting_pb2.GetUsageResponse(
            rows=[r for r in rows if not request.institution or r.institution == request.institution],
            as_of=NOW,
        )

    async def QueryLedger(self, request: Any, context: grpc.aio.ServicerContext) -> accounting_pb2.QueryLedgerResponse:
        """Cost rows of March 2026: per (institution, project, sku), or per day."""
        await self.rec.enter("QueryLedger", request, context)
        if list(request.group_by) == ["day"]:
            rows = [accounting_pb2.LedgerRow(day="2026-03-01", slice_hours=9.0, accelerator_hours=9.0, cost="24000.00")]
        else:
            rows = [
                accounting_pb2.LedgerRow(
                    institution=inst, project=project, sku=sku, slice_hours=h, accelerator_hours=h, cost=cost
                )
                for inst, project, sku, h, cost in (
                    ("kaist", "kaist-vision", "RNGD", 1.5, "1500.00"),
                    ("snu", "snu-llm", "H100-SXM-80GB", 8.0, "22500.00"),
                )
                if not request.institution or inst == request.institution
            ]
        return accounting_pb2.QueryLedgerResponse(rows=rows, currency="KRW", book_version=1)


@dataclass
class FakeMesh:
    address: str
    recorder: Recorder
    broker: FakeBroker
    inventory: FakeInventory
    quota: FakeQuota
    accounting: FakeAccounting

    @property
    def env(self) -> dict[str, str]:
        """SLICEBROKER_* variables pointing every service at this one server."""
        return {f"SLICEBROKER_{name}_ADDR": self.address for name in ("BROKER", "INVENTORY", "QUOTA", "ACCOUNTING")}


@contextmanager
def serve_fake_mesh() -> Iterator[FakeMesh]:
    """Serves all four fake services on one loopback port from a thread with its own event loop."""
    recorder = Recorder()
    mesh_box: list[FakeMesh] = []
    ready = threading.Event()
    stop: list[asyncio.Event] = []
    loop_box: list[asyncio.AbstractEventLoop] = []

    async def serve() -> None:
        server = grpc.aio.server()
        broker, inventory = FakeBroker(recorder), FakeInventory(recorder)
        quota, accounting = FakeQuota(recorder), FakeAccounting(recorder)
        broker_pb2_grpc.add_BrokerServiceServicer_to_server(broker, server)
        inventory_pb2_grpc.add_InventoryServiceServicer_to_server(inventory, server)
        quota_pb2_grpc.add_QuotaServiceServicer_to_server(quota, server)
        accounting_pb2_grpc.add_AccountingServiceServicer_to_server(accounting, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        mesh_box.append(FakeMesh(f"127.0.0.1:{port}", recorder, broker, inventory, quota, accounting))
        stop.append(asyncio.Event())
        loop_box.append(asyncio.get_running_loop())
        ready.set()
        await stop[0].wait()
        await server.stop(0)

    thread = threading.Thread(target=lambda: asyncio.run(serve()), name="fake-mesh", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("fake mesh did not start")
    try:
        yield mesh_box[0]
    finally:
        loop_box[0].call_soon_threadsafe(stop[0].set)
        thread.join(10)


@contextmanager
def closed_port() -> Iterator[str]:
    """A loopback address nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    yield address
