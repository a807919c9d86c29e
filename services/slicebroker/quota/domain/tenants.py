"""The tenants file: cohorts, institutions, their projects and users, with quotas and budgets, as YAML.

    cohorts:                          # groups of institutions that lend to each other (optional)
      - id: universities
        display_name: Korean universities
        quotas: {H100-SXM-80GB: {nominal: 96, hard_cap: 160}}
    institutions:
      - id: snu
        display_name: Seoul National University
        cohort: universities          # optional; without it the institution stands alone
        weight: 2                     # fair-share weight (optional, default 1)
        quotas: {H100-SXM-80GB: {nominal: 48, borrowing_limit: 32, lending_limit: 16}}
        budget: {hours: 250000, start: 2026-01-01, end: 2026-07-01, expiry: 2026-07-15,
                 mode: hard, carry_over_max_hours: 25000, renews: true}
        projects:
          - id: snu-llm
            display_name: Korean LLM pre-training
            device_caps: {H100-SXM-80GB: 64, RNGD: 16}
            budget: {...}             # as above (optional)
            users: [{id: alice, caps: {H100-SXM-80GB: 8}}]

Quota entries take nominal, borrowing_limit, lending_limit and hard_cap (devices, "unlimited", or
left out for the default); a user takes caps only. Budget dates are UTC days or timestamps; the
expiry defaults to the end, the mode to hard.

`parse_tenants_file` turns the text into validated values, naming the path of anything wrong
(e.g. "institutions[1].projects[0].device_caps[H100-SXM-80GB]"); `apply_tenants` writes them
through `QuotaService`, parents first. Applying the same file twice changes nothing: states an
admin set are kept, entries are only set (never removed), and a budget is awarded only to a tenant
that has none (later periods are the roll-over's, and edits the admin API's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import yaml

from slicebroker.core.errors import InvalidArgument, NotFound
from slicebroker.quota.domain import budget as budgets
from slicebroker.quota.domain.amount import UNLIMITED, ZERO, Amount
from slicebroker.quota.domain.budget import MH_PER_HOUR, Budget, BudgetMode
from slicebroker.quota.domain.model import (
    Institution,
    InstitutionSpec,
    NodeKind,
    NodeSpec,
    Project,
    ProjectSpec,
    user_node_id,
)
from slicebroker.quota.domain.service import QuotaService
from slicebroker.quota.domain.tree import QuotaEntry
from slicebroker.quota.domain.validation import (
    check_amount,
    check_display_name,
    validate_budget,
    validate_entries,
    validate_institution,
    validate_node,
    validate_project,
)

_COHORT_KEYS = frozenset({"id", "display_name", "cohort", "weight", "quotas"})
_INSTITUTION_KEYS = frozenset({"id", "display_name", "projects", "cohort", "weight", "quotas", "budget"})
_PROJECT_KEYS = frozenset({"id", "display_name", "device_caps", "budget", "users"})
_USER_KEYS = frozenset({"id", "display_name", "caps"})
_ENTRY_KEYS = frozenset({"nominal", "borrowing_limit", "lending_limit", "hard_cap"})
_BUDGET_KEYS = frozenset({"hours", "start", "end", "expiry", "mode", "carry_over_max_hours", "renews"})


@dataclass(frozen=True, slots=True)
class TenantsFile:
    """A parsed tenants file. `nodes` are the cohorts, the institutions that name a cohort or a
    weight, and the users, parents first; `quotas` and `budgets` are by tenant id."""

    institutions: list[InstitutionSpec] = field(default_factory=list)
    projects: list[ProjectSpec] = field(default_factory=list)
    nodes: list[NodeSpec] = field(default_factory=list)
    quotas: dict[str, dict[str, QuotaEntry | None]] = field(default_factory=dict)
    budgets: dict[str, Budget] = field(default_factory=dict)


def parse_tenants(text: str) -> tuple[list[InstitutionSpec], list[ProjectSpec]]:
    """The institutions and projects of a tenants file (see `parse_tenants_file`)."""
    parsed = parse_tenants_file(text)
    return parsed.institutions, parsed.projects


def parse_tenants_file(text: str) -> TenantsFile:
    """Validated contents of a tenants file; InvalidArgument names the bad path."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidArgument("tenants", f"not valid YAML: {exc}") from exc
    out = TenantsFile()
    if doc is None:
        return out
    root = _mapping("", doc, frozenset({"institutions", "cohorts"}))
    cohorts: dict[str, NodeSpec] = {}
    for i, raw in enumerate(_list("cohorts", root.get("cohorts", []))):
        path = f"cohorts[{i}]"
        entry = _mapping(path, raw, _COHORT_KEYS)
        parent = _optional_string(f"{path}.cohort", entry.get("cohort"))
        if parent and parent not in cohorts:
            raise InvalidArgument(f"{path}.cohort", f"no cohort {parent!r} listed before it")
        spec = _node(path, entry, NodeKind.COHORT, parent, cohorts)
        cohorts[spec.id] = spec
        out.nodes.append(spec)
        _quotas(out, path, entry, spec)
    seen_projects: dict[str, str] = {}
    seen_institutions: set[str] = set()
    for i, raw in enumerate(_list("institutions", root.get("institutions", []))):
        path = f"institutions[{i}]"
        entry = _mapping(path, raw, _INSTITUTION_KEYS)
        institution = validate_institution(
            InstitutionSpec(
                id=_string(f"{path}.id", entry.get("id")),
                display_name=_string(f"{path}.display_name", entry.get("display_name", "")),
            ),
            path,
        )
        if institution.id in seen_institutions:
            raise InvalidArgument(f"{path}.id", f"institution {institution.id!r} is listed twice")
        if institution.id in cohorts:
            raise InvalidArgument(f"{path}.id", f"{institution.id!r} is also a cohort")
        seen_institutions.add(institution.id)
        out.institutions.append(institution)
        cohort = _optional_string(f"{path}.cohort", entry.get("cohort"))
        if cohort and cohort not in cohorts:
            raise InvalidArgument(f"{path}.cohort", f"no cohort {cohort!r} in this file")
        node = _node(path, entry, NodeKind.INSTITUTION, cohort, cohorts)
        if cohort or "weight" in entry:
            out.nodes.append(node)
        _quotas(out, path, entry, node)
        _budget(out, path, entry, institution.id)
        for j, raw_project in enumerate(_list(f"{path}.projects", entry.get("projects", []))):
            ppath = f"{path}.projects[{j}]"
            p = _mapping(ppath, raw_project, _PROJECT_KEYS)
            project = validate_project(
                ProjectSpec(
                    id=_string(f"{ppath}.id", p.get("id")),
                    institution=institution.id,
                    display_name=_string(f"{ppath}.display_name", p.get("display_name", "")),
                    device_caps=_mapping(f"{ppath}.device_caps", p.get("device_caps", {})),
                ),
                ppath,
                institution_field=f"{path}.id",
            )
            if project.id in seen_projects or project.id in cohorts or project.id in seen_institutions:
                raise InvalidArgument(
                    f"{ppath}.id",
                    f"project {project.id!r} is listed twice (also at {seen_projects.get(project.id, 'a tenant')})",
                )
            seen_projects[project.id] = ppath
            out.projects.append(project)
            _budget(out, ppath, p, project.id)
            _users(out, ppath, p, project.id)
    return out


