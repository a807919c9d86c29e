"""The tenants file: institutions and their projects with device caps, as YAML.

    institutions:
      - id: snu
        display_name: Seoul National University
        projects:
          - id: snu-llm
            display_name: Korean LLM pre-training
            device_caps: {H100-SXM-80GB: 64, RNGD: 16}

`parse_tenants` turns the text into validated specs, naming the path of anything wrong (e.g.
"institutions[1].projects[0].device_caps[H100-SXM-80GB]"); `apply_tenants` upserts them through
`QuotaService`, institutions first. Applying the same file twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from slicebroker.core.errors import InvalidArgument
from slicebroker.quota.domain.model import Institution, InstitutionSpec, Project, ProjectSpec
from slicebroker.quota.domain.service import QuotaService
from slicebroker.quota.domain.validation import validate_institution, validate_project

_INSTITUTION_KEYS = frozenset({"id", "display_name", "projects"})
_PROJECT_KEYS = frozenset({"id", "display_name", "device_caps"})


def parse_tenants(text: str) -> tuple[list[InstitutionSpec], list[ProjectSpec]]:
    """Validated institutions and projects of a tenants file; InvalidArgument names the bad path."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidArgument("tenants", f"not valid YAML: {exc}") from exc
    if doc is None:
        return [], []
    root = _mapping("", doc, frozenset({"institutions"}))
    entries = _list("institutions", root.get("institutions", []))
    institutions: list[InstitutionSpec] = []
    projects: list[ProjectSpec] = []
    seen_projects: dict[str, str] = {}
    seen_institutions: set[str] = set()
    for i, raw in enumerate(entries):
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
        seen_institutions.add(institution.id)
        institutions.append(institution)
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
            if project.id in seen_projects:
                raise InvalidArgument(
                    f"{ppath}.id",
                    f"project {project.id!r} is listed twice (also at {seen_projects[project.id]})",
                )
            seen_projects[project.id] = ppath
            projects.append(project)
    return institutions, projects


async def apply_tenants(service: QuotaService, text: str) -> tuple[list[Institution], list[Project]]:
    """Parses the whole file first, so a bad file changes nothing, then upserts everything."""
    institution_specs, project_specs = parse_tenants(text)
    institutions = [await service.upsert_institution(spec) for spec in institution_specs]
    projects = [await service.upsert_project(spec) for spec in project_specs]
    return institutions, projects


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
