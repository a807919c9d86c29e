"""Who may read whose usage: tenants see their own institution only, admins and services see all."""

from __future__ import annotations

from dataclasses import dataclass

from slicebroker.core.errors import PermissionDenied


@dataclass(frozen=True, slots=True)
class Caller:
    admin: bool
    institution: str = ""


ADMIN = Caller(admin=True)


def scope(caller: Caller, institution: str) -> str:
    """The institution a read is limited to ("" = all): a tenant's own, whatever it asked for, and
    a refusal when it asked for another's."""
    if caller.admin:
        return institution
    if institution and institution != caller.institution:
        raise PermissionDenied(f"institution {caller.institution!r} may not read {institution!r}'s usage")
    return caller.institution


def require_admin(caller: Caller, what: str) -> None:
    if not caller.admin:
        raise PermissionDenied(f"{what} is for facility admins")