async def apply_tenants(service: QuotaService, text: str, now_ms: int) -> tuple[list[Institution], list[Project]]:
    """Parses the whole file first, so a bad file changes nothing, then writes parents before
    children: cohorts, institutions, their places and quotas, projects, users, budgets (a renewing
    one in its period as of `now_ms`)."""
    parsed = parse_tenants_file(text)
    institutions = [await service.upsert_institution(spec) for spec in parsed.institutions]
    for spec in parsed.nodes:
        if spec.kind is not NodeKind.USER:
            await _upsert_keeping_state(service, spec)
    projects = [await service.upsert_project(spec) for spec in parsed.projects]
    for spec in parsed.nodes:
        if spec.kind is NodeKind.USER:
            await _upsert_keeping_state(service, spec)
    for node_id, entries in parsed.quotas.items():
        await service.set_quota(node_id, entries, None)
    for node_id, budget in parsed.budgets.items():
        if (await service.get_node(node_id)).budget is None:
            await service.set_budget(node_id, budgets.current(budget, now_ms), None)
    # Re-read: placing an institution in its cohort came after its first write.
    institutions = [i for i in await service.list_institutions() if i.id in {s.id for s in parsed.institutions}]
    return institutions, projects


async def _upsert_keeping_state(service: QuotaService, spec: NodeSpec) -> None:
    """Writes `spec` but keeps the state an admin gave the tenant, and its place when the file
    names none (so re-applying a file neither re-opens a tenant on hold nor moves one)."""
    try:
        current = await service.get_node(spec.id)
    except NotFound:
        await service.upsert_node(spec)
        return
    parent = spec.parent or current.parent
    await service.upsert_node(NodeSpec(spec.id, spec.kind, parent, current.state, spec.display_name, spec.weight))


def _node(
    path: str, entry: Mapping[str, Any], kind: NodeKind, parent: str, cohorts: Mapping[str, NodeSpec]
) -> NodeSpec:
    weight = entry.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise InvalidArgument(f"{path}.weight", f"must be a number, not {weight!r}")
    spec = NodeSpec(
        id=_string(f"{path}.id", entry.get("id")),
        kind=kind,
        parent=parent,
        display_name=check_display_name(
            f"{path}.display_name", _string(f"{path}.display_name", entry.get("display_name", ""))
        ),
        weight=float(weight),
    )
    try:
        return validate_node(spec, NodeKind.COHORT if parent in cohorts else None)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{path}.{exc.field}", exc.message) from None


