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

        # Requested on entry, renewed in the background, released on exit (even on Ctrl-C):
        with sb.lease("snu-llm", "H100-SXM-80GB", count=8, lease="10m") as held:
            run_training(held.slices)
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
from slicebroker.client._inventory import CapacityRow, NodeState, NodeStateChange, NodeTopology
from slicebroker.client._lease import Lease, parse_lease
from slicebroker.client._models import (
    Device,
    Grant,
    GrantChange,
    GrantChangeType,
    GrantState,
    HostResources,
    Institution,
    Node,
    Placement,
    Project,
    Quote,
    Shape,
    Sku,
    SkuCapacity,
    Slice,
    Usage,
    UsageRow,
)
from slicebroker.client._options import ClientOptions, RetryPolicy
from slicebroker.client._scope import AsyncGrantLease, GrantLease, LeaseEvent, LeaseLostError
from slicebroker.client._sync import Client

__all__ = [
    "AsyncClient",
    "AsyncGrantLease",
    "CapacityRow",
    "Client",
    "ClientOptions",
    "ConfigurationError",
    "ConflictError",
    "DeadlineExceededError",
    "Device",
    "FailedPreconditionError",
    "Grant",
    "GrantChange",
    "GrantChangeType",
    "GrantLease",
    "GrantState",
    "HostResources",
    "Institution",
    "InternalError",
    "InvalidArgumentError",
    "Lease",
    "LeaseEvent",
    "LeaseLostError",
    "Node",
    "NodeState",
    "NodeStateChange",
    "NodeTopology",
    "NotFoundError",
    "PermissionDeniedError",
    "Placement",
    "Project",
    "Quote",
    "ResourceExhaustedError",
    "RetryPolicy",
    "Shape",
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
