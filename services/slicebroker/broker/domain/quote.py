"""Quotes: what a request would cost and when it would likely start, without submitting it.

A quote validates the request exactly as RequestGrant does and then only reads: nothing is written
and no quota is reserved. Per acceptable accelerator, in order:

1. quota: the project's standing and its ancestors' (GetStandings) say whether quota or budget
   would refuse it — a state that takes no grants, a hard budget used up, a hard cap, a borrowing
   limit, or a guaranteed request beyond nominal quota. A refusal is part of the answer
   (`refusal_reason`, `refusal_message`), not an error;
2. start: room on the broker's snapshot now (and no queued request ahead for that accelerator)
   means it would start at once; else it would join the queue, whose estimate (leases running out)
   gives the expected start;
3. price: accounting's Rate prices the lease with the price book.

The alternative quoted is the first that quota allows and that could start soonest. The check
against standings covers the limits set on the SKU's own class; limits on a family or on
normalised units ("gpu", "accel") are only enforced by the real reservation, so a quote may say
yes where the request is then refused on those (the quote says so in its warnings).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Protocol

from slicebroker.broker.domain.grants import Access, GrantService
from slicebroker.broker.domain.model import Choice, Grant, GrantRequest, GrantState, PriorityClass, Shape, SkuShapes
from slicebroker.broker.domain.placer import PlaceJob, Placer, choose
from slicebroker.broker.domain.ports import GrantStore
from slicebroker.core.errors import SlicebrokerError
from slicebroker.core.reasons import Reason

# How far up the tenant tree a standing is read (project, institution, cohorts).
MAX_TREE_DEPTH = 6
MIG_COMPUTE_SLICES = 7


@dataclass(frozen=True, slots=True)
class Limit:
    """One quota entry of a tenant, amounts in devices (None: unlimited)."""

    resource_class: str
    nominal: Fraction
    borrowing_limit: Fraction | None
    hard_cap: Fraction | None


@dataclass(frozen=True, slots=True)
class TenantStanding:
    """What quota's GetStandings says of one tenant, as far as a quote needs it."""

    tenant: str
    parent: str
    state: str  # "active", "on_hold", "closed"
    limits: tuple[Limit, ...] = ()
    entitlement: Mapping[str, Fraction] = field(default_factory=dict)
    in_use: Mapping[str, Fraction] = field(default_factory=dict)
    hard_budget: bool = False
    budget_left_hours: float | None = None


@dataclass(frozen=True, slots=True)
class Price:
    currency: str
    cost: float
    cost_per_hour: float
    accelerator_hours: float
    tier: str
    book_version: int


@dataclass(frozen=True, slots=True)
class Quote:
    sku: str
    count: int
    price: Price | None
    available_now: bool
    estimated_start_ms: int  # 0: unknown
    queue_position: int = 0
    waiting_reason: str = ""
    refusal_reason: str = ""
    refusal_message: str = ""
    warnings: tuple[str, ...] = ()


class StandingsPort(Protocol):
    async def standings(self, tenants: Sequence[str]) -> list[TenantStanding]: ...


class PricingPort(Protocol):
    async def rate(
        self, institution: str, sku: str, slice_kind: str, count: int, duration_ms: int, priority_class: str
    ) -> Price: ...


# The queue's own estimate of when a request at its head would start (Dispatcher); None: unknown.
Estimate = Callable[[Grant, int], Awaitable[int | None]]


# -- pure parts ------------------------------------------------------------------------------------


def price_slice_kind(shape: Shape) -> str:
    """The slice kind as the price book names it: whole, mig-<profile>, npu-<profile>, fraction-<x>."""
    if shape.whole:
        return "whole"
    if shape.kind.value == "share":
        return f"fraction-{shape.compute / 1000:g}"
    return f"{'mig' if shape.kind.value == 'mig' else 'npu'}-{shape.profile}"