def _entry(path: str, raw: Any) -> QuotaEntry:
    entry = _mapping(path, raw, _ENTRY_KEYS)

    def amount(key: str, default: Amount) -> Amount:
        value = entry.get(key)
        if isinstance(value, bool) or not isinstance(value, str | int | float | type(None)):
            raise InvalidArgument(f"{path}.{key}", f"must be a number of devices or 'unlimited', not {value!r}")
        return check_amount(f"{path}.{key}", "" if value is None else str(value), default)

    return QuotaEntry(
        nominal=amount("nominal", ZERO),
        borrowing_limit=amount("borrowing_limit", UNLIMITED),
        lending_limit=amount("lending_limit", UNLIMITED),
        hard_cap=amount("hard_cap", UNLIMITED),
    )


def _quotas(out: TenantsFile, path: str, entry: Mapping[str, Any], node: NodeSpec) -> None:
    raw = _mapping(f"{path}.quotas", entry.get("quotas", {}))
    if not raw:
        return
    entries: dict[str, QuotaEntry | None] = {cls: _entry(f"{path}.quotas[{cls}]", v) for cls, v in raw.items()}
    validate_entries(entries, bool(node.parent), prefix=f"{path}.quotas")
    out.quotas[node.id] = entries


def _users(out: TenantsFile, path: str, project: Mapping[str, Any], project_id: str) -> None:
    seen: set[str] = set()
    for k, raw in enumerate(_list(f"{path}.users", project.get("users", []))):
        upath = f"{path}.users[{k}]"
        u = _mapping(upath, raw, _USER_KEYS)
        name = _string(f"{upath}.id", u.get("id"))
        spec = NodeSpec(
            user_node_id(project_id, name),
            NodeKind.USER,
            project_id,
            display_name=_string(f"{upath}.display_name", u.get("display_name", "")),
        )
        try:
            validate_node(spec, NodeKind.PROJECT)
        except InvalidArgument as exc:
            raise InvalidArgument(f"{upath}.{exc.field}", exc.message) from None
        if name in seen:
            raise InvalidArgument(f"{upath}.id", f"user {name!r} is listed twice")
        seen.add(name)
        out.nodes.append(spec)
        caps = _mapping(f"{upath}.caps", u.get("caps", {}))
        entries: dict[str, QuotaEntry | None] = {
            cls: _entry(f"{upath}.caps[{cls}]", {"hard_cap": v}) for cls, v in caps.items()
        }
        validate_entries(entries, True, prefix=f"{upath}.caps", cap_only=True)
        if entries:
            out.quotas[spec.id] = entries


def _budget(out: TenantsFile, path: str, entry: Mapping[str, Any], node_id: str) -> None:
    if "budget" not in entry:
        return
    bpath = f"{path}.budget"
    b = _mapping(bpath, entry["budget"], _BUDGET_KEYS)
    mode = b.get("mode", "hard")
    if mode not in ("hard", "soft"):
        raise InvalidArgument(f"{bpath}.mode", f"must be hard or soft, not {mode!r}")
    renews = b.get("renews", False)
    if not isinstance(renews, bool):
        raise InvalidArgument(f"{bpath}.renews", f"must be true or false, not {renews!r}")
    end = _when(f"{bpath}.end", b.get("end"))
    budget = Budget(
        mode=BudgetMode(mode),
        start_ms=_when(f"{bpath}.start", b.get("start")),
        end_ms=end,
        expiry_ms=_when(f"{bpath}.expiry", b["expiry"]) if "expiry" in b else end,
        award_mh=_hours(f"{bpath}.hours", b.get("hours")),
        carry_max_mh=_hours(f"{bpath}.carry_over_max_hours", b.get("carry_over_max_hours", 0)),
        renews=renews,
    )
    try:
        validate_budget(budget)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{path}.{exc.field}", exc.message) from None
    out.budgets[node_id] = budget


def _when(path: str, value: Any) -> int:
    """Epoch ms of a YAML date (a UTC day) or timestamp (UTC unless it names a zone)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidArgument(path, f"not a date or timestamp: {value!r}") from None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day, tzinfo=UTC)
    else:
        raise InvalidArgument(
            path, "is required (a date such as 2026-01-01)" if value is None else f"not a date: {value!r}"
        )
    return int(moment.timestamp() * 1000)


def _hours(path: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1e9:
        raise InvalidArgument(path, f"must be a number of hours between 0 and 1e9, not {value!r}")
    return round(value * MH_PER_HOUR)


def _optional_string(path: str, value: Any) -> str:
    return "" if value is None else _string(path, value)


def _mapping(path: str, value: Any, allowed: frozenset[str] | None = None) -> Mapping[str, Any]:
    """`path` "" is the document itself."""
    if not isinstance(value, Mapping):
        raise InvalidArgument(path or "tenants", f"must be a mapping, not {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise InvalidArgument(path or "tenants", f"keys must be strings, not {key!r}")
        if allowed is not None and key not in allowed:
            raise InvalidArgument(
                f"{path}.{key}" if path else key, f"unknown key; expected one of {', '.join(sorted(allowed))}"
            )
    return value


def _list(path: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidArgument(path, f"must be a list, not {type(value).__name__}")
    return value


def _string(path: str, value: Any) -> str:
    if value is None:
        raise InvalidArgument(path, "is required")
    if not isinstance(value, str):
        raise InvalidArgument(path, f"must be a string, not {value!r}")
    return value
