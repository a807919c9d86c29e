"""The one table from domain errors to gRPC status codes, and back.

Every refusal a service sends — whole-call or per item of a batch — goes through `to_status`, so
the code, the stable reason (`google.rpc.ErrorInfo`) and the offending field
(`google.rpc.BadRequest`) are always filled the same way.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from slicebroker.core.errors import ErrorKind, InvalidArgument, SlicebrokerError, error_of_kind

ERROR_DOMAIN = "slicebroker.io"

STATUS_OF_KIND: dict[ErrorKind, grpc.StatusCode] = {
    ErrorKind.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.CONFLICT: grpc.StatusCode.ABORTED,
    ErrorKind.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorKind.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
}
KIND_OF_CODE: dict[int, ErrorKind] = {code.value[0]: kind for kind, code in STATUS_OF_KIND.items()}

OK = status_pb2.Status(code=code_pb2.OK)


def to_status(err: SlicebrokerError) -> status_pb2.Status:
    info = error_details_pb2.ErrorInfo(reason=str(err.reason), domain=ERROR_DOMAIN, metadata=err.metadata)
    details = [_pack(info)]
    if isinstance(err, InvalidArgument):
        violation = error_details_pb2.BadRequest.FieldViolation(field=err.field, description=err.description)
        details.append(_pack(error_details_pb2.BadRequest(field_violations=[violation])))
    code: int = STATUS_OF_KIND[err.kind].value[0]
    return status_pb2.Status(code=code, message=err.message, details=details)


def from_status(status: status_pb2.Status) -> SlicebrokerError | None:
    """The domain error a non-OK status stands for; None for OK."""
    if status.code == code_pb2.OK:
        return None
    reason, metadata = "INTERNAL", {}
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, metadata = info.reason, dict(info.metadata)
    kind = KIND_OF_CODE.get(status.code, ErrorKind.INTERNAL)
    return error_of_kind(kind, status.message, reason, metadata)


def from_rpc_error(err: grpc.RpcError) -> SlicebrokerError:
    """The domain error behind a failed call to a slicebroker service (sync or aio)."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else str(err)
    trailers = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    for key, value in trailers or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            decoded = from_status(status_pb2.Status.FromString(value))
            if decoded is not None:
                return decoded
    kind = KIND_OF_CODE.get(code.value[0], ErrorKind.UNAVAILABLE)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        kind = ErrorKind.UNAVAILABLE
    return error_of_kind(kind, f"{code.name}: {details}", "DEPENDENCY_UNAVAILABLE", {})


def _pack(message: error_details_pb2.ErrorInfo | error_details_pb2.BadRequest) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed
