"""The SDK's one error family, mapped from gRPC status codes in one function (`error_for`).

Subclasses follow the status code; callers that need finer distinctions branch on `.reason`, the
stable string the services send in `google.rpc.ErrorInfo` (see `slicebroker.core.reasons.Reason`).
Errors that carry no ErrorInfo (a service that is down, a deadline that passed) get the status
code's name as their reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

CLIENT_NOT_CONFIGURED = "CLIENT_NOT_CONFIGURED"
"""Reason of `ConfigurationError`: a service was called that no address was given for."""

_STATUS_DETAILS_KEY = "grpc-status-details-bin"
_MESH_HINT = "is the mesh running and the address right? (make run; source .run/env; `slicectl config show`)"

# The next step for a caller, by reason first, then by status code.
_HINT_OF_REASON: dict[str, str] = {
    "UNKNOWN_SKU": "`slicectl skus` lists the SKUs",
    "GRANT_NOT_FOUND": "`slicectl grants` lists your grants",
    "PROJECT_NOT_FOUND": "`slicectl projects` lists the projects",
    "INSTITUTION_NOT_FOUND": "`slicectl institutions` lists the institutions",
    "NODE_NOT_FOUND": "`slicectl inventory --nodes` lists the nodes",
    "QUOTA_EXCEEDED": "release a grant or ask for a larger cap (`slicectl projects` shows caps and use)",
    "INSUFFICIENT_CAPACITY": "ask for fewer devices, another SKU, or try later (`slicectl inventory`)",
    "GRANT_NOT_ACTIVE": "the grant has ended; request a new one",
    "IDEMPOTENCY_KEY_REUSED": "that key belongs to a different request; use a new idempotency key",
    "DEPENDENCY_UNAVAILABLE": "a service behind this one is down; " + _MESH_HINT,
}
_HINT_OF_CODE: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.UNAVAILABLE: _MESH_HINT,
    grpc.StatusCode.DEADLINE_EXCEEDED: "the call ran past its deadline; retry, or allow a longer timeout",
    grpc.StatusCode.UNAUTHENTICATED: (
        "set SLICEBROKER_TOKEN, --token or the token of your config profile to a valid token"
        " (`slicectl config show` shows which one is used)"
    ),
    grpc.StatusCode.PERMISSION_DENIED: "your token may not do this; ask a facility admin",
    grpc.StatusCode.ABORTED: "another writer changed the same thing first; retry",
    grpc.StatusCode.UNIMPLEMENTED: "does the address point at the right service?",
}


class SlicebrokerError(Exception):
    """Base of every error the SDK raises.

    `code` is the gRPC status code, `reason` the stable reason string, `message` the service's
    explanation, `metadata` the ErrorInfo details (e.g. which limit and by how much), `field` the
    request field that was refused (for bad input) and `request_id` the id to find the call in the
    services' logs.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        reason: str,
        message: str,
        metadata: Mapping[str, str] | None = None,
        field: str | None = None,
        *,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.metadata: dict[str, str] = dict(metadata or {})
        self.field = field
        self.request_id = request_id

    @property
    def hint(self) -> str | None:
        """The obvious next step, if there is one, with the figures the service sent (which limit,
        by how much, how many are free) when it sent them."""
        return (
            _next_step(self.reason, self.metadata) or _HINT_OF_REASON.get(self.reason) or _HINT_OF_CODE.get(self.code)
        )

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}, {self.reason!r}, {self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        args = (self.code, self.reason, self.message, self.metadata, self.field)
        return (type(self), args, {"request_id": self.request_id})


_LIMIT_WORDS = {"hard_cap": "hard cap", "borrowing_limit": "borrowing limit", "nominal": "quota", "no_quota": "quota"}


def _devices(amount: str) -> str:
    return f"{amount} device" if amount == "1" else f"{amount} devices"


def _next_step(reason: str, md: Mapping[str, str]) -> str | None:
    """A next step built from ErrorInfo metadata; None when the metadata lacks what it needs."""
    if reason in ("OVERLOADED", "RATE_LIMITED") and md.get("retry_after_ms"):
        why = "the service is busy" if reason == "OVERLOADED" else "you are over your call rate"
        return f"{why}; nothing was done — retry in {int(md['retry_after_ms']) / 1000:g} s (same idempotency key)"
    if reason == "QUOTA_EXCEEDED" and md.get("short_by"):
        project = md.get("project", "")
        limit = _LIMIT_WORDS.get(md.get("limit_kind", ""), "quota")
        owner = md.get("node") or (f"project {project}" if project else "the project")
        on = f" on {md['resource']}" if md.get("resource") else f" on {md['sku']}" if md.get("sku") else ""
        figures = ", ".join(
            part
            for part in (
                f"limit {md['limit']}" if md.get("limit") else "",
                f"{md['in_use']} in use" if md.get("in_use") else "",
            )
            if part
        )
        steps = []
        if md.get("available") not in (None, "", "0"):
            steps.append(f"ask for at most {md['available']}")
        listing = f"`slicectl grants --project {project}`" if project else "`slicectl grants`"
        steps.append(f"release a grant ({listing})")
        steps.append("or ask your institution admin to raise the quota (`slicectl quota` shows standings)")
        return (
            f"over the {limit} of {owner}{on} by {_devices(md['short_by'])}"
            + (f" ({figures})" if figures else "")
            + "; "
            + ", ".join(steps)
        )
    if reason == "INSUFFICIENT_CAPACITY" and md.get("free") is not None and md.get("sku"):
        sku, free = md["sku"], md["free"]
        if free == "0":
            return f"no {sku} is free now; try another SKU (`slicectl inventory` shows what is free) or try later"
        return (
            f"only {free} {sku} free now for {md.get('requested', '?')} asked; ask for at most {free},"
            " another SKU (`slicectl inventory` shows what is free), or try later"
        )
    return None


class InvalidArgumentError(SlicebrokerError):
    """INVALID_ARGUMENT: bad input; `field` names it. Nothing was changed."""


class NotFoundError(SlicebrokerError):
    """NOT_FOUND."""


class ConflictError(SlicebrokerError):
    """ABORTED: optimistic concurrency lost. The SDK retries these before raising."""


class FailedPreconditionError(SlicebrokerError):
    """FAILED_PRECONDITION: the state does not allow it (e.g. GRANT_NOT_ACTIVE)."""


class ResourceExhaustedError(SlicebrokerError):
    """RESOURCE_EXHAUSTED: QUOTA_EXCEEDED or INSUFFICIENT_CAPACITY (see `.reason`)."""


class UnauthenticatedError(SlicebrokerError):
    """UNAUTHENTICATED: no token or an unknown one."""


class PermissionDeniedError(SlicebrokerError):
    """PERMISSION_DENIED."""


class UnavailableError(SlicebrokerError):
    """UNAVAILABLE: a service could not be reached. The SDK retries these before raising."""


class DeadlineExceededError(SlicebrokerError):
    """DEADLINE_EXCEEDED: no answer within the client's timeout; the call may still have happened."""


class InternalError(SlicebrokerError):
    """INTERNAL or UNKNOWN: a bug or an unexpected failure in a service."""


class ConfigurationError(SlicebrokerError):
    """A service was called that the client has no address for. Raised before any call is made."""

    def __init__(self, service: str, env_var: str) -> None:
        super().__init__(
            grpc.StatusCode.FAILED_PRECONDITION,
            CLIENT_NOT_CONFIGURED,
            f"no address for the {service} service",
            {"service": service, "env_var": env_var},
        )

    @property
    def hint(self) -> str:
        env_var, service = self.metadata["env_var"], self.metadata["service"]
        return (
            f"set {env_var} (`source .run/env` after `make run`)"
            f" or pass ClientOptions.{service}_addr / slicectl --{service}-addr"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.metadata["service"], self.metadata["env_var"]))


