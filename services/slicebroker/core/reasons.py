"""Stable error reasons, sent to clients in `google.rpc.ErrorInfo.reason`.

Clients branch on these strings. Do not change a value once released; add new ones instead.
"""

from enum import StrEnum


class Reason(StrEnum):
    # Bad input: INVALID_ARGUMENT
    INVALID_FIELD = "INVALID_FIELD"
    UNKNOWN_SKU = "UNKNOWN_SKU"
    INVALID_FACILITY = "INVALID_FACILITY"
    # Missing things: NOT_FOUND
    GRANT_NOT_FOUND = "GRANT_NOT_FOUND"
    NODE_NOT_FOUND = "NODE_NOT_FOUND"
    DEVICE_NOT_FOUND = "DEVICE_NOT_FOUND"
    PROJECT_NOT_FOUND = "PROJECT_NOT_FOUND"
    INSTITUTION_NOT_FOUND = "INSTITUTION_NOT_FOUND"
    RESERVATION_NOT_FOUND = "RESERVATION_NOT_FOUND"
    TENANT_NOT_FOUND = "TENANT_NOT_FOUND"
    # Optimistic concurrency: ABORTED (retry with fresh state)
    GENERATION_CONFLICT = "GENERATION_CONFLICT"
    DEVICE_TAKEN = "DEVICE_TAKEN"
    # The node has not the host CPU or memory left that the claim takes with its devices.
    HOST_RESOURCES_TAKEN = "HOST_RESOURCES_TAKEN"
    # State does not allow it: FAILED_PRECONDITION
    NODE_NOT_SCHEDULABLE = "NODE_NOT_SCHEDULABLE"
    DEVICE_UNHEALTHY = "DEVICE_UNHEALTHY"
    GRANT_NOT_ACTIVE = "GRANT_NOT_ACTIVE"
    RESERVATION_EXPIRED = "RESERVATION_EXPIRED"
    RESERVATION_MISMATCH = "RESERVATION_MISMATCH"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    NODE_SHAPE_CHANGED = "NODE_SHAPE_CHANGED"
    TENANT_NOT_ACTIVE = "TENANT_NOT_ACTIVE"
    NODE_NOT_EMPTY = "NODE_NOT_EMPTY"
    # Accounting: a billing period not yet closed (no statements) or not yet over (cannot close),
    # and nothing to price with before a first price book.
    PERIOD_NOT_CLOSED = "PERIOD_NOT_CLOSED"
    PERIOD_NOT_OVER = "PERIOD_NOT_OVER"
    NO_PRICE_BOOK = "NO_PRICE_BOOK"
    # Limits: RESOURCE_EXHAUSTED
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    INSUFFICIENT_CAPACITY = "INSUFFICIENT_CAPACITY"
    BUDGET_EXHAUSTED = "BUDGET_EXHAUSTED"
    # One caller over its per-principal request rate (issue 9); retry after metadata retry_after_ms.
    RATE_LIMITED = "RATE_LIMITED"
    # Auth
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    # Infrastructure: UNAVAILABLE / INTERNAL
    DEPENDENCY_UNAVAILABLE = "DEPENDENCY_UNAVAILABLE"
    INTERNAL = "INTERNAL"
    # A server has more tenant calls than it can start within their wait limit (admission control);
    # retry after metadata retry_after_ms.
    OVERLOADED = "OVERLOADED"
