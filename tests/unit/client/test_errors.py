"""Failed calls become one error family: the class by status code, the reason, metadata and field from
the google.rpc.Status in the `grpc-status-details-bin` trailer, and a message that says what to do."""

from __future__ import annotations

import pickle

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from slicebroker.client import (
    ConfigurationError,
    ConflictError,
    DeadlineExceededError,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    SlicebrokerError,
    UnauthenticatedError,
    UnavailableError,
)
from slicebroker.client._errors import _HINT_OF_REASON, error_for, from_rpc_error
from slicebroker.core import errors as core_errors
from slicebroker.core.reasons import Reason
from slicebroker.runtime.status import to_status
from tests.unit.client.fakemesh import rich_status


def failed_call(code: grpc.StatusCode, details: str, status: status_pb2.Status | None = None) -> grpc.RpcError:
    """A failed call exactly as grpc.aio raises it."""
    trailers = grpc.aio.Metadata()
    if status is not None:
        trailers.add("grpc-status-details-bin", status.SerializeToString())
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailers, details, None)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgumentError),
        (grpc.StatusCode.NOT_FOUND, NotFoundError),
        (grpc.StatusCode.ABORTED, ConflictError),
        (grpc.StatusCode.FAILED_PRECONDITION, FailedPreconditionError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ResourceExhaustedError),
        (grpc.StatusCode.UNAUTHENTICATED, UnauthenticatedError),
        (grpc.StatusCode.PERMISSION_DENIED, PermissionDeniedError),
        (grpc.StatusCode.UNAVAILABLE, UnavailableError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceededError),
        (grpc.StatusCode.INTERNAL, InternalError),
        (grpc.StatusCode.UNKNOWN, InternalError),
        (grpc.StatusCode.UNIMPLEMENTED, SlicebrokerError),
        (grpc.StatusCode.CANCELLED, SlicebrokerError),
    ],
)
def test_the_class_follows_the_status_code(code: grpc.StatusCode, cls: type[SlicebrokerError]) -> None:
    err = error_for(code, "R", "m")
    assert type(err) is cls
    assert err.code is code


def test_reason_metadata_and_field_come_from_error_info_and_bad_request() -> None:
    status = rich_status(
        grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_SKU", "sku: unknown SKU 'V100'", field="sku", known="RNGD"
    )
    err = from_rpc_error(failed_call(grpc.StatusCode.INVALID_ARGUMENT, status.message, status), request_id="r1")
    assert isinstance(err, InvalidArgumentError)
    assert (err.reason, err.message, err.field, err.metadata, err.request_id) == (
        "UNKNOWN_SKU",
        "sku: unknown SKU 'V100'",
        "sku",
        {"known": "RNGD"},
        "r1",
    )


@pytest.mark.parametrize(
    ("domain_error", "cls", "reason", "field", "metadata"),
    [
        (
            core_errors.InvalidArgument("claims[2].nodes[0].node_id", "empty"),
            InvalidArgumentError,
            "INVALID_FIELD",
            "claims[2].nodes[0].node_id",
            {"field": "claims[2].nodes[0].node_id"},
        ),
        (
            core_errors.ResourceExhausted("over cap", reason=Reason.QUOTA_EXCEEDED, metadata={"cap": 8, "sku": "RNGD"}),
            ResourceExhaustedError,
            "QUOTA_EXCEEDED",
            None,
            {"cap": "8", "sku": "RNGD"},
        ),
        (
            core_errors.NotFound("no grant gr_x", reason=Reason.GRANT_NOT_FOUND),
            NotFoundError,
            "GRANT_NOT_FOUND",
            None,
            {},
        ),
        (core_errors.Conflict("stale"), ConflictError, "GENERATION_CONFLICT", None, {}),
    ],
)
def test_statuses_encoded_by_the_services_runtime_decode_faithfully(
    domain_error: core_errors.SlicebrokerError,
    cls: type[SlicebrokerError],
    reason: str,
    field: str | None,
    metadata: dict[str, str],
) -> None:
    status = to_status(domain_error)
    code = next(c for c in grpc.StatusCode if c.value[0] == status.code)
    err = from_rpc_error(failed_call(code, status.message, status))
    assert type(err) is cls
    assert (err.reason, err.message, err.field, err.metadata) == (reason, domain_error.message, field, metadata)


