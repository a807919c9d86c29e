"""The one error table: every domain error kind maps to one status code and back, with its reason,
metadata and (for bad input) the field."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2

from slicebroker.core.errors import (
    Conflict,
    ErrorKind,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    SlicebrokerError,
    Unauthenticated,
    Unavailable,
)
from slicebroker.core.reasons import Reason
from slicebroker.runtime.status import OK, STATUS_OF_KIND, from_status, to_status

ERRORS: list[SlicebrokerError] = [
    InvalidArgument("count", "must be at least 1"),
    NotFound("no grant", reason=Reason.GRANT_NOT_FOUND),
    Conflict("stale", metadata={"node": "n1", "expected": 3}),
    FailedPrecondition("not active", reason=Reason.GRANT_NOT_ACTIVE),
    ResourceExhausted("over cap", reason=Reason.QUOTA_EXCEEDED, metadata={"limit": 8}),
    Unauthenticated("no token"),
    PermissionDenied("not yours"),
    Unavailable("inventory down"),
    Internal("bug"),
]


def test_every_kind_has_a_status_code() -> None:
    assert set(STATUS_OF_KIND) == set(ErrorKind)
    assert len(set(STATUS_OF_KIND.values())) == len(ErrorKind), "one code per kind, so the table inverts"


@pytest.mark.parametrize("err", ERRORS, ids=lambda e: type(e).__name__)
def test_round_trip_keeps_kind_reason_message_and_metadata(err: SlicebrokerError) -> None:
    status = to_status(err)
    assert status.code == STATUS_OF_KIND[err.kind].value[0]
    back = from_status(status)
    assert back is not None
    assert (type(back), back.reason, back.message, back.metadata) == (type(err), err.reason, err.message, err.metadata)


def test_invalid_argument_names_the_field_in_bad_request() -> None:
    status = to_status(InvalidArgument("claims[2].nodes[0].node_id", "must not be empty"))
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    violations = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = [(v.field, v.description) for v in bad.field_violations]
    assert violations == [("claims[2].nodes[0].node_id", "must not be empty")]
    assert status.message == "claims[2].nodes[0].node_id: must not be empty"


def test_ok_is_no_error() -> None:
    assert from_status(OK) is None
