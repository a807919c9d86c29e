"""Validation of quota input: every bad field is refused with its name, before anything is written."""

from __future__ import annotations

from dataclasses import replace

import pytest

from slicebroker.core.errors import InvalidArgument
from slicebroker.core.ids import new_grant_id
from slicebroker.core.reasons import Reason
from slicebroker.quota.domain.model import InstitutionSpec, ProjectSpec, ReservationRequest
from slicebroker.quota.domain.validation import (
    KNOWN_SKUS,
    MAX_BATCH,
    validate_grant_ids,
    validate_institution,
    validate_project,
    validate_reservations,
)

GOOD = ReservationRequest(grant_id=new_grant_id(), project="snu-llm", sku="RNGD", count=2, ttl_seconds=30)


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"grant_id": ""}, "grant_id", Reason.INVALID_FIELD),
        ({"grant_id": "gr_short"}, "grant_id", Reason.INVALID_FIELD),
        ({"project": ""}, "project", Reason.INVALID_FIELD),
        ({"project": "Bad Name"}, "project", Reason.INVALID_FIELD),
        ({"sku": "h100-sxm-80gb"}, "sku", Reason.UNKNOWN_SKU),
        ({"sku": ""}, "sku", Reason.UNKNOWN_SKU),
        ({"count": 0}, "count", Reason.INVALID_FIELD),
        ({"count": -1}, "count", Reason.INVALID_FIELD),
        ({"count": 100_001}, "count", Reason.INVALID_FIELD),
        ({"ttl_seconds": 0}, "ttl_seconds", Reason.INVALID_FIELD),
        ({"ttl_seconds": 3601}, "ttl_seconds", Reason.INVALID_FIELD),
    ],
)
def test_a_bad_reservation_item_is_named_by_index_and_field(
    change: dict[str, object], field: str, reason: Reason
) -> None:
    items = [GOOD, GOOD, GOOD, replace(GOOD, **change)]  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument) as exc:
        validate_reservations(items)
    assert exc.value.field == f"reservations[3].{field}"
    assert exc.value.reason is reason


@pytest.mark.parametrize(("count", "ttl"), [(1, 1), (100_000, 3600), (8, 60)])
def test_bounds_are_inclusive(count: int, ttl: int) -> None:
    validate_reservations([replace(GOOD, count=count, ttl_seconds=ttl)])


def test_unknown_sku_message_lists_the_known_ones() -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_reservations([replace(GOOD, sku="TPU-v5")])
    assert all(sku in exc.value.message for sku in KNOWN_SKUS)


def test_batches_are_bounded() -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_reservations([GOOD] * (MAX_BATCH + 1))
    assert exc.value.field == "reservations"


@pytest.mark.parametrize(
    ("ids", "field"),
    [
        (["gr_x"], "grant_ids[0]"),
        ([new_grant_id(), ""], "grant_ids[1]"),
        ([new_grant_id(), "GR_nope"], "grant_ids[1]"),
    ],
)
def test_grant_ids_are_checked(ids: list[str], field: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_grant_ids(ids)
    assert exc.value.field == field


@pytest.mark.parametrize(
    ("spec", "field", "reason"),
    [
        (ProjectSpec("", "snu", ""), "id", Reason.INVALID_FIELD),
        (ProjectSpec("p", "SNU", ""), "institution", Reason.INVALID_FIELD),
        (ProjectSpec("p", "snu", "x" * 201), "display_name", Reason.INVALID_FIELD),
        (ProjectSpec("p", "snu", "tab\there"), "display_name", Reason.INVALID_FIELD),
        (ProjectSpec("p", "snu", "", {"V100": 1}), "device_caps[V100]", Reason.UNKNOWN_SKU),
        (ProjectSpec("p", "snu", "", {"RNGD": -1}), "device_caps[RNGD]", Reason.INVALID_FIELD),
        (ProjectSpec("p", "snu", "", {"RNGD": 1_000_001}), "device_caps[RNGD]", Reason.INVALID_FIELD),
        (ProjectSpec("p", "snu", "", {"ATOM": True}), "device_caps[ATOM]", Reason.INVALID_FIELD),  # type: ignore[dict-item]
    ],
)
def test_bad_projects(spec: ProjectSpec, field: str, reason: Reason) -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_project(spec)
    assert (exc.value.field, exc.value.reason) == (field, reason)


def test_good_project_keeps_its_caps() -> None:
    spec = ProjectSpec("p", "snu", "P", {"RNGD": 0, "H100-SXM-80GB": 1_000_000})
    assert validate_project(spec) == spec


@pytest.mark.parametrize(
    ("spec", "field"), [(InstitutionSpec("", "x"), "id"), (InstitutionSpec("a", "\x00"), "display_name")]
)
def test_bad_institutions(spec: InstitutionSpec, field: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        validate_institution(spec)
    assert exc.value.field == field
