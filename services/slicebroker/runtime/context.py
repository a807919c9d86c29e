"""Per-request context carried across awaits: the request id and the caller."""

from __future__ import annotations

import secrets
from contextvars import ContextVar
from dataclasses import dataclass

REQUEST_ID_HEADER = "x-request-id"

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

# Roles (see slicebroker.runtime.policy for what each may call). "admin" and "tenant" are the names
# the first token files used; they still load, as facility-admin and institution-admin.
FACILITY_ADMIN = "facility-admin"
INSTITUTION_ADMIN = "institution-admin"
PROJECT_MEMBER = "project-member"
SERVICE = "service"
ROLES = (FACILITY_ADMIN, INSTITUTION_ADMIN, PROJECT_MEMBER, SERVICE)
LEGACY_ROLES = {"admin": FACILITY_ADMIN, "tenant": INSTITUTION_ADMIN}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a facility admin, a member or admin of one institution, or a service of the mesh.

    `projects` limits a project member to those projects (empty for the other roles: an institution
    admin sees every project of its institution)."""

    name: str
    role: str  # one of ROLES ("admin" / "tenant" are accepted as their new names)
    institution: str = ""
    projects: tuple[str, ...] = ()
    # Set only for the caller of a service that runs without a token file (local development).
    local: bool = False

    @property
    def is_admin(self) -> bool:
        """Sees and acts on every tenant's data: facility admins and the mesh's own services."""
        return self.role in (FACILITY_ADMIN, SERVICE, "admin")

    @property
    def is_service(self) -> bool:
        return self.role == SERVICE


ANONYMOUS_ADMIN = Principal(name="local", role=FACILITY_ADMIN, local=True)
principal_var: ContextVar[Principal] = ContextVar("principal", default=ANONYMOUS_ADMIN)


def new_request_id() -> str:
    return secrets.token_hex(8)


def current_request_id() -> str:
    return request_id_var.get()
