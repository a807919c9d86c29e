"""`Client.lease()` and `AsyncClient.lease()` against the real mesh: release on exceptions and on
Ctrl-C, renewal that keeps a short lease alive, a lost lease raised in the body (or handed to the
callback), and a request retried after a lost answer that still makes exactly one grant."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace

import grpc
import pytest

from slicebroker.client import (
    AsyncClient,
    Client,
    ClientOptions,
    GrantState,
    LeaseEvent,
    LeaseLostError,
    ResourceExhaustedError,
    SlicebrokerError,
)
from slicebroker.mesh.launcher import Mesh
from slicebroker.runtime.tls import channel_credentials
from tests.api.sdk.proxy import dropping_proxy

H100 = "H100-SXM-80GB"


def free(sb: Client, sku: str) -> int:
    return {c.sku: c.free for c in sb.capacity()}[sku]


def test_lease_releases_on_exception(options: ClientOptions) -> None:
    with Client(options) as sb:
        before = free(sb, H100)
        with pytest.raises(RuntimeError, match="training crashed"), sb.lease("snu-llm", H100, 4, "10m") as held:
            assert held.grant.state is GrantState.ACTIVE and len(held.slices) == 4
            assert free(sb, H100) == before - 4
            raise RuntimeError("training crashed")
        ended = sb.get_grant(held.id)
        assert ended.state is GrantState.ENDED and ended.end_reason == "released"
        assert free(sb, H100) == before


def test_refused_lease_raises_on_entry_and_holds_nothing(options: ClientOptions) -> None:
    events: list[LeaseEvent] = []
    with Client(options) as sb:
        with pytest.raises(ResourceExhaustedError) as refused, sb.lease("snu-class", H100, 9, on_event=events.append):
            pytest.fail("the body must not run")
        assert refused.value.reason == "QUOTA_EXCEEDED"
        assert [e.kind for e in events] == ["requesting"]


def test_renewal_keeps_a_short_lease_alive(options: ClientOptions) -> None:
    events: list[LeaseEvent] = []
    with Client(options) as sb:
        with sb.lease("kaist-vision", H100, 2, lease=1.0, on_event=events.append) as held:
            first_expiry = held.expires_at
            time.sleep(3.0)  # three lease lengths: without renewal the reaper ends it after one
            assert sb.get_grant(held.id).state is GrantState.ACTIVE
            assert held.renewals >= 4 and held.expires_at is not None and first_expiry is not None
            assert held.expires_at > first_expiry
            held.check()
        assert sb.get_grant(held.id).end_reason == "released"
        kinds = [e.kind for e in events]
        assert kinds[:2] == ["requesting", "granted"] and kinds[-1] == "released"
        assert set(kinds[2:-1]) == {"renewed"}

        # The control: the same lease without the scope lapses.
        plain = sb.request_grant("kaist-vision", H100, 2, lease=1.0)
        deadline = time.monotonic() + 5
        while sb.get_grant(plain.id).state is GrantState.ACTIVE and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sb.get_grant(plain.id).end_reason == "expired"


def test_lost_lease_is_raised_in_the_body(options: ClientOptions) -> None:
    with Client(options) as sb, Client(options) as admin:
        with pytest.raises(LeaseLostError) as lost, sb.lease("snu-bio", H100, 1, lease=0.6) as held:
            admin.release_grant(held.id)  # someone else ends it: the next renewal is refused
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                time.sleep(0.01)
            pytest.fail("LeaseLostError was not raised in the body")
        assert lost.value.grant_id == held.id
        assert lost.value.cause is not None and lost.value.cause.reason == "GRANT_NOT_ACTIVE"
        assert held.lost is lost.value


def test_lost_lease_goes_to_the_callback_when_given(options: ClientOptions) -> None:
    seen: list[LeaseLostError] = []
    with (
        Client(options) as sb,
        Client(options) as admin,
        sb.lease("snu-bio", H100, 1, lease=0.6, on_lost=seen.append) as held,
    ):
        admin.release_grant(held.id)
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen and seen[0].grant_id == held.id
        with pytest.raises(LeaseLostError):
            held.check()


CTRL_C_SCRIPT = textwrap.dedent(
    """
    import time
    from slicebroker.client import Client
    with Client.from_env() as sb, sb.lease("postech-robotics", "H100-SXM-80GB", 2, "10m") as held:
        print(held.id, flush=True)
        while True:
            time.sleep(0.02)
    """
)


def test_ctrl_c_releases_the_lease(env: dict[str, str], options: ClientOptions) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_SCRIPT],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    grant_id = process.stdout.readline().strip()
    assert grant_id.startswith("gr_"), process.stderr.read() if process.stderr else ""
    with Client(options) as sb:
        assert sb.get_grant(grant_id).state is GrantState.ACTIVE
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        assert "KeyboardInterrupt" in stderr
        ended = sb.get_grant(grant_id)
        assert ended.state is GrantState.ENDED and ended.end_reason == "released"


async def test_async_lease_releases_on_exception_and_renews(options: ClientOptions) -> None:
    async with AsyncClient(options) as sb:
        with pytest.raises(KeyError):
            async with sb.lease("kaist-npu-compiler", "RNGD", 2, lease=0.6) as held:
                await asyncio.sleep(1.5)
                assert (await sb.get_grant(held.id)).state is GrantState.ACTIVE
                assert held.renewals >= 2
                raise KeyError("boom")
        ended = await sb.get_grant(held.id)
        assert ended.state is GrantState.ENDED and ended.end_reason == "released"


async def test_async_lost_lease_cancels_the_body_and_raises(options: ClientOptions) -> None:
    async with AsyncClient(options) as sb, AsyncClient(options) as admin:
        with pytest.raises(LeaseLostError) as lost:
            async with sb.lease("kaist-npu-compiler", "RNGD", 1, lease=0.6) as held:
                await admin.release_grant(held.id)
                await asyncio.sleep(5)
                pytest.fail("the body was not cancelled")
        assert lost.value.cause is not None and lost.value.cause.reason == "GRANT_NOT_ACTIVE"
        current = asyncio.current_task()
        assert current is not None and current.cancelling() == 0  # our cancellation was taken back


def _proxied(options: ClientOptions, address: str) -> ClientOptions:
    # The proxy listens in plaintext on loopback; it holds the mesh's client certificate itself.
    return replace(options, broker_addr=address, tls_ca_file=None, tls_cert_file=None, tls_key_file=None)


def test_retry_after_a_lost_answer_never_double_grants(mesh: Mesh, options: ClientOptions) -> None:
    tls = mesh.client_tls
    assert tls is not None
    upstream = mesh.addresses["broker"]
    with (
        dropping_proxy(lambda: grpc.aio.secure_channel(upstream, channel_credentials(tls)), "RequestGrant") as proxy,
        Client(options) as direct,
        Client(_proxied(options, proxy.address)) as sb,
    ):
        before = free(direct, H100)
        in_use = {p.id: p.devices_in_use.get(H100, 0) for p in direct.projects()}["kisti-climate"]

        grant = sb.request_grant("kisti-climate", H100, 8, "10m")

        requests = [body for path, body in proxy.calls if path.endswith("/RequestGrant")]
        assert proxy.dropped and len(requests) == 2 and requests[0] == requests[1]  # same key, same bytes
        mine = [g for g in direct.list_grants(project="kisti-climate") if g.idempotency_key == grant.idempotency_key]
        assert [g.id for g in mine] == [grant.id]
        assert free(direct, H100) == before - 8
        now_in_use = {p.id: p.devices_in_use.get(H100, 0) for p in direct.projects()}["kisti-climate"]
        assert now_in_use == in_use + 8
        direct.release_grant(grant.id)


async def test_async_lease_through_a_lost_answer_holds_one_grant(mesh: Mesh, options: ClientOptions) -> None:
    tls = mesh.client_tls
    assert tls is not None
    upstream = mesh.addresses["broker"]
    with dropping_proxy(lambda: grpc.aio.secure_channel(upstream, channel_credentials(tls)), "RequestGrant") as proxy:
        async with AsyncClient(_proxied(options, proxy.address)) as sb, AsyncClient(options) as direct:
            async with sb.lease("kisti-benchmarks", "RNGD", 4, "10m") as held:
                live = [g async for g in direct.list_grants(project="kisti-benchmarks", state="active")]
                assert [g.id for g in live] == [held.id]
            assert proxy.dropped
            assert (await direct.get_grant(held.id)).end_reason == "released"


def _fill_atom(sb: Client) -> str:
    """Takes every ATOM card of the test facility (8) for one project; returns the grant id."""
    return sb.request_grant("kisti-inference", "ATOM", 8, "10m").id


def test_queued_lease_waits_reports_its_position_and_is_served(options: ClientOptions) -> None:
    events: list[LeaseEvent] = []
    outcome: dict[str, object] = {}

    def wait_in_queue() -> None:
        try:
            with (
                Client(options) as waiter,
                waiter.lease(
                    "hanbit-serving", "ATOM", 4, "10m", queue=True, wait_timeout=30, on_event=events.append
                ) as held,
            ):
                outcome["state"] = held.grant.state
        except Exception as exc:  # reported to the test thread below
            outcome["error"] = exc

    with Client(options) as sb:
        filler = _fill_atom(sb)
        try:
            thread = threading.Thread(target=wait_in_queue)
            thread.start()
            deadline = time.monotonic() + 10
            while not any(e.kind == "queued" for e in events) and thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.02)
            error = outcome.get("error")
            if isinstance(error, ResourceExhaustedError) and error.reason == "INSUFFICIENT_CAPACITY":
                pytest.skip("this broker refuses instead of queueing (no queue yet)")
            queued = [e for e in events if e.kind == "queued"]
            assert queued and queued[0].grant is not None and queued[0].grant.queue_position >= 1
        finally:
            sb.release_grant(filler)
        thread.join(30)
        assert outcome.get("state") is GrantState.ACTIVE, outcome
        kinds = [e.kind for e in events]
        assert kinds[0] == "requesting" and "granted" in kinds and kinds[-1] == "released"


def test_queue_wait_timeout_leaves_the_queue(options: ClientOptions) -> None:
    events: list[LeaseEvent] = []
    with Client(options) as sb:
        filler = _fill_atom(sb)
        try:
            with (
                pytest.raises(SlicebrokerError) as err,
                sb.lease("hanbit-serving", "ATOM", 2, "10m", queue=True, wait_timeout=0.5, on_event=events.append),
            ):
                pytest.fail("the body must not run")
            if err.value.reason == "INSUFFICIENT_CAPACITY":
                pytest.skip("this broker refuses instead of queueing (no queue yet)")
            assert err.value.reason == "QUEUE_WAIT_TIMEOUT"
            queued = next(e.grant for e in events if e.kind == "queued" and e.grant is not None)
            assert sb.get_grant(queued.id).state is not GrantState.QUEUED  # it left the queue
        finally:
            sb.release_grant(filler)
