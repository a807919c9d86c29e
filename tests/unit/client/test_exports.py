"""The SDK's public surface is frozen: adding or removing a name is a deliberate, reviewed change."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import slicebroker.client

EXPECTED_EXPORTS = [
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


def test_all_is_exactly_the_frozen_list() -> None:
    assert slicebroker.client.__all__ == EXPECTED_EXPORTS


def test_every_export_resolves() -> None:
    for name in slicebroker.client.__all__:
        assert getattr(slicebroker.client, name) is not None, name


def test_every_error_class_is_in_the_one_family() -> None:
    errors = [getattr(slicebroker.client, n) for n in EXPECTED_EXPORTS if n.endswith("Error")]
    assert all(issubclass(e, slicebroker.client.SlicebrokerError) for e in errors)


def test_the_package_ships_py_typed() -> None:
    assert (Path(slicebroker.client.__file__).parent / "py.typed").is_file()


def test_sdk_and_cli_load_no_service_or_runtime_code() -> None:
    # In a fresh interpreter: this test process has the services loaded already.
    probe = (
        "import sys, slicebroker.client, slicebroker.cli.main\n"
        "allowed = ('slicebroker.client', 'slicebroker.cli', 'slicebroker.v1')\n"
        "print(sorted(m for m in sys.modules if m.startswith('slicebroker.') and not m.startswith(allowed)))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
