"""The slicebroker Python SDK: request, renew and release grants of GPUs and NPUs, and read the
facility, the tenants and their usage.

`Client` blocks, `AsyncClient` is for asyncio; both take a `ClientOptions` (or read SLICEBROKER_*
variables with `from_env()`), return frozen dataclasses, and raise one error family,
`SlicebrokerError`, whose subclasses follow the gRPC status code and whose `.reason` is the stable
reason the services send::

    from slicebroker.client import Client, ResourceExhaustedError

    with Client.from_env() as sb:
        try:
            grant = sb.request_grant("snu-llm", "H100-SXM-80GB", count=8, lease="2h")
        except ResourceExhaustedError as err:
            if err.reason == "QUOTA_EXCEEDED":
                ...
"""

from slicebroker.client._async import AsyncClient
from slicebroker.client._errors import (
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
from slicebroker.client._lease import Lease, parse_lease
from slicebroker.client._models import (
    Device,
    Grant,
    GrantState,
    Institution,
    Node,
    Project,
    Sku,
    SkuCapacity,
    Slice,
    Usage,
    UsageRow,
)
from slicebroker.client._options import ClientOptions, RetryPolicy
from slicebroker.client._sync import Client

__all__ = [
    "AsyncClient",
    "Client",
    "ClientOptions",
    "ConfigurationError",
    "ConflictError",
    "DeadlineExceededError",
    "Device",
    "FailedPreconditionError",
    "Grant",
    "GrantState",
    "Institution",
    "InternalError",
    "InvalidArgumentError",
    "Lease",
    "Node",
    "NotFoundError",
    "PermissionDeniedError",
    "Project",
    "ResourceExhaustedError",
    "RetryPolicy",
    "Sku",
    "SkuCapacity",
    "Slice",
    "SlicebrokerError",
    "UnauthenticatedError",
    "UnavailableError",
    "Usage",
    "UsageRow",
    "parse_lease",
]
