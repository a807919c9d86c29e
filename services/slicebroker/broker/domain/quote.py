"""Quotes: what a request would cost and when it would likely start, without submitting it.

A quote validates the request exactly as RequestGrant does and then only reads: nothing is written
and no quota is reserved. Per acceptable accelerator, in order:

1. quota: quota's CheckReserve answers what its Reserve would answer RequestGrant's reservation now
   (the same evaluation, nothing written), so every rule of quota counts — states, caps on the SKU,
   its family ("gpu", "npu") and normalised units ("accel"), user caps, borrowing limits, budgets.
   A refusal is part of the answer (`refusal_reason`, `refusal_message`: quota's own words, as
   RequestGrant would give them), not an error; what quota would warn of (a soft budget used up,
   borrowing that makes the grant preemptible) becomes the quote's warnings. A request that may
   queue and is refused only because its own quota is lent to borrowers would wait, as RequestGrant
   would queue it;
2. start: room on the broker's snapshot now (and no queued request ahead for that accelerator)
   means it would start at once; else it would join the queue, whose estimate (leases running out)
   gives the expected start;
3. price: accounting's Rate prices the lease with the price book.

The alternative quoted is the first that quota allows and that could start soonest. Each
alternative is checked against quota as it is now, on its own, all in one CheckReserve call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from slicebroker.broker.domain.grants import Access, GrantService
from slicebroker.broker.domain.model import Choice, Grant, GrantRequest, GrantState, PriorityClass, Shape
from slicebroker.broker.domain.placer import PlaceJob, Placer, choose
from slicebroker.broker.domain.ports import GrantStore, QuotaPort, Reserved, ReserveItem
from slicebroker.broker.domain.preemption import Reclaim
from slicebroker.core.catalogue import canonical_kind
from slicebroker.core.errors import SlicebrokerError


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


class PricingPort(Protocol):
    async def rate(
        self, institution: str, sku: str, slice_kind: str, count: int, duration_ms: int, priority_class: str
    ) -> Price: ...


# The queue's own estimate of when a request at its head would start (Dispatcher); None: unknown.
Estimate = Callable[[Grant, int], Awaitable[int | None]]


# -- pure parts ------------------------------------------------------------------------------------


def price_slice_kind(shape: Shape) -> str:
    """The slice kind as the price book names it: whole, mig-<profile>, npu-<profile>, fraction-<x>."""
    return canonical_kind(shape.kind.value, shape.quota_shape)


def quota_warnings(request: GrantRequest, reserved: Reserved) -> tuple[str, ...]:
    """What quota's yes says beyond yes, as a quote's warnings: its own (soft budgets used up), and
    that a standard request would borrow beyond its quota and so be preemptible (a preemptible
    request is that anyway, and a guaranteed one never borrows)."""
    borrows = reserved.preemptible and request.priority is PriorityClass.STANDARD
    return reserved.warnings + ((f"{request.project} would borrow beyond its quota: preemptible",) if borrows else ())


# -- the service -----------------------------------------------------------------------------------


class QuoteService:
    def __init__(
        self,
        grants: GrantService,
        placer: Placer,
        store: GrantStore,
        quota: QuotaPort,
        pricing: PricingPort,
        estimate: Estimate,
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
        self._clock = clock
        self._queue_scan = queue_scan

    async def quote(self, access: Access = None, *, user: str = "", **request: Any) -> Quote:
        """Quotes a request given as RequestGrant's arguments (validated the same way); `user` is
        the member asking, whose cap quota checks as it would for RequestGrant."""
        now = self._clock()
        checked = self._grants.check_request(now_ms=now, **request)
        institution = await self._grants.institution_of(checked.project)
        if access is not None:
            access(institution, checked.project)
        # The reservation RequestGrant would make for each alternative (grants.py), its id aside.
        ttl_s = self._grants.limits.reservation_ttl_s
        items = [
            ReserveItem("", checked.project, c.sku, c.count, ttl_s, checked.priority, checked.shape.quota_shape, user)
            for c in checked.choices
        ]
        verdicts = await self._quota.check(items)
        quotes: list[Quote] = []
        for choice, verdict in zip(checked.choices, verdicts, strict=True):
            quote = await self._quote_one(checked, choice, verdict, institution, now)
            if checked.start_after_ms > now and not quote.refusal_reason:
                # It waits until then at least; from then on, as it would now (the best guess).
                later = max(quote.estimated_start_ms, checked.start_after_ms)
                quote = replace(quote, available_now=False, estimated_start_ms=later)
            quotes.append(quote)
        allowed = [q for q in quotes if not q.refusal_reason]
        if not allowed:
            return quotes[0]
        return min(allowed, key=lambda q: (not q.available_now, q.estimated_start_ms or 1 << 62))

    async def _quote_one(
        self, request: GrantRequest, choice: Choice, verdict: Reserved | SlicebrokerError, institution: str, now: int
    ) -> Quote:
        refused = verdict if isinstance(verdict, SlicebrokerError) else None
        # Refused only because its own quota is lent to borrowers: RequestGrant queues such a
        # request (when it may queue) until that quota is reclaimed, so it would wait, not fail.
        lent = refused is not None and request.queue and Reclaim.of(refused) is not None
        warnings = quota_warnings(request, verdict) if isinstance(verdict, Reserved) else ()
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
        if refused is not None and not lent:
            return Quote(
                choice.sku, choice.count, price, False, 0, 0, "", refused.reason.value, refused.message, warnings
            )
        if refused is not None:
            # When borrowers give it back (or are preempted for it) is not something leases tell.
            reason_text = f"waiting for its quota lent to borrowers: {refused.message}"
            position = len(await self._store.queued(self._queue_scan)) + 1
            return Quote(choice.sku, choice.count, price, False, 0, position, reason_text, warnings=warnings)
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