def test_a_field_named_only_in_error_info_metadata_is_still_found() -> None:
    packed = any_pb2.Any()
    packed.Pack(error_details_pb2.ErrorInfo(reason="INVALID_FIELD", metadata={"field": "count"}))
    status = status_pb2.Status(code=grpc.StatusCode.INVALID_ARGUMENT.value[0], message="bad", details=[packed])
    assert from_rpc_error(failed_call(grpc.StatusCode.INVALID_ARGUMENT, "bad", status)).field == "count"


def test_an_error_without_details_is_named_by_its_code_and_where_it_happened() -> None:
    err = from_rpc_error(
        failed_call(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses"), where="broker at 127.0.0.1:9"
    )
    assert isinstance(err, UnavailableError)
    assert err.reason == "UNAVAILABLE"
    assert err.message == "broker at 127.0.0.1:9: failed to connect to all addresses"
    hint = "is the mesh running and the address right? (make run; source .run/env; `slicectl config show`)"
    assert str(err) == f"{err.message} — {hint}"


def test_an_error_that_is_not_a_call_is_internal() -> None:
    err = from_rpc_error(grpc.RpcError("odd"))
    assert isinstance(err, InternalError)


@pytest.mark.parametrize(
    ("code", "reason", "hint"),
    [
        (
            grpc.StatusCode.UNAVAILABLE,
            "UNAVAILABLE",
            "is the mesh running and the address right? (make run; source .run/env; `slicectl config show`)",
        ),
        (grpc.StatusCode.UNAVAILABLE, "DEPENDENCY_UNAVAILABLE", "a service behind this one is down"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "QUOTA_EXCEEDED", "`slicectl projects` shows caps and use"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "INSUFFICIENT_CAPACITY", "`slicectl inventory`"),
        (grpc.StatusCode.NOT_FOUND, "GRANT_NOT_FOUND", "`slicectl grants`"),
        (grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_SKU", "`slicectl skus`"),
        (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED", "SLICEBROKER_TOKEN"),
    ],
)
def test_str_adds_the_next_step(code: grpc.StatusCode, reason: str, hint: str) -> None:
    err = error_for(code, reason, "it failed")
    assert err.hint is not None and hint in err.hint
    assert str(err).startswith("it failed — ")


def test_without_an_obvious_next_step_str_is_the_message() -> None:
    err = error_for(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", "count: must be positive", field="count")
    assert err.hint is None
    assert str(err) == "count: must be positive"


def test_hints_are_keyed_by_real_reasons() -> None:
    assert set(_HINT_OF_REASON) <= {r.value for r in Reason}


def test_configuration_error_names_the_variable_and_the_flag() -> None:
    err = ConfigurationError("quota", "SLICEBROKER_QUOTA_ADDR")
    assert err.reason == "CLIENT_NOT_CONFIGURED"
    assert err.message == "no address for the quota service"
    assert err.hint is not None
    assert "SLICEBROKER_QUOTA_ADDR" in err.hint and "--quota-addr" in err.hint


@pytest.mark.parametrize(
    "err",
    [
        error_for(grpc.StatusCode.NOT_FOUND, "GRANT_NOT_FOUND", "gone", {"grant_id": "gr_x"}, None, request_id="r9"),
        error_for(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", "count: bad", {}, "count"),
        ConfigurationError("broker", "SLICEBROKER_BROKER_ADDR"),
    ],
)
def test_errors_survive_pickling(err: SlicebrokerError) -> None:
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is type(err)
    assert (copy.code, copy.reason, copy.message, copy.metadata, copy.field, copy.request_id) == (
        err.code,
        err.reason,
        err.message,
        err.metadata,
        err.field,
        err.request_id,
    )


@pytest.mark.parametrize(("reason", "words"), [("OVERLOADED", "the service is busy"), ("RATE_LIMITED", "call rate")])
def test_a_shed_call_says_nothing_was_done_and_when_to_retry(reason: str, words: str) -> None:
    err = error_for(grpc.StatusCode.RESOURCE_EXHAUSTED, reason, "overloaded", metadata={"retry_after_ms": "1500"})
    assert err.hint is not None and words in err.hint
    assert "nothing was done" in err.hint and "retry in 1.5 s" in err.hint