def device_amount(shape: Shape, count: int, shapes: SkuShapes | None) -> Fraction:
    """What `count` units of `shape` count against a quota kept in devices (slices by compute share)."""
    if shape.whole:
        return Fraction(count)
    if shape.kind.value == "share":
        return Fraction(shape.compute, 1000) * count
    slices = shapes.geometry[0] if shapes is not None and shapes.geometry[0] else MIG_COMPUTE_SLICES
    return Fraction(shape.compute, slices) * count


def _devices(amount: Fraction) -> str:
    return f"{float(amount):g}"


def quota_refusal(
    chain: Sequence[TenantStanding], sku: str, amount: Fraction, priority: PriorityClass
) -> tuple[str, str, tuple[str, ...]]:
    """(reason, message, warnings) of what quota would say to `amount` devices of `sku` for the
    first tenant of `chain` (its ancestors follow); reason "" when it would not refuse."""
    warnings: list[str] = []
    constrained = False
    for standing in chain:
        who = standing.tenant
        if standing.state not in ("", "active"):
            return (
                Reason.TENANT_NOT_ACTIVE.value,
                f"{who} is {standing.state.replace('_', ' ')}: it takes no new grants",
                (),
            )
        if standing.budget_left_hours is not None and standing.budget_left_hours <= 0:
            if standing.hard_budget:
                return (
                    Reason.BUDGET_EXHAUSTED.value,
                    f"the budget of {who} is used up ({standing.budget_left_hours:g} h left); a top-up re-opens it",
                    (),
                )
            warnings.append(f"soft budget of {who} is used up ({standing.budget_left_hours:g} h left)")
        in_use = standing.in_use.get(sku, Fraction(0))
        after = in_use + amount
        for limit in standing.limits:
            if limit.resource_class != sku:
                constrained = constrained or limit.resource_class in ("gpu", "npu", "accel")
                continue
            constrained = True
            entitled = standing.entitlement.get(sku, limit.nominal)
            if limit.hard_cap is not None and after > limit.hard_cap:
                return _exceeded(who, sku, "hard cap", limit.hard_cap - in_use, amount)
            if priority is PriorityClass.GUARANTEED and after > entitled:
                return _exceeded(
                    who, sku, "nominal quota (guaranteed requests never borrow)", entitled - in_use, amount
                )
            if limit.borrowing_limit is not None and after > entitled + limit.borrowing_limit:
                return _exceeded(who, sku, "borrowing limit", entitled + limit.borrowing_limit - in_use, amount)
            if after > entitled:
                warnings.append(f"{who} would borrow {_devices(after - entitled)} {sku} beyond its quota (preemptible)")
    if not constrained:
        who = chain[0].tenant if chain else "the project"
        return (
            Reason.QUOTA_EXCEEDED.value,
            f"{_devices(amount)} {sku} for {who}: no quota for this SKU anywhere on its path",
            (),
        )
    return "", "", tuple(warnings)


def _exceeded(who: str, sku: str, limit: str, left: Fraction, amount: Fraction) -> tuple[str, str, tuple[str, ...]]:
    left = max(left, Fraction(0))
    return (
        Reason.QUOTA_EXCEEDED.value,
        f"the {limit} of {who} on {sku} leaves {_devices(left)}, {_devices(amount - left)} short",
        (),
    )


# -- the service -----------------------------------------------------------------------------------


