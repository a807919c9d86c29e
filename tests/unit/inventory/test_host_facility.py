"""Host CPU and memory in facility documents: parsed per node and per group, bounded, generated
per device, and written back by the export."""

from __future__ import annotations

import pytest
import yaml

from slicebroker.core.errors import InvalidArgument
from slicebroker.core.facility_generator import FacilityShape, generate_yaml
from slicebroker.inventory.domain.catalogue import load_catalogue
from slicebroker.inventory.domain.facility import export_facility, parse_facility

CATALOGUE = load_catalogue()
DOC = """
sites:
  - name: daejeon
    racks:
      - name: r1
        nodes:
          - {id: a-n01, sku: H100-SXM-80GB, devices: 8, cpu_milli: 224000, memory_mib: 2097152}
          - {id: a-n02, sku: H100-SXM-80GB, devices: 8}
        node_groups:
          - {prefix: b-n, count: 2, sku: RNGD, devices: 8, cpu_milli: 128000}
"""


def test_host_capacity_is_read_per_node_and_per_group_and_defaults_to_none() -> None:
    nodes = {n.id: n for n in parse_facility(DOC, CATALOGUE).nodes}
    assert (nodes["a-n01"].cpu_milli, nodes["a-n01"].memory_mib) == (224_000, 2_097_152)
    assert (nodes["a-n02"].cpu_milli, nodes["a-n02"].memory_mib) == (0, 0)
    assert (nodes["b-n01"].cpu_milli, nodes["b-n02"].memory_mib) == (128_000, 0)


@pytest.mark.parametrize(
    ("value", "field"),
    [("cpu_milli: -1", "cpu_milli"), ("memory_mib: yes", "memory_mib"), ("cpu_milli: 99999999999", "cpu_milli")],
)
def test_bad_host_capacity_names_the_field(value: str, field: str) -> None:
    doc = DOC.replace("cpu_milli: 128000", value)
    with pytest.raises(InvalidArgument) as err:
        parse_facility(doc, CATALOGUE)
    assert err.value.field == f"yaml: sites[0].racks[0].node_groups[0].{field}"


def test_export_round_trips_host_capacity() -> None:
    nodes = parse_facility(DOC, CATALOGUE).nodes
    again = parse_facility(yaml.safe_dump(export_facility("x", nodes)), CATALOGUE).nodes
    assert sorted(again, key=lambda n: n.id) == sorted(nodes, key=lambda n: n.id)


def test_the_generator_gives_host_capacity_per_device() -> None:
    text = generate_yaml({"H100-SXM-80GB": 20}, FacilityShape(cpu_milli_per_device=28_000, memory_mib_per_device=256))
    nodes = {n.id: n for n in parse_facility(text, CATALOGUE).nodes}
    assert sorted((n.device_count, n.cpu_milli, n.memory_mib) for n in nodes.values()) == [
        (4, 112_000, 1024),
        (8, 224_000, 2048),
        (8, 224_000, 2048),
    ]
    plain = parse_facility(generate_yaml({"H100-SXM-80GB": 8}), CATALOGUE).nodes
    assert [(n.cpu_milli, n.memory_mib) for n in plain] == [(0, 0)]
