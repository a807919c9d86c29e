"""The one authorisation policy: which roles may call which method, which calls are audited as
mutations, and the tenant-scoping helpers servicers (and the broker) use for resource checks.

The table is deliberately small and explicit. A method missing from it is open to facility admins
and the mesh's services only, so a new RPC is never exposed to tenants by accident.
"""

from __future__ import annotations

from dataclasses import dataclass

from slicebroker.core.errors import PermissionDenied
from slicebroker.runtime.context import (
    FACILITY_ADMIN,
    INSTITUTION_ADMIN,
    PROJECT_MEMBER,
    SERVICE,
    Principal,
)

ADMIN = frozenset({FACILITY_ADMIN})
SERVICE_ONLY = frozenset({SERVICE})
OPS = frozenset({FACILITY_ADMIN, SERVICE})
INSTITUTION = frozenset({FACILITY_ADMIN, SERVICE, INSTITUTION_ADMIN})
TENANTS = frozenset({FACILITY_ADMIN, SERVICE, INSTITUTION_ADMIN, PROJECT_MEMBER})

# Whole documents (facility YAML, price books) are larger than any name or id.
DOCUMENT_CHARS = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Rule:
    roles: frozenset[str]
    # Audited on every outcome (reads are audited only when refused).
    mutating: bool = False
    # Longest string accepted in any field of the request; None: the service's default.
    max_string: int | None = None


def _table() -> dict[str, Rule]:
    inv, quota, acc, broker = (
        "/slicebroker.v1.InventoryService/",
        "/slicebroker.v1.QuotaService/",
        "/slicebroker.v1.AccountingService/",
        "/slicebroker.v1.BrokerService/",
    )
    rules = {
        # inventory: tenants see the catalogue and free capacity; nodes carry other tenants' grant ids.
        inv + "ListSkus": Rule(TENANTS),
        inv + "GetCapacity": Rule(TENANTS),
        inv + "QueryCapacity": Rule(TENANTS),
        inv + "ListLeafNeighbours": Rule(OPS),
        inv + "GetNode": Rule(OPS),
        inv + "ListNodes": Rule(OPS),
        inv + "ListHolders": Rule(OPS),
        inv + "ExportFacility": Rule(OPS),
        inv + "Watch": Rule(OPS),
        inv + "LoadFacility": Rule(ADMIN, mutating=True, max_string=DOCUMENT_CHARS),
        inv + "RegisterNode": Rule(OPS, mutating=True),
        inv + "Heartbeat": Rule(OPS, mutating=True),
        inv + "SetNodeState": Rule(OPS, mutating=True),
        inv + "SetDeviceHealth": Rule(OPS, mutating=True),
        inv + "RemoveNode": Rule(ADMIN, mutating=True),
        inv + "Claim": Rule(SERVICE_ONLY, mutating=True),
        inv + "Release": Rule(SERVICE_ONLY, mutating=True),
        # quota: tenants read their own institution's tree (scoped in the servicer).
        quota + "ListInstitutions": Rule(TENANTS),
        quota + "GetProject": Rule(TENANTS),
        quota + "ListProjects": Rule(TENANTS),
        quota + "GetTenant": Rule(TENANTS),
        quota + "ListTenants": Rule(TENANTS),
        quota + "GetStandings": Rule(TENANTS),
        quota + "ListReservations": Rule(OPS),
        quota + "FairShareOrder": Rule(OPS),
        quota + "CheckCapacity": Rule(ADMIN),
        quota + "UpsertInstitution": Rule(ADMIN, mutating=True),
        quota + "UpsertProject": Rule(ADMIN, mutating=True),
        quota + "UpsertTenant": Rule(ADMIN, mutating=True),
        quota + "SetQuota": Rule(ADMIN, mutating=True),
        quota + "SetBudget": Rule(ADMIN, mutating=True),
        quota + "TopUpBudget": Rule(ADMIN, mutating=True),
        quota + "Reserve": Rule(SERVICE_ONLY, mutating=True),
        # What Reserve would answer, nothing written (the broker's quotes): the same callers.
        quota + "CheckReserve": Rule(SERVICE_ONLY),
        quota + "Commit": Rule(SERVICE_ONLY, mutating=True),
        quota + "Cancel": Rule(SERVICE_ONLY, mutating=True),
        quota + "RecordBurn": Rule(OPS, mutating=True),
        # accounting: usage is scoped to the caller's institution (and projects); bills are for
        # institution admins.
        acc + "GetUsage": Rule(TENANTS),
        acc + "QueryLedger": Rule(TENANTS),
        acc + "GetPriceBook": Rule(TENANTS),
        acc + "GetStatements": Rule(INSTITUTION),
        acc + "ExportLedger": Rule(INSTITUTION),
        # Prices a prospective use (the broker's Quote calls it); tenants for their own institution.
        acc + "Rate": Rule(TENANTS),
        # Admins may backfill or replay events (idempotent by event id).
        acc + "IngestEvents": Rule(OPS, mutating=True),
        acc + "PublishPriceBook": Rule(ADMIN, mutating=True, max_string=DOCUMENT_CHARS),
        acc + "ClosePeriod": Rule(ADMIN, mutating=True),
        acc + "ReratePeriod": Rule(ADMIN, mutating=True),
        # broker: anyone with a project; the broker checks the grant's owner (require_tenant_access).
        broker + "RequestGrant": Rule(TENANTS, mutating=True),
        broker + "RenewGrant": Rule(TENANTS, mutating=True),
        broker + "ReleaseGrant": Rule(TENANTS, mutating=True),
        broker + "GetGrant": Rule(TENANTS),
        broker + "ListGrants": Rule(TENANTS),
        # A quote reads only; the broker checks the project is the caller's.
        broker + "Quote": Rule(TENANTS),
        # Scoped per change to what the caller may see (the broker's tenant checks).
        broker + "WatchGrants": Rule(TENANTS),
        # every service's audit log
        "/slicebroker.v1.AuditService/ListAudit": Rule(ADMIN),
    }
    return rules


