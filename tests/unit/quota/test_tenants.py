"""The tenants file: the shipped example parses, and every mistake is reported with its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from slicebroker.core.errors import InvalidArgument
from slicebroker.core.reasons import Reason
from slicebroker.quota.domain.tenants import parse_tenants

GOOD = """
institutions:
  - id: snu
    display_name: Seoul National University
    projects:
      - id: snu-llm
        device_caps: {H100-SXM-80GB: 64, RNGD: 8}
      - id: snu-bio
  - id: acme
"""


def test_the_example_file_parses(examples_dir: Path) -> None:
    institutions, projects = parse_tenants((examples_dir / "tenants.yaml").read_text())
    assert len(institutions) >= 4
    assert all(2 <= sum(p.institution == i.id for p in projects) <= 3 for i in institutions)
    skus = {sku for p in projects for sku in p.device_caps}
    assert {"H100-SXM-80GB", "H200-SXM-141GB", "RNGD", "ATOM"} <= skus


def test_projects_belong_to_the_institution_they_are_nested_in() -> None:
    institutions, projects = parse_tenants(GOOD)
    assert [i.id for i in institutions] == ["snu", "acme"]
    assert [(p.id, p.institution) for p in projects] == [("snu-llm", "snu"), ("snu-bio", "snu")]
    assert projects[0].device_caps == {"H100-SXM-80GB": 64, "RNGD": 8}
    assert projects[1].device_caps == {} and projects[1].display_name == ""


@pytest.mark.parametrize("text", ["", "# nothing\n", "institutions: []\n"])
def test_empty_files_are_empty(text: str) -> None:
    assert parse_tenants(text) == ([], [])


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ("institutions: [", "tenants", Reason.INVALID_FIELD),
        ("- a\n", "tenants", Reason.INVALID_FIELD),
        ("tenants: []\n", "tenants", Reason.INVALID_FIELD),
        ("institutions: {}\n", "institutions", Reason.INVALID_FIELD),
        ("institutions: [{display_name: x}]\n", "institutions[0].id", Reason.INVALID_FIELD),
        ("institutions: [{id: Bad}]\n", "institutions[0].id", Reason.INVALID_FIELD),
        ("institutions: [{id: a, colour: red}]\n", "institutions[0].colour", Reason.INVALID_FIELD),
        ("institutions: [{id: a}, {id: a}]\n", "institutions[1].id", Reason.INVALID_FIELD),
        (
            "institutions: [{id: a, projects: [{id: 7}]}]\n",
            "institutions[0].projects[0].id",
            Reason.INVALID_FIELD,
        ),
        (
            "institutions: [{id: a, projects: [{id: p, device_caps: {H100-SXM-80GB: 8, TPU: 1}}]}]\n",
            "institutions[0].projects[0].device_caps[TPU]",
            Reason.UNKNOWN_SKU,
        ),
        (
            "institutions: [{id: a, projects: [{id: p, device_caps: {RNGD: lots}}]}]\n",
            "institutions[0].projects[0].device_caps[RNGD]",
            Reason.INVALID_FIELD,
        ),
        (
            "institutions: [{id: a, projects: [{id: p, device_caps: [RNGD]}]}]\n",
            "institutions[0].projects[0].device_caps",
            Reason.INVALID_FIELD,
        ),
        (
            "institutions: [{id: a, projects: [{id: p}]}, {id: b, projects: [{id: q}, {id: p}]}]\n",
            "institutions[1].projects[1].id",
            Reason.INVALID_FIELD,
        ),
    ],
)
def test_mistakes_name_their_path(text: str, field: str, reason: Reason) -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_tenants(text)
    assert (exc.value.field, exc.value.reason) == (field, reason)
