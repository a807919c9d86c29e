"""Per-request context carried across awaits: the request id and the caller."""

from __future__ import annotations

import secrets
from contextvars import ContextVar
from dataclasses import dataclass

REQUEST_ID_HEADER = "x-request-id"

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a facility admin, a tenant of one institution, or a service of the mesh."""

    name: str
    role: str  # "admin", "tenant" or "service"
    institution: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role in ("admin", "service")


ANONYMOUS_ADMIN = Principal(name="local", role="admin")
principal_var: ContextVar[Principal] = ContextVar("principal", default=ANONYMOUS_ADMIN)


def new_request_id() -> str:
    return secrets.token_hex(8)


def current_request_id() -> str:
    return request_id_var.get()