POLICY: dict[str, Rule] = _table()
# Unlisted methods (a new RPC not yet in the table): operators only, audited as mutations.
DEFAULT_RULE = Rule(OPS, mutating=True)


def rule_for(method: str) -> Rule:
    return POLICY.get(method, DEFAULT_RULE)


def authorize(principal: Principal, method: str) -> Rule:
    """The method's rule, or PermissionDenied naming the role that was refused and who may call."""
    rule = rule_for(method)
    if principal.local or principal.role in rule.roles:
        return rule
    short = method.rsplit("/", 1)[-1]
    allowed = ", ".join(sorted(rule.roles))
    raise PermissionDenied(
        f"{short} is not allowed for role {principal.role!r} (allowed: {allowed})",
        metadata={"method": short, "role": principal.role},
    )


# -- resource scoping ------------------------------------------------------------------------------


def require_tenant_access(principal: Principal, institution: str, project: str = "") -> None:
    """Refuses a tenant acting on another institution's (or, for a project member, another
    project's) resource. Admins and services pass. The broker calls this with a grant's owner."""
    if principal.is_admin or principal.local:
        return
    if not principal.institution or institution != principal.institution:
        raise PermissionDenied(
            f"{principal.name!r} of institution {principal.institution!r} may not access "
            f"{institution or 'an unowned'!r} resources",
            metadata={"institution": institution, "principal": principal.name},
        )
    if principal.role == PROJECT_MEMBER and project not in principal.projects:
        raise PermissionDenied(
            f"{principal.name!r} is not a member of project {project!r}",
            metadata={"project": project, "principal": principal.name},
        )


def scope_institution(principal: Principal, requested: str) -> str:
    """The institution a tenant's read is limited to ("" = all, for admins): its own when it asked
    for none, a refusal when it asked for another's."""
    if principal.is_admin or principal.local:
        return requested
    if requested and requested != principal.institution:
        require_tenant_access(principal, requested)
    return principal.institution


def visible_projects(principal: Principal) -> frozenset[str] | None:
    """The projects a caller may see within its institution; None means all of them."""
    if principal.role == PROJECT_MEMBER and not principal.local:
        return frozenset(principal.projects)
    return None


def scope_project(principal: Principal, requested: str) -> str:
    """The project a read is limited to ("" = no limit). A project member must name one of its
    projects, or has it named for it when it has exactly one; others pass through unchanged."""
    projects = visible_projects(principal)
    if projects is None:
        return requested
    if requested:
        require_tenant_access(principal, principal.institution, requested)
        return requested
    if len(projects) == 1:
        return next(iter(projects))
    raise PermissionDenied(
        f"{principal.name!r} is a member of several projects; name one ({', '.join(sorted(projects))})",
        metadata={"principal": principal.name},
    )
