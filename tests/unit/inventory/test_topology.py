"""The topology tree in facility YAML (halls, pods, racks, leaves, spines, NVLink domains), the
switch declarations' checks, export round-trips, the synthetic generator and subtree capacity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from slicebroker.core.errors import InvalidArgument
from slicebroker.core.facility_generator import FacilityShape, dump, generate, generate_yaml
from slicebroker.inventory.domain.catalogue import load_catalogue
from slicebroker.inventory.domain.facility import export_facility, parse_facility
from slicebroker.inventory.domain.model import Device, Node, NodeSpec, NodeState, SliceAllocation, SliceKind, Subtree
from slicebroker.inventory.domain.topology import capacity_rows

CATALOGUE = load_catalogue()
H100 = "H100-SXM-80GB"


def doc() -> dict[str, Any]:
    return {
        "facility": "t",
        "switches": [
            {"name": "sp1", "tier": "spine"},
            {"name": "lf1", "tier": "leaf", "parent": "sp1"},
            {"name": "lf2", "tier": "leaf", "parent": "sp1"},
        ],
        "sites": [
            {
                "name": "daejeon",
                "halls": [
                    {
                        "name": "hall-a",
                        "pods": [
                            {
                                "name": "su1",
                                "leaf": "lf1",
                                "racks": [
                                    {
                                        "name": "r1",
                                        "nvlink": "rack",
                                        "node_groups": [{"prefix": "a-n", "count": 2, "sku": H100, "devices": 8}],
                                    },
                                    {
                                        "name": "r2",
                                        "nodes": [{"id": "b-n01", "sku": H100, "devices": 8, "leaf": "lf2"}],
                                    },
                                ],
                            }
                        ],
                    },
                    {
                        "name": "hall-b",
                        "spine": "sp9",
                        "racks": [{"name": "r3", "nodes": [{"id": "c", "sku": "RNGD", "devices": 4}]}],
                    },
                ],
            }
        ],
    }


def parse(d: object) -> list[NodeSpec]:
    return list(parse_facility(d if isinstance(d, str) else yaml.safe_dump(d), CATALOGUE).nodes)


def test_places_and_network_tiers_are_inherited_down_the_tree() -> None:
    a1, a2, b, c = parse(doc())
    assert (a1.hall, a1.pod, a1.rack, a1.leaf, a1.spine, a1.nvlink_domain) == (
        "hall-a",
        "su1",
        "r1",
        "lf1",
        "sp1",
        "r1",
    )
    assert a2.nvlink_domain == "r1"
    assert (b.leaf, b.spine, b.nvlink_domain) == ("lf2", "sp1", "")
    assert (c.hall, c.pod, c.leaf, c.spine) == ("hall-b", "", "", "sp9")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["switches"][1].update(parent="nowhere"), "yaml: switches[1].parent"),
        (lambda d: d["switches"][0].update(parent="lf1"), "yaml: switches[0].parent"),  # sp1 -> lf1 -> sp1
        (lambda d: d["switches"].append({"name": "lf1", "tier": "leaf"}), "yaml: switches[3].name"),
        (lambda d: d["switches"][0].update(tier="router"), "yaml: switches[0].tier"),
        (
            lambda d: d["sites"][0]["halls"][0]["pods"][0]["racks"][1]["nodes"][0].update(leaf="lf9"),
            "yaml: sites[0].halls[0].pods[0].racks[1].nodes[0].leaf",
        ),
        (
            lambda d: d["sites"][0]["halls"][0]["pods"][0].update(leaf="sp1"),
            "yaml: sites[0].halls[0].pods[0].racks[0].leaf",
        ),
        (
            lambda d: d["sites"][0]["halls"][0]["pods"][0]["racks"][0].update(nvlink="row"),
            "yaml: sites[0].halls[0].pods[0].racks[0].nvlink",
        ),
        (lambda d: d["sites"][0]["halls"].append({"name": "hall-a", "racks": []}), "yaml: sites[0].halls[2].name"),
        (lambda d: d["sites"][0]["halls"][1]["racks"][0].update(name="r1"), "yaml: sites[0].halls[1].racks[0].name"),
        (lambda d: d["sites"][0]["halls"][1].pop("racks"), "yaml: sites[0].halls[1]"),
        (
            lambda d: d["sites"][0]["halls"][1]["racks"][0]["nodes"][0].update(id="a-n01"),
            "yaml: sites[0].halls[1].racks[0].nodes[0]",
        ),
    ],
)
def test_bad_topology_is_refused_with_the_place_named(change: Any, field: str) -> None:
    d = doc()
    change(d)
    with pytest.raises(InvalidArgument) as caught:
        parse(d)
    assert caught.value.field == field, caught.value.message


def test_old_files_without_halls_still_load(examples_dir: Path) -> None:
    nodes = parse((examples_dir / "facility.yaml").read_text())
    assert len(nodes) == 304
    assert all(n.hall == n.pod == n.leaf == n.spine == n.nvlink_domain == "" for n in nodes)


def _round_trip(nodes: list[NodeSpec]) -> list[NodeSpec]:
    return parse(dump(export_facility("x", nodes)))


def test_export_round_trips_the_demo_the_tree_and_a_generated_centre(examples_dir: Path) -> None:
    for text in (
        (examples_dir / "facility.yaml").read_text(),
        yaml.safe_dump(doc()),
        generate_yaml({H100: 1000, "RNGD": 203}),
    ):
        nodes = parse(text)
        assert sorted(_round_trip(nodes), key=lambda n: n.id) == sorted(nodes, key=lambda n: n.id)


def test_export_compresses_runs_into_node_groups() -> None:
    exported = export_facility("x", parse(generate_yaml({H100: 256})))
    racks = [r for hall in exported["sites"][0]["halls"] for pod in hall["pods"] for r in pod["racks"]]
    assert len(racks) == 8 and all(r["node_groups"][0]["count"] == 4 and "nodes" not in r for r in racks)


def test_the_generator_builds_an_18k_gpu_centre_shaped_like_a_real_one() -> None:
    nodes = parse(generate_yaml({H100: 12_000, "H200-SXM-141GB": 6_000, "RNGD": 4_000}))
    gpus = [n for n in nodes if n.sku != "RNGD"]
    assert len(gpus) == 2_250 and sum(n.device_count for n in gpus) == 18_000
    assert all(n.device_count == 8 for n in nodes)
    by_leaf: dict[str, list[NodeSpec]] = {}
    for n in nodes:
        by_leaf.setdefault(n.leaf, []).append(n)
    assert max(len(v) for v in by_leaf.values()) == 32
    assert all(len({n.sku for n in v}) == 1 and len({n.pod for n in v}) == 1 for v in by_leaf.values())
    halls: dict[str, set[str]] = {}
    for n in nodes:
        halls.setdefault(n.hall, set()).add(n.sku)
    assert all(len(skus) == 1 for skus in halls.values())  # GPU halls and NPU halls
    assert all(n.spine == f"{n.hall}-spine" for n in nodes)


def test_the_generator_puts_a_remainder_on_a_smaller_last_node() -> None:
    nodes = parse(generate_yaml({"ATOM": 21}, FacilityShape(nodes_per_rack=2, nodes_per_leaf=4)))
    assert [n.device_count for n in nodes] == [8, 8, 5]


@pytest.mark.parametrize(
    ("devices", "shape", "message"),
    [
        ({"V100": 8}, FacilityShape(), "unknown SKU"),
        ({H100: 0}, FacilityShape(), "at least 1"),
        ({H100: 8}, FacilityShape(nodes_per_leaf=30), "multiple"),
        ({H100: 8}, FacilityShape(devices_per_node=0), "devices_per_node"),
    ],
)
def test_the_generator_refuses_nonsense(devices: dict[str, int], shape: FacilityShape, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate(devices, shape)


def _node(node_id: str, hall: str, leaf: str, devices: list[Device], *, state: NodeState = NodeState.ACTIVE) -> Node:
    return Node(
        node_id, "s", "r", H100, tuple(devices), 1, state is NodeState.ACTIVE, hall=hall, leaf=leaf, state=state
    )


def _dev(i: int, holder: str = "", healthy: bool = True, sliced: bool = False) -> Device:
    slices = (SliceAllocation("g", SliceKind.MIG, "1g.10gb", 1, 1),) if sliced else ()
    return Device(f"n/gpu{i}", H100, i, healthy, holder, slices)


def test_capacity_rows_count_devices_by_state_under_a_subtree() -> None:
    nodes = [
        _node("a", "h1", "l1", [_dev(0), _dev(1, holder="g"), _dev(2, sliced=True), _dev(3, healthy=False)]),
        _node("b", "h1", "l2", [_dev(0), _dev(1)], state=NodeState.CORDONED),
        _node("c", "h2", "l3", [_dev(0)]),
    ]
    (h1, h2) = capacity_rows(nodes, Subtree(), "hall", CATALOGUE)
    assert (h1.group, h1.nodes, h1.devices, h1.free, h1.held, h1.sliced, h1.unhealthy, h1.cordoned) == (
        "h1",
        2,
        6,
        1,
        1,
        1,
        1,
        2,
    )
    assert (h2.group, h2.free, h2.free_units) == ("h2", 1, 1.0)
    (leaf,) = capacity_rows(nodes, Subtree(leaf="l1"), "", CATALOGUE)
    assert (leaf.nodes, leaf.devices) == (1, 4)
    assert capacity_rows(nodes, Subtree(hall="h9"), "", CATALOGUE) == ()
