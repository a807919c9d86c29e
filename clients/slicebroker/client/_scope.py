"""Leases made easy: `with client.lease(...) as held:` and `async with aclient.lease(...) as held:`.

On entry the grant is requested (one idempotency key for the request and all its retries); while the
body runs, the grant is renewed in the background every `renew_fraction` of the lease; on exit —
normal, exception, Ctrl-C or cancellation — it is released.

A renewal that fails for good (the grant ended, was reclaimed, or the lease lapsed while the
services were unreachable) is never swallowed. Without `on_lost`, a `LeaseLostError` is raised in
the body: in the blocking client, in the thread that entered the `with`, at its next Python
instruction (a blocking C call such as a long `time.sleep` or a socket read finishes first); in the
asyncio client, the task that entered the `async with` is cancelled and `LeaseLostError` comes out
of the block instead of `CancelledError`. With `on_lost`, the callback gets the error instead (from
the renewal thread or task) and the body runs on; `held.check()` raises it on demand either way.

Waiting: by default a request is granted at once or refused (e.g. INSUFFICIENT_CAPACITY), so
entering the block either holds devices or raises. With `queue=True` a request within quota that
finds no free capacity waits in the broker's queue (where the broker supports it; an older broker
ignores the flag and refuses): entering the block then polls the grant, with backoff, until it is
served, reporting each change of queue position to `on_event` as a "queued" event, and gives up after
`wait_timeout` seconds (leaving the queue) with a `DeadlineExceededError` (reason
QUEUE_WAIT_TIMEOUT). Ctrl-C or a cancellation while waiting leaves the queue too.

Preemption: a grant that borrows capacity may get a preemption notice (guaranteed demand elsewhere
wants it back). A renewal brings the notice: `held.preemption_deadline` (when the slices are
taken) and `held.preemption_reason` are set, and `on_event` gets one "preemption_notice" event —
the time to checkpoint. At the deadline the grant ends; the next renewal then fails for good and
the lease is lost as above.

`on_event` sees every step: "requesting", "queued", "granted", "renewed", "preemption_notice",
"renew_failed", "lost", "released".
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Literal

import grpc

from slicebroker.client._errors import DeadlineExceededError, FailedPreconditionError, SlicebrokerError
from slicebroker.client._lease import Lease, lease_to_timedelta
from slicebroker.client._models import Grant, GrantState, Slice

if TYPE_CHECKING:
    from slicebroker.client._async import AsyncClient
    from slicebroker.client._sync import Client

LEASE_LOST = "LEASE_LOST"
"""Reason of `LeaseLostError`."""

DEFAULT_RENEW_FRACTION = 1 / 3
"""Renew when a third of the lease has passed: two more tries fit before it lapses."""

# Errors after which a renewal may still succeed later; anything else ends the grant for us.
_TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED})
# Shortest pause between renewals, so that tiny leases do not spin.
_MIN_PAUSE_S = 0.02

QUEUE_WAIT_TIMEOUT = "QUEUE_WAIT_TIMEOUT"
"""Reason of the `DeadlineExceededError` of a `lease(queue=True)` that was not served in time."""

# Polling a queued grant: first pause, growth, ceiling (seconds).
_POLL_FIRST_S, _POLL_GROWTH, _POLL_MAX_S = 0.1, 1.5, 2.0

EventKind = Literal[
    "requesting", "queued", "granted", "renewed", "preemption_notice", "renew_failed", "lost", "released"
]


class LeaseLostError(SlicebrokerError):
    """The grant of a `lease()` block could not be kept: a renewal was refused for good, or the
    lease lapsed while renewals failed. `cause` is the last renewal error; `grant_id` the grant."""

    def __init__(self, grant_id: str = "", cause: SlicebrokerError | None = None) -> None:
        why = f"{cause.reason}: {cause.message}" if cause else "the lease lapsed"
        super().__init__(
            grpc.StatusCode.FAILED_PRECONDITION,
            LEASE_LOST,
            f"lost the lease on grant {grant_id or '?'} ({why})",
            {"grant_id": grant_id, "cause": cause.reason if cause else ""},
        )
        self.grant_id = grant_id
        self.cause = cause

    @property
    def hint(self) -> str:
        return "the devices may already serve someone else: stop using them and request a new grant"

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.grant_id, self.cause))


@dataclass(frozen=True, slots=True)
class LeaseEvent:
    """One step of a `lease()` block, given to its `on_event` callback."""

    kind: EventKind
    grant: Grant | None
    """The grant as of this step; None while requesting."""
    error: SlicebrokerError | None
    """For "renew_failed" the renewal error, for "lost" the `LeaseLostError`."""
    at: datetime
    """When it happened (UTC)."""


def _event(kind: EventKind, grant: Grant | None, error: SlicebrokerError | None = None) -> LeaseEvent:
    return LeaseEvent(kind, grant, error, datetime.now(UTC))


class _Held:
    """What the sync and async scopes share: the request, the latest grant, the renewal schedule."""

    def __init__(
        self,
        project: str,
        sku: str,
        count: int,
        lease: Lease,
        idempotency_key: str | None,
        renew_fraction: float,
        on_event: Callable[[LeaseEvent], None] | None,
        on_lost: Callable[[LeaseLostError], None] | None,
        queue: bool = False,
        wait_timeout: float | None = None,
    ) -> None:
        if not 0 < renew_fraction < 1:
            raise ValueError("renew_fraction must be between 0 and 1 (exclusive)")
        self._request = (project, sku, count)
        self._lease = lease_to_timedelta(lease)
        self._key = idempotency_key
        self._interval = max(self._lease.total_seconds() * renew_fraction, _MIN_PAUSE_S)
        self._on_event = on_event
        self._on_lost = on_lost
        self._queue = queue
        self._wait_timeout = wait_timeout
        self._grant: Grant | None = None
        self._lost: LeaseLostError | None = None
        # Monotonic instant the lease lapses at, as this process sees it: measured from before the
        # call that set it, so it is never later than the server's.
        self._lapses_at = 0.0
        self.renewals = 0

    # What the body reads

    @property
    def grant(self) -> Grant:
        """The grant as of its last renewal."""
        if self._grant is None:
            raise RuntimeError("the lease is not held: use it in a with block")
        return self._grant

    @property
    def id(self) -> str:
        return self.grant.id

    @property
    def slices(self) -> tuple[Slice, ...]:
        return self.grant.slices

    @property
    def expires_at(self) -> datetime | None:
        return self.grant.expires_at

    @property
    def preemption_deadline(self) -> datetime | None:
        """When the slices will be taken back, once the grant has a preemption notice; else None."""
        return self.grant.preemption_deadline

    @property
    def preemption_reason(self) -> str:
        return self.grant.preemption_reason

    @property
    def lost(self) -> LeaseLostError | None:
        """The error that ended the lease, or None while it holds."""
        return self._lost

    @property
    def lease(self) -> timedelta:
        return self._lease

    def check(self) -> None:
        """Raises the `LeaseLostError` if the lease was lost; cheap, call it between work steps."""
        if self._lost is not None:
            raise self._lost

    # Waiting in the queue

    def _waiting(self, grant: Grant, started: float, last: tuple[int, str] | None) -> tuple[int, str] | None:
        """Records a poll of a queued grant; returns what was reported, raises on a timeout or when
        the grant left the queue without being served."""
        self._grant = grant
        if grant.state is GrantState.QUEUED:
            now = (grant.queue_position, grant.waiting_reason)
            if now != last:
                self._emit("queued")
            if self._wait_timeout is not None and time.monotonic() - started >= self._wait_timeout:
                raise DeadlineExceededError(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    QUEUE_WAIT_TIMEOUT,
                    f"grant {grant.id} still queued (position {grant.queue_position}) after {self._wait_timeout:g} s",
                    {"grant_id": grant.id, "queue_position": str(grant.queue_position)},
                )
            return now
        if grant.state is not GrantState.ACTIVE:
            raise FailedPreconditionError(
                grpc.StatusCode.FAILED_PRECONDITION,
                "GRANT_NOT_ACTIVE",
                f"grant {grant.id} left the queue {grant.state.value}"
                + (f" ({grant.end_reason})" if grant.end_reason else ""),
                {"grant_id": grant.id, "state": grant.state.value},
            )
        return last

    def _held_from(self, grant: Grant) -> None:
        """The grant is active: the lease runs from the server's expiry, as this process's clock sees it."""
        self._grant = grant
        if grant.expires_at is not None:
            left = (grant.expires_at - datetime.now(UTC)).total_seconds()
            self._lapses_at = time.monotonic() + min(left, self._lease.total_seconds())
        self._emit("granted")

    # Renewal bookkeeping

    def _emit(self, kind: EventKind, error: SlicebrokerError | None = None) -> None:
        if self._on_event is not None:
            self._on_event(_event(kind, self._grant, error))

    def _renewed(self, grant: Grant, sent_at: float) -> float:
        noticed = self._grant is not None and self._grant.preemption_deadline is not None
        self._grant = grant
        self._lapses_at = sent_at + self._lease.total_seconds()
        self.renewals += 1
        self._emit("renewed")
        if grant.preemption_deadline is not None and not noticed:
            self._emit("preemption_notice")
        return sent_at + self._interval

    def _after_failure(self, err: SlicebrokerError) -> float | None:
        """When to try again after a failed renewal, or None when the lease is lost."""
        now = time.monotonic()
        if err.code not in _TRANSIENT or now >= self._lapses_at:
            return None
        self._emit("renew_failed", err)
        return now + max(min(self._interval, (self._lapses_at - now) / 3), _MIN_PAUSE_S)

    def _mark_lost(self, err: SlicebrokerError) -> LeaseLostError:
        lost = LeaseLostError(self._grant.id if self._grant else "", err)
        self._lost = lost
        self._emit("lost", lost)
        return lost

    def __repr__(self) -> str:
        state = "lost" if self._lost else "held" if self._grant else "not held"
        return f"<{type(self).__name__} {self._grant.id if self._grant else '-'} {state}>"


def _released_note(exc: BaseException, err: SlicebrokerError, grant_id: str) -> None:
    exc.add_note(f"slicebroker: releasing grant {grant_id} on the way out failed too: {err}")


class GrantLease(_Held):
    """A grant held for the duration of a `with` block of `Client.lease()`."""

    def __init__(self, client: Client, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._client = client
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._exiting = False
        self._injected = False
        self._owner = 0
        self._thread: threading.Thread | None = None

    def __enter__(self) -> GrantLease:
        project, sku, count = self._request
        self._emit("requesting")
        grant = self._client.request_grant(project, sku, count, self._lease, self._key, queue=self._queue)
        if grant.state is GrantState.QUEUED:
            try:
                grant = self._wait(grant)
            except BaseException:
                self._leave_queue(grant.id)
                raise
        self._held_from(grant)
        self._owner = threading.get_ident()
        self._thread = threading.Thread(target=self._renew, name=f"slicebroker-lease-{grant.id}", daemon=True)
        self._thread.start()
        return self

    def _wait(self, grant: Grant) -> Grant:
        started, pause = time.monotonic(), _POLL_FIRST_S
        last = self._waiting(grant, started, None)
        while grant.state is GrantState.QUEUED:
            time.sleep(pause)
            pause = min(pause * _POLL_GROWTH, _POLL_MAX_S)
            grant = self._client.get_grant(grant.id)
            last = self._waiting(grant, started, last)
        return grant

    def _leave_queue(self, grant_id: str) -> None:
        try:
            self._grant = self._client.release_grant(grant_id)
        except SlicebrokerError:
            pass  # the error being raised matters more; a queued request left behind holds nothing
        else:
            self._emit("released")

    def _renew(self) -> None:
        next_at = time.monotonic() + self._interval
        while not self._stop.wait(max(next_at - time.monotonic(), 0.0)):
            sent_at = time.monotonic()
            try:
                grant = self._client.renew_grant(self.id, self._lease)
            except SlicebrokerError as err:
                retry_at = self._after_failure(err)
                if retry_at is None:
                    self._lose(err)
                    return
                next_at = retry_at
            else:
                next_at = self._renewed(grant, sent_at)

    def _lose(self, err: SlicebrokerError) -> None:
        lost = self._mark_lost(err)
        if self._on_lost is not None:
            self._on_lost(lost)
            return
        with self._lock:
            if not self._exiting:
                # The documented CPython way to raise in another thread; it takes a class, so the
                # body sees a bare LeaseLostError that __exit__ swaps for the full one.
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self._owner), ctypes.py_object(LeaseLostError)
                )
                self._injected = True

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        while True:
            try:
                with self._lock:
                    self._exiting = True
                    if self._injected:
                        # Not delivered yet: drop it, it is raised below as the full error.
                        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._owner), None)
                break
            except LeaseLostError:
                continue  # the injection landed here rather than in the body
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        grant_id = self.id
        try:
            self._grant = self._client.release_grant(grant_id)
        except SlicebrokerError as err:
            if exc is None and self._lost is None:
                raise
            _released_note(exc or self._lost, err, grant_id)  # type: ignore[arg-type]
        else:
            self._emit("released")
        if self._lost is not None and (exc is None or isinstance(exc, LeaseLostError)):
            if exc is None and self._on_lost is not None:
                return  # surfaced through the callback
            raise self._lost from self._lost.cause


class AsyncGrantLease(_Held):
    """A grant held for the duration of an `async with` block of `AsyncClient.lease()`."""

    def __init__(self, client: AsyncClient, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._client = client
        self._owner: asyncio.Task[object] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._cancelled_owner = False

    async def __aenter__(self) -> AsyncGrantLease:
        project, sku, count = self._request
        self._emit("requesting")
        grant = await self._client.request_grant(project, sku, count, self._lease, self._key, queue=self._queue)
        if grant.state is GrantState.QUEUED:
            try:
                grant = await self._wait(grant)
            except BaseException:
                await asyncio.shield(self._leave_queue(grant.id))
                raise
        self._held_from(grant)
        self._owner = asyncio.current_task()
        self._renewer = asyncio.create_task(self._renew(), name=f"slicebroker-lease-{grant.id}")
        return self

    async def _wait(self, grant: Grant) -> Grant:
        started, pause = time.monotonic(), _POLL_FIRST_S
        last = self._waiting(grant, started, None)
        while grant.state is GrantState.QUEUED:
            await asyncio.sleep(pause)
            pause = min(pause * _POLL_GROWTH, _POLL_MAX_S)
            grant = await self._client.get_grant(grant.id)
            last = self._waiting(grant, started, last)
        return grant

    async def _leave_queue(self, grant_id: str) -> None:
        try:
            self._grant = await self._client.release_grant(grant_id)
        except SlicebrokerError:
            pass  # the error being raised matters more; a queued request left behind holds nothing
        else:
            self._emit("released")

    async def _renew(self) -> None:
        next_at = time.monotonic() + self._interval
        while True:
            await asyncio.sleep(max(next_at - time.monotonic(), 0.0))
            sent_at = time.monotonic()
            try:
                grant = await self._client.renew_grant(self.id, self._lease)
            except SlicebrokerError as err:
                retry_at = self._after_failure(err)
                if retry_at is None:
                    lost = self._mark_lost(err)
                    if self._on_lost is not None:
                        self._on_lost(lost)
                    elif self._owner is not None:
                        self._cancelled_owner = True
                        self._owner.cancel(msg=str(lost))
                    return
                next_at = retry_at
            else:
                next_at = self._renewed(grant, sent_at)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
        ours = self._cancelled_owner and self._owner is not None
        if ours and self._owner is not None:
            # The cancellation was ours, not the caller's: it must not count against the task.
            self._owner.uncancel()
        grant_id = self.id
        try:
            # Shielded: a second cancellation (another Ctrl-C) must not abandon the release midway.
            self._grant = await asyncio.shield(self._client.release_grant(grant_id))
        except SlicebrokerError as err:
            if exc is None and self._lost is None:
                raise
            _released_note(exc or self._lost, err, grant_id)  # type: ignore[arg-type]
        else:
            self._emit("released")
        if self._lost is not None and (exc is None or (ours and isinstance(exc, asyncio.CancelledError))):
            if exc is None and self._on_lost is not None:
                return
            raise self._lost from self._lost.cause