class QuoteService:
    def __init__(
        self,
        grants: GrantService,
        placer: Placer,
        store: GrantStore,
        quota: StandingsPort,
        pricing: PricingPort,
        estimate: Estimate,
        catalogue: Callable[[], Mapping[str, SkuShapes]],
        clock: Callable[[], int],
        *,
        queue_scan: int = 1000,
    ) -> None:
        self._grants = grants
        self._placer = placer
        self._store = store
        self._quota = quota
        self._pricing = pricing
        self._estimate = estimate
        self._catalogue = catalogue
        self._clock = clock
        self._queue_scan = queue_scan

    async def quote(self, access: Access = None, **request: Any) -> Quote:
        """Quotes a request given as RequestGrant's arguments (validated the same way)."""
        now = self._clock()
        checked = self._grants.check_request(now_ms=now, **request)
        institution = await self._grants.institution_of(checked.project)
        if access is not None:
            access(institution, checked.project)
        chain = await self._chain(checked.project)
        quotes: list[Quote] = []
        for choice in checked.choices:
            quote = await self._quote_one(checked, choice, chain, institution, now)
            if checked.start_after_ms > now and not quote.refusal_reason:
                # It waits until then at least; from then on, as it would now (the best guess).
                later = max(quote.estimated_start_ms, checked.start_after_ms)
                quote = replace(quote, available_now=False, estimated_start_ms=later)
            quotes.append(quote)
        allowed = [q for q in quotes if not q.refusal_reason]
        if not allowed:
            return quotes[0]
        return min(allowed, key=lambda q: (not q.available_now, q.estimated_start_ms or 1 << 62))

    async def _chain(self, project: str) -> list[TenantStanding]:
        chain: list[TenantStanding] = []
        tenant = project
        while tenant and len(chain) < MAX_TREE_DEPTH:
            found = await self._quota.standings([tenant])
            if not found:
                break
            chain.append(found[0])
            tenant = found[0].parent
        return chain

    async def _quote_one(
        self, request: GrantRequest, choice: Choice, chain: Sequence[TenantStanding], institution: str, now: int
    ) -> Quote:
        shapes = self._catalogue().get(choice.sku)
        amount = device_amount(request.shape, choice.count, shapes)
        reason, message, warnings = quota_refusal(chain, choice.sku, amount, request.priority)
        price: Price | None = None
        try:
            price = await self._pricing.rate(
                institution,
                choice.sku,
                price_slice_kind(request.shape),
                choice.count,
                request.lease_ms,
                request.priority.value,
            )
        except SlicebrokerError as err:
            warnings += (f"no price: {err.message}",)
        if reason:
            return Quote(choice.sku, choice.count, price, False, 0, 0, "", reason, message, warnings)
        ahead = await self._queued_ahead(choice.sku)
        if not ahead and self._fits_now(request, choice):
            return Quote(choice.sku, choice.count, price, True, now, warnings=warnings)
        # It would wait: behind what is queued for the same accelerator, until enough leases end.
        head = Grant(
            id="quote",
            project=request.project,
            sku=choice.sku,
            count=choice.count + ahead,
            lease_ms=request.lease_ms,
            idempotency_key="",
            state=GrantState.QUEUED,
            created_ms=now,
        )
        eta = await self._estimate(head, now)
        free = self._placer.snapshot.free_count(choice.sku)
        what = choice.sku if request.shape.whole else f"{choice.sku} {price_slice_kind(request.shape)}"
        reason_text = f"waiting for {choice.count} x {what}; {free} whole devices free now"
        if ahead:
            reason_text += f"; {ahead} queued ahead"
        if eta is not None:
            reason_text += f"; expected to start in ~{max(1, round((eta - now) / 60_000))} min"
        queued = await self._store.queued(self._queue_scan)
        return Quote(
            choice.sku,
            choice.count,
            price,
            False,
            eta or 0,
            queue_position=len(queued) + 1,
            waiting_reason=reason_text,
            warnings=warnings,
        )

    async def _queued_ahead(self, sku: str) -> int:
        """Devices of `sku` that queued requests wait for (they are served first)."""
        if sku in self._grants.blocked_heads:
            ids = await self._store.queued(self._queue_scan)
            waiting = [g for g in await self._store.get_many(ids) if g is not None and g.sku == sku]
            return sum(g.count for g in waiting) or 1
        return 0

    def _fits_now(self, request: GrantRequest, choice: Choice) -> bool:
        """Whether the snapshot has room now, decided as the placer would; reads only."""
        job = PlaceJob("", choice.sku, choice.count, request.topology, request.shape, request.host)
        return choose(self._placer.snapshot, job) is not None
