"""The blocking client against a real (fake) gRPC mesh on loopback: retries that replay the same
idempotency key, deadlines and tokens on every call, pagination and error decoding over the wire."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import grpc
import pytest
from google.rpc import status_pb2

from slicebroker.client import (
    Client,
    ClientOptions,
    ConfigurationError,
    ConflictError,
    FailedPreconditionError,
    GrantState,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
    RetryPolicy,
    SlicebrokerError,
    UnavailableError,
)
from tests.unit.client.fakemesh import NOW, FakeMesh, closed_port, rich_status

FAST_RETRIES = RetryPolicy(initial_backoff=0.005, max_backoff=0.02)
UNAVAILABLE = rich_status(grpc.StatusCode.UNAVAILABLE, "DEPENDENCY_UNAVAILABLE", "quota is down")
ABORTED = rich_status(grpc.StatusCode.ABORTED, "GENERATION_CONFLICT", "node changed under us")


def client_of(mesh: FakeMesh, **overrides: Any) -> Client:
    options = ClientOptions(
        broker_addr=mesh.address,
        inventory_addr=mesh.address,
        quota_addr=mesh.address,
        accounting_addr=mesh.address,
        retries=FAST_RETRIES,
    )
    return Client(dataclasses.replace(options, **overrides))


def test_a_retried_request_replays_its_generated_idempotency_key(mesh: FakeMesh) -> None:
    mesh.recorder.fail("RequestGrant", UNAVAILABLE, UNAVAILABLE)
    with client_of(mesh) as sb:
        grant = sb.request_grant("snu-llm", "H100-SXM-80GB", count=2, lease=timedelta(hours=2))
    keys = [c.request.idempotency_key for c in mesh.recorder.calls_of("RequestGrant")]
    assert len(keys) == 3
    assert len(set(keys)) == 1 and keys[0] == grant.idempotency_key
    assert len(mesh.broker.grants) == 1
    assert (grant.state, grant.count, grant.expires_at) == (GrantState.ACTIVE, 2, NOW + timedelta(hours=2))


def test_aborted_is_retried_with_a_caller_key_and_one_request_id(mesh: FakeMesh) -> None:
    mesh.recorder.fail("RequestGrant", ABORTED)
    with client_of(mesh) as sb:
        grant = sb.request_grant("snu-llm", "RNGD", idempotency_key="job-42")
    calls = mesh.recorder.calls_of("RequestGrant")
    assert [c.request.idempotency_key for c in calls] == ["job-42", "job-42"]
    assert calls[0].metadata["x-request-id"] == calls[1].metadata["x-request-id"]
    assert grant.idempotency_key == "job-42"


def test_retries_stop_after_the_attempts_allowed(mesh: FakeMesh) -> None:
    mesh.recorder.fail("GetGrant", *[UNAVAILABLE] * 5)
    with client_of(mesh) as sb, pytest.raises(UnavailableError) as caught:
        sb.get_grant("gr_x")
    assert len(mesh.recorder.calls_of("GetGrant")) == 4
    assert caught.value.reason == "DEPENDENCY_UNAVAILABLE"


def test_retries_exhausted_on_aborted_raise_a_conflict(mesh: FakeMesh) -> None:
    mesh.recorder.fail("ReleaseGrant", *[ABORTED] * 2)
    sb = client_of(mesh, retries=RetryPolicy(attempts=2, initial_backoff=0.001))
    with sb, pytest.raises(ConflictError):
        sb.release_grant("gr_x")
    assert len(mesh.recorder.calls_of("ReleaseGrant")) == 2


@pytest.mark.parametrize(
    "status",
    [
        rich_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "QUOTA_EXCEEDED", "cap 8 reached", sku="RNGD", cap="8"),
        rich_status(grpc.StatusCode.DEADLINE_EXCEEDED, "DEPENDENCY_UNAVAILABLE", "inventory too slow"),
        rich_status(grpc.StatusCode.INTERNAL, "INTERNAL", "bug"),
    ],
)
def test_other_failures_are_not_retried(mesh: FakeMesh, status: status_pb2.Status) -> None:
    mesh.recorder.fail("RequestGrant", status)
    with client_of(mesh) as sb, pytest.raises(SlicebrokerError):
        sb.request_grant("snu-llm", "RNGD")
    assert len(mesh.recorder.calls_of("RequestGrant")) == 1


def test_a_refusal_carries_reason_and_metadata(mesh: FakeMesh) -> None:
    mesh.recorder.fail(
        "RequestGrant",
        rich_status(grpc.StatusCode.RESOURCE_EXHAUSTED, "QUOTA_EXCEEDED", "cap 8 reached", sku="RNGD", cap="8"),
    )
    with client_of(mesh) as sb, pytest.raises(ResourceExhaustedError) as caught:
        sb.request_grant("snu-llm", "RNGD", count=9)
    err = caught.value
    assert (err.reason, err.message, err.metadata) == ("QUOTA_EXCEEDED", "cap 8 reached", {"sku": "RNGD", "cap": "8"})
    assert err.request_id == mesh.recorder.calls[-1].metadata["x-request-id"]


def test_every_call_carries_the_token_and_a_deadline(mesh: FakeMesh) -> None:
    with client_of(mesh, token="s3cret", timeout=5.0) as sb:
        sb.request_grant("snu-llm", "RNGD")
        list(sb.list_grants())
        sb.capacity()
        list(sb.nodes())
        sb.skus()
        sb.usage()
        sb.projects()
        sb.institutions()
    assert len(mesh.recorder.calls) >= 8
    for call in mesh.recorder.calls:
        assert call.metadata["authorization"] == "Bearer s3cret"
        # The server sees the deadline through its own clock reading; allow it a little slack.
        assert call.time_remaining is not None and 0 < call.time_remaining <= 5.1


def test_without_a_token_no_authorization_is_sent(mesh: FakeMesh) -> None:
    with client_of(mesh) as sb:
        sb.skus()
    assert "authorization" not in mesh.recorder.calls[0].metadata


def test_list_grants_follows_page_tokens_and_filters(mesh: FakeMesh) -> None:
    with client_of(mesh) as sb:
        made = [sb.request_grant("snu-llm" if i % 2 else "snu-bio", "RNGD") for i in range(5)]
        listed = list(sb.list_grants())
        assert [g.id for g in listed] == [g.id for g in reversed(made)]
        assert len(mesh.recorder.calls_of("ListGrants")) == 3  # pages of 2
        sb.release_grant(made[1].id)
        active_llm = list(sb.list_grants(project="snu-llm", state="active"))
    assert [g.id for g in active_llm] == [made[3].id]
    last = mesh.recorder.calls_of("ListGrants")[-1].request
    assert (last.project, last.state) == ("snu-llm", 2)


def test_list_grants_is_lazy(mesh: FakeMesh) -> None:
    with client_of(mesh) as sb:
        for _ in range(5):
            sb.request_grant("snu-llm", "RNGD")
        first = next(sb.list_grants())
    assert first.id == mesh.broker.grants[0].id
    assert len(mesh.recorder.calls_of("ListGrants")) == 1


def test_nodes_pages_and_filters_by_sku(mesh: FakeMesh) -> None:
    with client_of(mesh) as sb:
        assert [n.id for n in sb.nodes()] == ["h100-r01-n01", "h100-r01-n02", "rngd-r02-n01"]
        assert [n.id for n in sb.nodes(sku="RNGD")] == ["rngd-r02-n01"]
        assert [n.id for n in sb.nodes(page_size=1)] == ["h100-r01-n01", "h100-r01-n02", "rngd-r02-n01"]


def test_grant_lifecycle_and_its_refusals(mesh: FakeMesh) -> None:
    with client_of(mesh) as sb:
        grant = sb.request_grant("snu-llm", "H100-SXM-80GB", count=3, lease="30m")
        assert [s.device_id for s in grant.slices] == ["node-01/gpu0", "node-01/gpu1", "node-01/gpu2"]
        renewed = sb.renew_grant(grant.id, 7200)
        assert renewed.expires_at == NOW + timedelta(hours=2)
        assert mesh.recorder.calls_of("RenewGrant")[0].request.lease.seconds == 7200
        ended = sb.release_grant(grant.id)
        assert (ended.state, ended.end_reason, ended.live) == (GrantState.ENDED, "released", False)
        assert sb.get_grant(grant.id) == ended
        with pytest.raises(FailedPreconditionError) as not_active:
            sb.renew_grant(grant.id, "1h")
        assert not_active.value.reason == "GRANT_NOT_ACTIVE"
        with pytest.raises(NotFoundError) as missing:
            sb.get_grant("gr_nope")
        assert (missing.value.reason, missing.value.metadata) == ("GRANT_NOT_FOUND", {"grant_id": "gr_nope"})
        with pytest.raises(InvalidArgumentError) as bad_sku:
            sb.request_grant("snu-llm", "V100")
        assert (bad_sku.value.reason, bad_sku.value.field) == ("UNKNOWN_SKU", "sku")


def test_facility_tenants_and_usage_read_back_as_dataclasses(mesh: FakeMesh) -> None:
    with client_of(mesh) as sb:
        capacity = {c.sku: c for c in sb.capacity()}
        skus = [s.name for s in sb.skus()]
        usage = sb.usage(institution="snu")
        projects = sb.projects(institution="snu")
        institutions = [i.id for i in sb.institutions()]
    assert (capacity["H100-SXM-80GB"].devices, capacity["H100-SXM-80GB"].free) == (8, 5)
    assert skus == ["H100-SXM-80GB", "RNGD"]
    assert [r.project for r in usage.rows] == ["snu-llm"] and usage.as_of == NOW
    assert mesh.recorder.calls_of("GetUsage")[0].request.institution == "snu"
    assert [p.id for p in projects] == ["snu-llm"]
    assert institutions == ["kaist", "snu"]


def test_a_service_without_an_address_fails_before_any_call(mesh: FakeMesh) -> None:
    with Client(ClientOptions(broker_addr=mesh.address)) as sb, pytest.raises(ConfigurationError) as caught:
        sb.capacity()
    assert "SLICEBROKER_INVENTORY_ADDR" in str(caught.value)
    assert mesh.recorder.calls == []


def test_an_unreachable_mesh_says_what_to_do() -> None:
    with closed_port() as address:
        sb = Client(ClientOptions(broker_addr=address, retries=FAST_RETRIES))
        with sb, pytest.raises(UnavailableError) as caught:
            sb.get_grant("gr_x")
    assert f"broker at {address}" in str(caught.value)
    assert str(caught.value).endswith(
        "is the mesh running and the address right? (make run; source .run/env; `slicectl config show`)"
    )


def test_from_env_and_closing(mesh: FakeMesh) -> None:
    sb = Client.from_env(mesh.env)
    with sb:
        assert len(sb.skus()) == 2
        assert sb.options.broker_addr == mesh.address
    assert sb._channels == {}
