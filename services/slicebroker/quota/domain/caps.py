"""Cap arithmetic: whether a request fits a project's cap, and the refusal when it does not.

The rule is enforced atomically by `storage/lua/reserve.lua`, which must agree with `fits`; the
storage integration tests hold the two together. A SKU missing from a project's caps has a cap of 0:
nothing is allowed unless it is granted explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping

from slicebroker.core.errors import ResourceExhausted
from slicebroker.core.reasons import Reason


def cap_of(device_caps: Mapping[str, int], sku: str) -> int:
    return device_caps.get(sku, 0)


def fits(cap: int, in_use: int, requested: int) -> bool:
    """True when holding `requested` more devices keeps the project within `cap`. A cap lowered
    below what is already held refuses new requests but takes nothing back."""
    return in_use + requested <= cap


def headroom(cap: int, in_use: int) -> int:
    """Devices the project may still take (never negative, even over a lowered cap)."""
    return max(cap - in_use, 0)


def quota_exceeded(project: str, sku: str, cap: int, in_use: int, requested: int) -> ResourceExhausted:
    return ResourceExhausted(
        f"project {project} would hold {in_use + requested} {sku}; its cap is {cap} ({in_use} in use)",
        reason=Reason.QUOTA_EXCEEDED,
        metadata={"project": project, "sku": sku, "limit": cap, "in_use": in_use, "requested": requested},
    )
