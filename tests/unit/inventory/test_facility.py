"""Facility YAML parsing: node groups, the demo facility, and every refusal naming its place."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from slicebroker.core.errors import InvalidArgument
from slicebroker.core.reasons import Reason
from slicebroker.inventory.domain.catalogue import load_catalogue
from slicebroker.inventory.domain.facility import parse_facility
from slicebroker.inventory.domain.model import DeviceKind, NodeSpec

CATALOGUE = load_catalogue()
H100 = "H100-SXM-80GB"


def base() -> dict[str, Any]:
    """Three racks in one site; the third lists two nodes one by one."""
    return {
        "facility": "test",
        "sites": [
            {
                "name": "daejeon",
                "racks": [
                    {"name": "r1", "node_groups": [{"prefix": "a-n", "count": 2, "sku": H100, "devices": 8}]},
                    {"name": "r2", "nodes": [{"id": "b-n01", "sku": "RNGD", "devices": 4}]},
                    {
                        "name": "r3",
                        "nodes": [
                            {"id": "c-n01", "sku": "ATOM", "devices": 8},
                            {"id": "c-n02", "sku": "ATOM", "devices": 8},
                        ],
                    },
                ],
            }
        ],
    }


def parse(doc: object) -> list[NodeSpec]:
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc)
    return list(parse_facility(text, CATALOGUE).nodes)


def test_nodes_and_groups_expand_in_document_order() -> None:
    nodes = parse(base())
    assert [n.id for n in nodes] == ["a-n01", "a-n02", "b-n01", "c-n01", "c-n02"]
    assert nodes[0] == NodeSpec("a-n01", "daejeon", "r1", H100, DeviceKind.GPU, 8)
    assert nodes[2] == NodeSpec("b-n01", "daejeon", "r2", "RNGD", DeviceKind.NPU, 4)


def test_group_start_and_indexes_past_99() -> None:
    doc = base()
    doc["sites"][0]["racks"][0]["node_groups"] = [{"prefix": "x", "start": 98, "count": 3, "sku": H100, "devices": 1}]
    assert [n.id for n in parse(doc)][:3] == ["x98", "x99", "x100"]


def test_group_then_nodes_in_one_rack() -> None:
    doc = base()
    doc["sites"][0]["racks"][0]["nodes"] = [{"id": "a-n03", "sku": H100, "devices": 8}]
    assert [n.id for n in parse(doc)][:3] == ["a-n03", "a-n01", "a-n02"]


def test_demo_facility(examples_dir: Path) -> None:
    facility = parse_facility((examples_dir / "facility.yaml").read_text(), CATALOGUE)
    assert len(facility.nodes) == 304
    assert facility.devices == 2432
    assert len({n.id for n in facility.nodes}) == 304
    assert {n.site for n in facility.nodes} == {"daejeon", "gwangju"}
    assert {n.sku for n in facility.nodes} == {"H100-SXM-80GB", "H200-SXM-141GB", "RNGD", "ATOM"}
    assert all(n.device_count == 8 for n in facility.nodes)


def _set(path: list[Any], value: object) -> dict[str, Any]:
    doc = base()
    target: Any = doc
    for step in path[:-1]:
        target = target[step]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


_DELETE = object()
RACKS: list[Any] = ["sites", 0, "racks"]


@pytest.mark.parametrize(
    ("doc", "field", "reason"),
    [
        ("sites: [", "yaml", Reason.INVALID_FACILITY),
        ("", "yaml", Reason.INVALID_FACILITY),
        ("- a\n- b\n", "yaml", Reason.INVALID_FACILITY),
        ({"sites": []}, "yaml: sites", Reason.INVALID_FACILITY),
        ({"site": []}, "yaml", Reason.INVALID_FACILITY),
        ({"facility": 3, "sites": base()["sites"]}, "yaml: facility", Reason.INVALID_FACILITY),
        (
            _set([*RACKS, 2, "nodes", 1, "sku"], "h100"),
            "yaml: sites[0].racks[2].nodes[1].sku",
            Reason.UNKNOWN_SKU,
        ),
        (
            _set([*RACKS, 0, "node_groups", 0, "sku"], "TPU"),
            "yaml: sites[0].racks[0].node_groups[0].sku",
            Reason.UNKNOWN_SKU,
        ),
        (
            _set([*RACKS, 2, "nodes", 1, "sku"], _DELETE),
            "yaml: sites[0].racks[2].nodes[1].sku",
            Reason.INVALID_FACILITY,
        ),
        (
            _set([*RACKS, 2, "nodes", 1, "id"], "c-n01"),
            "yaml: sites[0].racks[2].nodes[1]",
            Reason.INVALID_FACILITY,
        ),
        (
            _set([*RACKS, 1, "nodes", 0, "id"], "a-n02"),
            "yaml: sites[0].racks[1].nodes[0]",
            Reason.INVALID_FACILITY,
        ),
        (
            _set([*RACKS, 1, "nodes", 0, "id"], "B_N01"),
            "yaml: sites[0].racks[1].nodes[0].id",
            Reason.INVALID_FACILITY,
        ),
        (
            _set([*RACKS, 1, "nodes", 0, "devices"], 0),
            "yaml: sites[0].racks[1].nodes[0].devices",
            Reason.INVALID_FACILITY,
        ),
        (
            _set([*RACKS, 1, "nodes", 0, "devices"], 65),
            "yaml: sites[0].racks[1].nodes[0].devices",
            Reason.INVALID_FACILITY,
        ),
        (
            _set([*RACKS, 1, "nodes", 0, "devices"], "8"),
            "yaml: sites[0].racks[1].nodes[0].devices",
            Reason.INVALID_FACILITY,
        ),
        (
            _set([*RACKS, 1, "nodes", 0, "devices"], True),
            "yaml: sites[0].racks[1].nodes[0].devices",
            Reason.INVALID_FACILITY,
        ),
        (
            _set([*RACKS, 1, "nodes", 0, "gpus"], 8),
            "yaml: sites[0].racks[1].nodes[0]",
            Reason.INVALID_FACILITY,
        ),
        (_set([*RACKS, 1, "nodes", 0], "b-n01"), "yaml: sites[0].racks[1].nodes[0]", Reason.INVALID_FACILITY),
        (_set([*RACKS, 1, "nodes"], {"id": "x"}), "yaml: sites[0].racks[1].nodes", Reason.INVALID_FACILITY),
        (_set([*RACKS, 1, "nodes"], []), "yaml: sites[0].racks[1]", Reason.INVALID_FACILITY),
        (_set([*RACKS, 1, "name"], "r1"), "yaml: sites[0].racks[1].name", Reason.INVALID_FACILITY),
        (_set([*RACKS, 1, "name"], _DELETE), "yaml: sites[0].racks[1].name", Reason.INVALID_FACILITY),
        (_set(["sites", 0, "name"], "Daejeon"), "yaml: sites[0].name", Reason.INVALID_FACILITY),
        (_set(["sites", 0, "racks"], []), "yaml: sites[0].racks", Reason.INVALID_FACILITY),
        (
            _set([*RACKS, 0, "node_groups", 0, "prefix"], "A-"),
            "yaml: sites[0].racks[0].node_groups[0].prefix",
            Reason.INVALID_FACILITY,
        ),
        (
            _set([*RACKS, 0, "node_groups", 0, "prefix"], ""),
            "yaml: sites[0].racks[0].node_groups[0].prefix",
            Reason.INVALID_FACILITY,
        ),
        (
            _set([*RACKS, 0, "node_groups", 0, "count"], 0),
            "yaml: sites[0].racks[0].node_groups[0].count",
            Reason.INVALID_FACILITY,
        ),
        (
            _set([*RACKS, 0, "node_groups", 0, "count"], 1001),
            "yaml: sites[0].racks[0].node_groups[0].count",
            Reason.INVALID_FACILITY,
        ),
        (
            _set([*RACKS, 0, "node_groups", 0, "start"], -1),
            "yaml: sites[0].racks[0].node_groups[0].start",
            Reason.INVALID_FACILITY,
        ),
        (
            _set([*RACKS, 0, "node_groups", 0, "devices"], 99),
            "yaml: sites[0].racks[0].node_groups[0].devices",
            Reason.INVALID_FACILITY,
        ),
        (
            _set([*RACKS, 0, "node_groups", 0, "prefix"], "c-n"),
            "yaml: sites[0].racks[2].nodes[0]",
            Reason.INVALID_FACILITY,
        ),
    ],
)
def test_refusals_name_the_place(doc: object, field: str, reason: Reason) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse(doc)
    assert caught.value.field == field
    assert caught.value.reason == reason
    assert caught.value.message.startswith(field)


def test_a_duplicate_id_from_a_later_group_names_the_first_use() -> None:
    doc = base()
    doc["sites"][0]["racks"][2]["node_groups"] = [{"prefix": "a-n", "count": 1, "sku": H100, "devices": 8}]
    with pytest.raises(InvalidArgument, match=r"'a-n01' is already used by sites\[0\]\.racks\[0\]\.node_groups\[0\]"):
        parse(doc)


def test_duplicate_site() -> None:
    doc = base()
    doc["sites"].append(copy.deepcopy(doc["sites"][0]))
    with pytest.raises(InvalidArgument) as caught:
        parse(doc)
    assert caught.value.field == "yaml: sites[1].name"


def test_unknown_sku_lists_the_catalogue() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse(_set([*RACKS, 1, "nodes", 0, "sku"], "V100"))
    assert all(name in caught.value.message for name in CATALOGUE.names)


def test_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(InvalidArgument, match="at line 3, column 1"):
        parse("sites:\n  - {name: x\n")


@given(
    st.lists(
        st.tuples(st.integers(1, 30), st.integers(1, 64), st.sampled_from(load_catalogue().names)),
        min_size=1,
        max_size=8,
    )
)
def test_groups_expand_to_exactly_their_counts(groups: list[tuple[int, int, str]]) -> None:
    racks = [
        {
            "name": f"r{i}",
            "node_groups": [{"prefix": f"r{i}-n", "count": count, "sku": sku, "devices": devices}],
        }
        for i, (count, devices, sku) in enumerate(groups)
    ]
    facility = parse_facility(yaml.safe_dump({"sites": [{"name": "s", "racks": racks}]}), CATALOGUE)
    assert len(facility.nodes) == sum(count for count, _, _ in groups)
    assert facility.devices == sum(count * devices for count, devices, _ in groups)
    assert len({n.id for n in facility.nodes}) == len(facility.nodes)
    assert all(n.kind == CATALOGUE.require("sku", n.sku).kind for n in facility.nodes)
