"""`AsyncClient`: the asyncio SDK (grpc.aio), method for method the same as `Client`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar

import grpc

from slicebroker.client import _accounting as accounting
from slicebroker.client import _convert as convert
from slicebroker.client import _inventory as inventory
from slicebroker.client import _ops as ops
from slicebroker.client import _quota as quota
from slicebroker.client import _watch as resuming
from slicebroker.client._base import CHANNEL_OPTIONS, ClientBase
from slicebroker.client._errors import from_rpc_error
from slicebroker.client._lease import Lease
from slicebroker.client._models import (
    Grant,
    GrantChange,
    GrantState,
    HostResources,
    Institution,
    Node,
    Placement,
    Project,
    Quote,
    Shape,
    Sku,
    SkuCapacity,
    Usage,
)
from slicebroker.client._options import ClientOptions
from slicebroker.client._scope import DEFAULT_RENEW_FRACTION, AsyncGrantLease, LeaseEvent, LeaseLostError

T = TypeVar("T")


class AsyncClient(ClientBase):
    """An asyncio client of the slicebroker mesh; see `Client` for the behaviour of each method.

    Channels open on first use inside the running event loop and close with `await close()` or the
    `async with` block::

        async with AsyncClient.from_env() as sb:
            grant = await sb.request_grant("snu-llm", "H100-SXM-80GB", count=8, lease="2h")
            async for g in sb.list_grants(project="snu-llm"):
                ...
    """

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AsyncClient:
        """A client configured from SLICEBROKER_* environment variables (see `ClientOptions.from_env`)."""
        return cls(ClientOptions.from_env(environ))

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        for channel in self._forget_channels():
            await channel.close()

    # Grants (broker)

    async def request_grant(
        self,
        project: str,
        sku: str,
        count: int = 1,
        lease: Lease = timedelta(hours=1),
        idempotency_key: str | None = None,
        *,
        queue: bool = False,
        placement: Placement | str = Placement.ANYWHERE,
        required: bool = True,
        alternatives: Sequence[tuple[str, int]] = (),
        priority: str = "",
        shape: Shape | None = None,
        host: HostResources | None = None,
        start_after: datetime | None = None,
        devices_per_member: int = 0,
    ) -> Grant:
        """Grants `count` whole devices of `sku` to `project` for `lease` (a timedelta, seconds, or
        text like "2h"). Without `idempotency_key` a fresh one is chosen; either way every retry
        sends the same key, so a retry never makes a second grant. Pass your own key to make a
        request safe to repeat across processes.

        With `queue=True`, a request within quota that finds no free capacity is answered with a
        QUEUED grant (see `queue_position`, `waiting_reason`) that becomes ACTIVE when served,
        instead of an INSUFFICIENT_CAPACITY refusal; `lease()` waits for that.

        `placement` keeps a gang together (same-node, same-nvlink-domain, same-leaf) or apart
        (spread); `required=False` makes it a preference. `alternatives` are further (sku, count)
        pairs tried in order ("H200, else 16 x A100"). `priority` is "guaranteed", "standard" or
        "preemptible". `shape` asks for slices instead of whole devices: `Shape.mig("1g.10gb")`,
        `Shape.share(0.25)`, `Shape.npu("2core.12gb")`. `host` asks for host CPU and memory on the node
        with each slice (`HostResources.of(cpu=4, memory="32Gi")`); `start_after` (an aware datetime)
        asks it to be served no earlier (it waits in the queue until then). `devices_per_member`
        splits the devices into members of that many, each member's devices on one node (a gang of
        pods that each need several devices); `count` must be a multiple of it, and `placement`
        then applies to the members (spread: one member per node)."""
        extras = ops.RequestExtras(
            placement, required, alternatives, priority, shape, host, start_after, devices_per_member
        )
        return await self._run(ops.request_grant(project, sku, count, lease, idempotency_key, queue, extras))

    async def quote(
        self,
        project: str,
        sku: str,
        count: int = 1,
        lease: Lease = timedelta(hours=1),
        *,
        placement: Placement | str = Placement.ANYWHERE,
        required: bool = True,
        alternatives: Sequence[tuple[str, int]] = (),
        priority: str = "",
        shape: Shape | None = None,
        host: HostResources | None = None,
        devices_per_member: int = 0,
    ) -> Quote:
        """What `request_grant` with the same arguments would cost and when it would likely start;
        nothing is submitted. Over quota or budget is not an error: see `refused` and
        `refusal_message` of the answer."""
        extras = ops.RequestExtras(
            placement, required, alternatives, priority, shape, host, devices_per_member=devices_per_member
        )
        return await self._run(ops.quote(project, sku, count, lease, extras))

    def watch(
        self,
        project: str | None = None,
        grant_id: str | None = None,
        *,
        from_revision: str = "",
        reconnect_timeout: float = 60.0,
    ) -> AsyncIterator[GrantChange]:
        """Changes to grants (all the caller may see, a project's, or one grant's) as they happen.

        Without `from_revision` it starts with a snapshot: SNAPSHOT_BEGIN, one SNAPSHOT per live
        grant, SNAPSHOT_END; then one change per event (granted, renewed, preemption notice,
        expired, released, ...). It resumes by itself after UNAVAILABLE or a broker restart from the
        last change it handed out, so nothing is missed or repeated; it gives up (raising) when it
        cannot reconnect for `reconnect_timeout` seconds. Pass a change's `revision` as
        `from_revision` to resume in another process. The stream has no deadline."""
        return self._watch(resuming.Resume(project, grant_id, from_revision, reconnect_timeout))

    async def get_grant(self, grant_id: str) -> Grant:
        return await self._run(ops.get_grant(grant_id))

    def list_grants(
        self, project: str | None = None, state: GrantState | str | None = None, *, page_size: int = 0
    ) -> AsyncIterator[Grant]:
        """Grants, newest first, fetched page by page as the iterator is consumed."""
        return self._paginate(lambda token: ops.list_grants_page(project, state, page_size, token))

    async def renew_grant(self, grant_id: str, lease: Lease) -> Grant:
        """Extends a live grant's lease to `lease` from now."""
        return await self._run(ops.renew_grant(grant_id, lease))

    async def release_grant(self, grant_id: str) -> Grant:
        """Ends a grant and frees its slices; releasing an ended grant returns it unchanged."""
        return await self._run(ops.release_grant(grant_id))

    def lease(
        self,
        project: str,
        sku: str,
        count: int = 1,
        lease: Lease = timedelta(minutes=10),
        *,
        idempotency_key: str | None = None,
        renew_fraction: float = DEFAULT_RENEW_FRACTION,
        on_event: Callable[[LeaseEvent], None] | None = None,
        on_lost: Callable[[LeaseLostError], None] | None = None,
        queue: bool = False,
        wait_timeout: float | None = None,
    ) -> AsyncGrantLease:
        """Holds `count` devices of `sku` for the duration of a `async with` block::

            async with sb.lease("snu-llm", "H100-SXM-80GB", count=8, lease="10m") as held:
                train(held.slices)   # renewed every `renew_fraction` of the lease meanwhile

        Entering requests the grant (raising its refusal, e.g. QUOTA_EXCEEDED, as `request_grant`
        does). With `queue=True` it waits in the broker's queue until served (at most
        `wait_timeout` seconds; "queued" events report the position). Leaving releases it, also
        on exceptions and Ctrl-C. A renewal that fails for good raises `LeaseLostError`
        in the body (or goes to `on_lost` when given); `on_event` sees each step. See
        `slicebroker.client._scope` for the details."""
        return AsyncGrantLease(
            self, project, sku, count, lease, idempotency_key, renew_fraction, on_event, on_lost, queue, wait_timeout
        )

    # Facility (inventory)

    async def capacity(self) -> list[SkuCapacity]:
        """Free and total devices per SKU."""
        return await self._run(ops.capacity())

    def nodes(self, sku: str | None = None, *, page_size: int = 0) -> AsyncIterator[Node]:
        """Nodes in id order (only those with devices of `sku`, if given), fetched page by page."""
        return self._paginate(lambda token: ops.nodes_page(sku, page_size, token))

    async def skus(self) -> list[Sku]:
        return await self._run(ops.skus())

    async def capacity_by(self, group_by: str = "", **subtree: str) -> list[inventory.CapacityRow]:
        """Capacity per SKU (and per `group_by`: site, hall, pod, rack or leaf) under a subtree
        given as keywords (site=, hall=, pod=, rack=, leaf=, sku=)."""
        return await self._run(inventory.query_capacity(group_by, **subtree))

    async def export_facility(self) -> inventory.FacilityExport:
        return await self._run(inventory.export_facility())

    async def load_facility(self, yaml: str) -> inventory.FacilityLoad:
        return await self._run(inventory.load_facility(yaml))

    async def register_node(
        self,
        node_id: str,
        sku: str,
        device_count: int,
        topology: inventory.NodeTopology,
        *,
        cpu_milli: int = 0,
        memory_mib: int = 0,
        mig_layout: Mapping[str, int] | None = None,
    ) -> inventory.NodeState:
        """Registers a node (idempotent: the same description again changes nothing), with where it
        sits, its host CPU and memory and, for a node whose GPUs a MIG manager has cut ahead of
        time, its MIG layout (profile -> instances across the node, e.g. {"1g.10gb": 7}). Every
        call says the whole node: one without `mig_layout` clears a layout registered before."""
        op = inventory.register_node(
            node_id, sku, device_count, topology, cpu_milli=cpu_milli, memory_mib=memory_mib, mig_layout=mig_layout
        )
        return await self._run(op)

    async def get_node(self, node_id: str) -> inventory.NodeState:
        """One node as inventory has it now, with the generation a conditional change names."""
        return await self._run(inventory.get_node(node_id))

    async def set_node_state(self, node_id: str, state: str, *, expected_generation: int) -> inventory.NodeStateChange:
        """Cordons ("cordoned"), drains ("draining") or uncordons ("active") a node, only if it is
        still at `expected_generation` (else ABORTED: read it again). The answer lists the grants
        still holding devices there."""
        return await self._run(inventory.set_node_state(node_id, state, expected_generation))

    async def heartbeat(self, node_id: str, health: Sequence[tuple[str, bool]] = ()) -> inventory.NodeState:
        return await self._run(inventory.heartbeat(node_id, health))

    # Tenants (quota) and usage (accounting)

    async def usage(self, institution: str | None = None, project: str | None = None, sku: str | None = None) -> Usage:
        """Device-seconds used, per institution, project and SKU, filtered by what is given."""
        return await self._run(ops.usage(institution, project, sku))

    async def projects(self, institution: str | None = None) -> list[Project]:
        return await self._run(ops.projects(institution))

    async def institutions(self) -> list[Institution]:
        return await self._run(ops.institutions())

    # Quota: standings and administration (facility admins)

    async def standings(self, *tenants: str) -> list[quota.Standing]:
        """Entitlement, use, borrowing, budget left and fair share of tenants (all when none given)."""
        return await self._run(quota.standings(tenants))

    async def tenants(self, kind: quota.TenantKind | None = None, parent: str | None = None) -> list[quota.Tenant]:
        return await self._run(quota.list_tenants(kind, parent))

    async def upsert_tenant(
        self,
        tenant_id: str,
        kind: quota.TenantKind,
        *,
        parent: str = "",
        state: quota.TenantState = quota.TenantState.ACTIVE,
        display_name: str = "",
        weight: float = 1.0,
        expected_generation: int | None = None,
    ) -> quota.Tenant:
        """Creates or changes a cohort, institution or project; with `expected_generation`, a
        concurrent change makes it fail with `ConflictError` instead of being overwritten."""
        op = quota.upsert_tenant(tenant_id, kind, parent, state, display_name, weight, expected_generation)
        return await self._run(op)

    async def set_quota(
        self,
        tenant_id: str,
        entries: Sequence[quota.QuotaEntry] = (),
        *,
        remove: Sequence[str] = (),
        expected_generation: int | None = None,
    ) -> quota.Tenant:
        return await self._run(quota.set_quota(tenant_id, entries, remove, expected_generation))

    async def set_budget(
        self,
        tenant_id: str,
        budget: quota.Budget | None,
        *,
        roll_over: bool = False,
        expected_generation: int | None = None,
    ) -> quota.Tenant:
        return await self._run(quota.set_budget(tenant_id, budget, roll_over, expected_generation))

    async def top_up_budget(
        self, tenant_id: str, hours: float, *, expected_generation: int | None = None
    ) -> quota.Tenant:
        return await self._run(quota.top_up_budget(tenant_id, hours, expected_generation))

    async def check_capacity(self) -> list[quota.ClassCommitment]:
        """Per resource class, the guarantees of all tenants against inventory's capacity (admin)."""
        return await self._run(quota.check_capacity())

    # -- accounting: costs, quotes, statements, exports (slicebroker.client._accounting) --------

    async def costs(
        self,
        start: datetime,
        end: datetime,
        group_by: Sequence[str] = ("institution", "project", "sku"),
        *,
        institution: str | None = None,
        project: str | None = None,
        user: str | None = None,
        sku: str | None = None,
    ) -> accounting.CostReport:
        """Use and cost over [start, end) grouped by any of institution, project, user, sku, day
        (tenants see their own institution's)."""
        return await self._run(accounting.cost_report(start, end, group_by, institution, project, user, sku))

    async def rate(
        self,
        sku: str,
        count: int,
        duration: timedelta,
        *,
        institution: str | None = None,
        slice_kind: str = "",
        priority_class: str = "",
        at: datetime | None = None,
    ) -> accounting.PriceQuote:
        """What `count` slices of `sku` for `duration` from `at` (default now) would cost."""
        return await self._run(
            accounting.rate(
                sku, count, duration, institution=institution, slice_kind=slice_kind,
                priority_class=priority_class, at=at,
            )
        )  # fmt: skip

    async def statements(self, period: str, institution: str | None = None) -> list[accounting.Statement]:
        """The statements of a closed billing period ("2026-11"), one per institution."""
        return await self._run(accounting.statements(period, institution))

    async def close_period(self, period: str) -> list[accounting.Statement]:
        """Closes a finished billing period into statements (facility admins); repeating it returns them."""
        return await self._run(accounting.close_period(period))

    def export(
        self,
        period: str,
        fmt: accounting.ExportFormat | str = accounting.ExportFormat.FOCUS_CSV,
        institution: str | None = None,
        *,
        on_progress: accounting.ProgressCallback | None = None,
        timeout: float = 3600.0,
    ) -> AsyncIterator[bytes]:
        """The billing export of a period as it streams, chunk by chunk (``async for``);
        `on_progress` sees the bytes and rows so far after each chunk. A bad period or format is
        refused before any call."""
        request = accounting.export_request(period, fmt, institution)
        return self._export_chunks(request, accounting.ExportCounter(on_progress), timeout)

    async def _export_chunks(
        self, request: Any, counter: accounting.ExportCounter, deadline_s: float
    ) -> AsyncIterator[bytes]:
        call, where = self._stream_callable(accounting.EXPORT_LEDGER)
        request_id = self._new_request_id()
        try:
            async for chunk in call(request, timeout=deadline_s, metadata=self._metadata(request_id)):
                yield counter.add(chunk)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, where=where, request_id=request_id) from exc

    # -- end of accounting ----------------------------------------------------------------------

    # Plumbing

    async def _paginate(self, page: Callable[[str], ops.Op[ops.Page[T]]]) -> AsyncIterator[T]:
        token = ""
        while True:
            items, token = await self._run(page(token))
            for item in items:
                yield item
            if not token:
                return

    async def _watch(self, resume: resuming.Resume) -> AsyncIterator[GrantChange]:
        call, where = self._callable(ops.WATCH_GRANTS, streaming=True)
        while True:
            request_id = self._new_request_id()
            stream = call(resume.request(), metadata=self._metadata(request_id))
            error = None
            try:
                async for message in stream:
                    yield resume.seen(convert.grant_change(message))
            except grpc.RpcError as exc:
                error = from_rpc_error(exc, where=where, request_id=request_id)
            finally:
                stream.cancel()  # the caller stopped iterating (or the stream is over): free it
            await asyncio.sleep(resume.next_delay(error))

    async def _run(self, op: ops.Op[T]) -> T:
        call, where = self._callable(op.rpc)
        request_id = self._new_request_id()
        metadata = self._metadata(request_id)
        deadline = time.monotonic() + self._options.timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await call(op.request, timeout=deadline - time.monotonic(), metadata=metadata)
            except grpc.RpcError as exc:
                error = from_rpc_error(exc, where=where, request_id=request_id)
                delay = self._options.retries.next_delay(attempt, error.code, deadline - time.monotonic())
                if delay is None:
                    raise error from exc
                await asyncio.sleep(delay)
            else:
                return op.convert(response)

    def _open_channel(self, target: str) -> grpc.aio.Channel:
        credentials = self._options.channel_credentials()
        if credentials is None:
            return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        return grpc.aio.secure_channel(target, credentials, options=CHANNEL_OPTIONS)
