"""The domain error family.

Domain code raises these; the runtime maps each kind to a gRPC status code in exactly one table
(`slicebroker.runtime.status`). Every error carries a stable `Reason` and string metadata that
travels in `google.rpc.ErrorInfo`, so clients can act on it (which limit, by how much, which field).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from slicebroker.core.reasons import Reason


class ErrorKind(StrEnum):
    INVALID_ARGUMENT = "invalid_argument"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    FAILED_PRECONDITION = "failed_precondition"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class SlicebrokerError(Exception):
    """Base of every error slicebroker reports to a caller."""

    kind: ErrorKind = ErrorKind.INTERNAL
    default_reason: Reason = Reason.INTERNAL

    def __init__(
        self, message: str, *, reason: Reason | None = None, metadata: Mapping[str, object] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata: dict[str, str] = {k: str(v) for k, v in (metadata or {}).items()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason}: {self.message})"


class InvalidArgument(SlicebrokerError):
    """Bad input. `field` names the offending request field (dotted path)."""

    kind = ErrorKind.INVALID_ARGUMENT
    default_reason = Reason.INVALID_FIELD

    def __init__(
        self,
        field: str,
        message: str,
        *,
        reason: Reason | None = None,
        metadata: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(f"{field}: {message}", reason=reason, metadata={"field": field, **(metadata or {})})
        self.field = field
        self.description = message


class NotFound(SlicebrokerError):
    kind = ErrorKind.NOT_FOUND


class Conflict(SlicebrokerError):
    """Optimistic concurrency lost: re-read and retry."""

    kind = ErrorKind.CONFLICT
    default_reason = Reason.GENERATION_CONFLICT


class FailedPrecondition(SlicebrokerError):
    kind = ErrorKind.FAILED_PRECONDITION


class ResourceExhausted(SlicebrokerError):
    kind = ErrorKind.RESOURCE_EXHAUSTED


class Unauthenticated(SlicebrokerError):
    kind = ErrorKind.UNAUTHENTICATED
    default_reason = Reason.UNAUTHENTICATED


class PermissionDenied(SlicebrokerError):
    kind = ErrorKind.PERMISSION_DENIED
    default_reason = Reason.PERMISSION_DENIED


class Unavailable(SlicebrokerError):
    kind = ErrorKind.UNAVAILABLE
    default_reason = Reason.DEPENDENCY_UNAVAILABLE


class Internal(SlicebrokerError):
    kind = ErrorKind.INTERNAL


_BY_KIND: dict[ErrorKind, type[SlicebrokerError]] = {
    cls.kind: cls
    for cls in (
        NotFound,
        Conflict,
        FailedPrecondition,
        ResourceExhausted,
        Unauthenticated,
        PermissionDenied,
        Unavailable,
        Internal,
    )
}


def error_of_kind(kind: ErrorKind, message: str, reason: Reason | str, metadata: Mapping[str, str]) -> SlicebrokerError:
    """Rebuilds a domain error received from another service (the inverse of the status table)."""
    try:
        known = Reason(reason)
    except ValueError:
        known = Reason.INTERNAL
    if kind is ErrorKind.INVALID_ARGUMENT:
        meta = dict(metadata)
        field = meta.pop("field", "request")
        prefix = f"{field}: "
        return InvalidArgument(field, message.removeprefix(prefix), reason=known, metadata=meta)
    return _BY_KIND[kind](message, reason=known, metadata=metadata)
