"""The tenants file: the shipped example parses, and every mistake is reported with its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from slicebroker.core.errors import InvalidArgument
from slicebroker.core.reasons import Reason
from slicebroker.quota.domain.amount import Amount
from slicebroker.quota.domain.budget import BudgetMode
from slicebroker.quota.domain.model import NodeKind
from slicebroker.quota.domain.tenants import parse_tenants, parse_tenants_file
from slicebroker.quota.domain.tree import QuotaEntry

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


FULL = """
cohorts:
  - id: unis
    quotas: {gpu: {hard_cap: 100}}
institutions:
  - id: snu
    cohort: unis
    weight: 2
    quotas: {H100-SXM-80GB: {nominal: 8, borrowing_limit: 4, lending_limit: unlimited}}
    budget: {hours: 1000, start: 2026-01-01, end: 2026-04-01, expiry: 2026-04-15, carry_over_max_hours: 100,
             renews: true}
    projects:
      - id: snu-llm
        budget: {hours: 10, start: 2026-01-01T00:00:00, end: 2026-02-01, mode: soft}
        users: [{id: alice, caps: {H100-SXM-80GB: 2}}, {id: bob}]
  - id: acme
    weight: 0.5
"""


def test_cohorts_quotas_budgets_and_users_parse() -> None:
    parsed = parse_tenants_file(FULL)
    kinds = {n.id: (n.kind, n.parent, n.weight) for n in parsed.nodes}
    assert kinds == {
        "unis": (NodeKind.COHORT, "", 1.0),
        "snu": (NodeKind.INSTITUTION, "unis", 2.0),
        "acme": (NodeKind.INSTITUTION, "", 0.5),
        "snu-llm/alice": (NodeKind.USER, "snu-llm", 1.0),
        "snu-llm/bob": (NodeKind.USER, "snu-llm", 1.0),
    }
    assert parsed.quotas["unis"] == {"gpu": QuotaEntry(hard_cap=Amount.of(100))}
    assert parsed.quotas["snu"] == {"H100-SXM-80GB": QuotaEntry(Amount.of(8), Amount.of(4))}
    assert parsed.quotas["snu-llm/alice"] == {"H100-SXM-80GB": QuotaEntry(hard_cap=Amount.of(2))}
    jan = 1_767_225_600_000  # 2026-01-01T00:00Z
    snu = parsed.budgets["snu"]
    assert (snu.start_ms, snu.mode, snu.award_mh, snu.carry_max_mh, snu.renews) == (
        jan,
        BudgetMode.HARD,
        10**6,
        10**5,
        True,
    )
    assert snu.expiry_ms - snu.end_ms == 14 * 86_400_000
    llm = parsed.budgets["snu-llm"]
    assert llm.mode is BudgetMode.SOFT and llm.expiry_ms == llm.end_ms and not llm.renews


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("institutions: [{id: a, cohort: nowhere}]\n", "institutions[0].cohort"),
        ("cohorts: [{id: c, cohort: later}, {id: later}]\n", "cohorts[0].cohort"),
        ("cohorts: [{id: c}]\ninstitutions: [{id: c}]\n", "institutions[0].id"),
        ("institutions: [{id: a, weight: heavy}]\n", "institutions[0].weight"),
        ("institutions: [{id: a, weight: 0}]\n", "institutions[0].weight"),
        ("institutions: [{id: a, quotas: {TPU: {nominal: 1}}}]\n", "institutions[0].quotas[TPU]"),
        ("institutions: [{id: a, quotas: {gpu: {nominal: -1}}}]\n", "institutions[0].quotas[gpu].nominal"),
        ("institutions: [{id: a, quotas: {gpu: {nominal: 1, colour: red}}}]\n", "institutions[0].quotas[gpu].colour"),
        # Borrowing needs a cohort to borrow from.
        (
            "institutions: [{id: a, quotas: {gpu: {borrowing_limit: 2}}}]\n",
            "institutions[0].quotas[gpu].borrowing_limit",
        ),
        ("institutions: [{id: a, budget: {hours: 1, end: 2026-02-01}}]\n", "institutions[0].budget.start"),
        (
            "institutions: [{id: a, budget: {hours: 1, start: 2026-02-01, end: 2026-01-01}}]\n",
            "institutions[0].budget.end",
        ),
        (
            "institutions: [{id: a, budget: {hours: -1, start: 2026-01-01, end: 2026-02-01}}]\n",
            "institutions[0].budget.hours",
        ),
        (
            "institutions: [{id: a, budget: {hours: 1, start: 2026-01-01, end: 2026-02-01, mode: strict}}]\n",
            "institutions[0].budget.mode",
        ),
        (
            "institutions: [{id: a, projects: [{id: p, users: [{id: Al}]}]}]\n",
            "institutions[0].projects[0].users[0].id",
        ),
        (
            "institutions: [{id: a, projects: [{id: p, users: [{id: al}, {id: al}]}]}]\n",
            "institutions[0].projects[0].users[1].id",
        ),
        (
            "institutions: [{id: a, projects: [{id: p, users: [{id: al, caps: {gpu: lots}}]}]}]\n",
            "institutions[0].projects[0].users[0].caps[gpu].hard_cap",
        ),
    ],
)
def test_mistakes_in_the_new_sections_name_their_path(text: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        parse_tenants_file(text)
    assert exc.value.field == field