_CLASS_OF_CODE: dict[grpc.StatusCode, type[SlicebrokerError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ABORTED: ConflictError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNKNOWN: InternalError,
    grpc.StatusCode.DATA_LOSS: InternalError,
}


def error_for(
    code: grpc.StatusCode,
    reason: str,
    message: str,
    metadata: Mapping[str, str] | None = None,
    field: str | None = None,
    *,
    request_id: str | None = None,
) -> SlicebrokerError:
    """The error of the class that stands for `code` (the one place codes become classes)."""
    cls = _CLASS_OF_CODE.get(code, SlicebrokerError)
    return cls(code, reason, message, metadata, field, request_id=request_id)


def from_rpc_error(err: grpc.RpcError, *, where: str = "", request_id: str | None = None) -> SlicebrokerError:
    """Decodes a failed call, sync or aio: the status code, and the `google.rpc.Status` the services
    put in the `grpc-status-details-bin` trailer (ErrorInfo for the reason, BadRequest for the field).
    `where` ("broker at host:port") prefixes the message of errors that did not come from a
    slicebroker service, such as transport failures."""
    # Sync errors are grpc.Call objects, aio errors are not, but both answer these three.
    code: grpc.StatusCode = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    message: str = (err.details() if hasattr(err, "details") else str(err)) or code.name
    trailers = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    reason, field = "", None
    metadata: dict[str, str] = {}
    for key, value in trailers or ():
        if key != _STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status.FromString(value)
        message = status.message or message
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                if bad.field_violations and field is None:
                    field = bad.field_violations[0].field
    if not reason:
        reason = code.name
        if where:
            message = f"{where}: {message}"
    return error_for(code, reason, message, metadata, field or metadata.get("field"), request_id=request_id)
