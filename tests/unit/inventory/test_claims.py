"""Claim and release batches are checked whole before the store is touched; each refusal names
the request field of the first bad item."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slicebroker.core.errors import InvalidArgument
from slicebroker.core.ids import new_grant_id
from slicebroker.inventory.domain.claims import validate_claims, validate_release
from slicebroker.inventory.domain.model import DeviceClaim, NodeClaim

G1, G2 = new_grant_id(), new_grant_id()


def node(node_id: str = "n1", gen: int = 1, *devices: str) -> NodeClaim:
    return NodeClaim(node_id, gen, devices or (f"{node_id}/gpu0",))


def claim(grant: str = G1, *nodes: NodeClaim) -> DeviceClaim:
    return DeviceClaim(grant, nodes or (node(),))


def test_a_well_formed_batch_passes() -> None:
    validate_claims(
        [
            claim(G1, node("n1", 3, "n1/gpu0", "n1/gpu7"), node("n2", 1, "n2/npu15")),
            claim(G2, node("n1", 4, "n1/gpu1")),
            claim(G1),  # the same grant twice is allowed (a replay or an extension)
        ]
    )


@pytest.mark.parametrize(
    ("claims", "field"),
    [
        ([], "claims"),
        ([claim("gr_nope")], "claims[0].grant_id"),
        ([claim(), claim("")], "claims[1].grant_id"),
        ([DeviceClaim(G1, ())], "claims[0].nodes"),
        ([claim(G1, node("N1", 1, "N1/gpu0"))], "claims[0].nodes[0].node_id"),
        ([claim(G1, node("n1"), node("n2"), node("n1"))], "claims[0].nodes[2].node_id"),
        ([claim(G1, node("n1", 0))], "claims[0].nodes[0].expected_generation"),
        ([claim(G1, node("n1", -5))], "claims[0].nodes[0].expected_generation"),
        ([claim(G1, NodeClaim("n1", 1, ()))], "claims[0].nodes[0].device_ids"),
        ([claim(G1, node("n1", 1, "n1/gpu0", "n1/gpu01"))], "claims[0].nodes[0].device_ids[1]"),
        ([claim(G1, node("n1", 1, "n1/tpu0"))], "claims[0].nodes[0].device_ids[0]"),
        ([claim(G1, node("n1", 1, "n1-gpu0"))], "claims[0].nodes[0].device_ids[0]"),
        ([claim(G1, node("n1", 1, "n1/gpu"))], "claims[0].nodes[0].device_ids[0]"),
        ([claim(G1, node("n1", 1, "n1/gpu0", "n2/gpu1"))], "claims[0].nodes[0].device_ids[1]"),
        ([claim(G1, node("n1", 1, "n1/gpu3", "n1/gpu3"))], "claims[0].nodes[0].device_ids[1]"),
        ([claim(G1, node("n1", 1, *(f"n1/gpu{i}" for i in range(65))))], "claims[0].nodes[0].device_ids"),
        (
            [claim(), claim(G2, node("n1"), node("n2", 1, "n2/gpu0", "x/gpu0"))],
            "claims[1].nodes[1].device_ids[1]",
        ),
    ],
)
def test_refusals_name_the_first_bad_field(claims: list[DeviceClaim], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_claims(claims)
    assert caught.value.field == field


def test_device_names_are_the_ids_without_the_node() -> None:
    assert node("h100-r001-n01", 1, "h100-r001-n01/gpu3", "h100-r001-n01/gpu10").device_names == (
        "gpu3",
        "gpu10",
    )


def test_release_keeps_each_grant_once_in_order() -> None:
    assert validate_release([G2, G1, G2]) == (G2, G1)


@pytest.mark.parametrize(
    ("grants", "field"), [([], "grant_ids"), ([G1, "gr_x"], "grant_ids[1]"), ([""], "grant_ids[0]")]
)
def test_release_refusals(grants: list[str], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_release(grants)
    assert caught.value.field == field


@given(st.lists(st.integers(0, 63), min_size=1, max_size=64, unique=True), st.sampled_from(["gpu", "npu"]))
def test_any_set_of_distinct_devices_on_the_node_is_well_formed(indexes: list[int], kind: str) -> None:
    devices = tuple(f"node-7/{kind}{i}" for i in indexes)
    validate_claims([claim(G1, NodeClaim("node-7", 1, devices))])
