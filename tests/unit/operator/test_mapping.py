"""How the operator reads a pod: resource names (aliases included) to SKUs, counts, refusals, the
webhook's patch and the node pinning that KEP-3838 allows on gated pods."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from slicebroker.client import Shape
from slicebroker.operator import mapping
from slicebroker.operator.webhook import review_response


def pod(limits: dict[str, str] | None = None, annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    containers = [{"name": "c", "resources": {"limits": limits or {}}}]
    return {"metadata": {"name": "p", "annotations": annotations or {}}, "spec": {"containers": containers, **spec}}


@pytest.mark.parametrize(
    ("limits", "annotations", "skus", "count"),
    [
        ({"nvidia.com/gpu": "4"}, {}, ("H100-SXM-80GB", "H200-SXM-141GB", "A100-SXM-80GB", "B200-SXM-180GB"), 4),
        ({"nvidia.com/gpu": "8"}, {mapping.ANN_SKU: "H200-SXM-141GB"}, ("H200-SXM-141GB",), 8),
        ({"furiosa.ai/rngd": "2"}, {}, ("RNGD",), 2),
        ({"rebellions.ai/ATOM": "1"}, {}, ("ATOM",), 1),
        ({"rebellions.ai/npu": "1"}, {}, ("ATOM", "REBEL"), 1),
        ({"rebellions.ai/REBEL": "2", "cpu": "4"}, {}, ("REBEL",), 2),
        ({}, {mapping.ANN_SKU: "B200-SXM-180GB", mapping.ANN_COUNT: "3"}, ("B200-SXM-180GB",), 3),
    ],
)
def test_requests_map_through_the_catalogue(
    limits: dict[str, str], annotations: dict[str, str], skus: tuple[str, ...], count: int
) -> None:
    request = mapping.read_request(pod(limits, annotations))
    assert (request.skus, request.count) == (skus, count)


@pytest.mark.parametrize(
    ("limits", "annotations", "reason"),
    [
        ({"nvidia.com/gpu-h100x": "1"}, {}, "UnknownResource"),
        ({"furiosa.ai/warboy": "1"}, {}, "UnknownResource"),
        ({"mig.nvidia.com": "1"}, {}, "UnsupportedSlice"),
        ({"nvidia.com/gpu.shared": "1"}, {}, "MissingShare"),
        ({"nvidia.com/gpu": "1"}, {mapping.ANN_COMPUTE_MILLI: "250"}, "ShareNeedsSharedResource"),
        ({"nvidia.com/mig-1g.10gb": "1"}, {mapping.ANN_COMPUTE_MILLI: "250"}, "ShareNeedsSharedResource"),
        ({"nvidia.com/gpu.shared": "1"}, {mapping.ANN_COMPUTE_MILLI: "1000"}, "InvalidShare"),
        ({"nvidia.com/gpu.shared": "1"}, {mapping.ANN_COMPUTE_MILLI: "0"}, "InvalidShare"),
        ({}, {mapping.ANN_SKU: "H100-SXM-80GB", mapping.ANN_MEMORY_MILLI: "500"}, "InvalidShare"),
        ({"nvidia.com/gpu": "1"}, {mapping.ANN_TOPOLOGY: "same-rack"}, "InvalidTopology"),
        ({"nvidia.com/gpu": "1"}, {mapping.ANN_TOPOLOGY_REQUIRED: "maybe"}, "InvalidTopology"),
        ({"nvidia.com/gpu": "1"}, {mapping.ANN_PRIORITY: "urgent"}, "InvalidPriority"),
        ({"nvidia.com/gpu": "1", "furiosa.ai/rngd": "1"}, {}, "MixedAccelerators"),
        ({"nvidia.com/gpu": "1"}, {mapping.ANN_SKU: "RNGD"}, "SkuMismatch"),
        ({"nvidia.com/gpu": "1"}, {mapping.ANN_SKU: "V100"}, "UnknownSku"),
        ({"nvidia.com/gpu": "500m"}, {}, "InvalidQuantity"),
        ({"nvidia.com/gpu": "1"}, {mapping.ANN_LEASE: "soon"}, "InvalidLease"),
        ({}, {mapping.ANN_COUNT: "2"}, "MissingSku"),
    ],
)
def test_bad_requests_say_why(limits: dict[str, str], annotations: dict[str, str], reason: str) -> None:
    with pytest.raises(mapping.PodRequestError) as err:
        mapping.read_request(pod(limits, annotations))
    assert err.value.reason == reason


@pytest.mark.parametrize(
    ("limits", "annotations", "skus", "count", "shape"),
    [
        ({"nvidia.com/mig-1g.10gb": "2"}, {}, ("H100-SXM-80GB", "A100-SXM-80GB"), 2, Shape.mig("1g.10gb")),
        ({"nvidia.com/mig-3g.71gb": "1"}, {}, ("H200-SXM-141GB",), 1, Shape.mig("3g.71gb")),
        ({"furiosa.ai/rngd-2core.12gb": "1"}, {}, ("RNGD",), 1, Shape.npu("2core.12gb")),
        (
            {"nvidia.com/gpu.shared": "1"},
            {mapping.ANN_COMPUTE_MILLI: "250", mapping.ANN_SKU: "H100-SXM-80GB"},
            ("H100-SXM-80GB",),
            1,
            Shape("share", "", 250, 0),
        ),
        (
            {},
            {mapping.ANN_SKU: "A100-SXM-80GB", mapping.ANN_COMPUTE_MILLI: "500", mapping.ANN_MEMORY_MILLI: "250"},
            ("A100-SXM-80GB",),
            1,
            Shape("share", "", 500, 250),
        ),
        (
            {"nvidia.com/gpu": "2"},
            {},
            ("H100-SXM-80GB", "H200-SXM-141GB", "A100-SXM-80GB", "B200-SXM-180GB"),
            2,
            Shape(),
        ),
    ],
)
def test_slices_and_shares_map_to_a_shape(
    limits: dict[str, str], annotations: dict[str, str], skus: tuple[str, ...], count: int, shape: Shape
) -> None:
    request = mapping.read_request(pod(limits, annotations))
    assert (request.skus, request.count, request.shape) == (skus, count, shape)


def test_share_annotation_alone_asks_for_a_grant() -> None:
    assert mapping.wants_accelerators(pod({}, {mapping.ANN_COMPUTE_MILLI: "100"}))


def test_gang_members_default_to_no_topology_and_read_their_size() -> None:
    member = pod({"nvidia.com/gpu": "1"}, {mapping.ANN_GANG_SIZE: "4"})
    member["metadata"]["labels"] = {mapping.LABEL_GANG: "g"}
    assert mapping.gang_of(member) == "g" and mapping.gang_size(member) == 4
    assert mapping.read_request(member).topology == "anywhere"
    member["metadata"]["annotations"].update(
        {mapping.ANN_TOPOLOGY: "same-leaf", mapping.ANN_TOPOLOGY_REQUIRED: "false"}
    )
    request = mapping.read_request(member)
    assert (request.topology, request.required) == ("same-leaf", False)
    assert mapping.read_request(pod({"nvidia.com/gpu": "1"})).topology == "same-node"
    for bad in ("", "0", "four"):
        member["metadata"]["annotations"][mapping.ANN_GANG_SIZE] = bad
        with pytest.raises(mapping.PodRequestError) as err:
            mapping.gang_size(member)
        assert err.value.reason == "InvalidGang"


@pytest.mark.parametrize(
    ("slices", "per_member", "pinned", "expected"),
    [
        # One device each, two leaves' worth of nodes: members in name order, nodes in order.
        (
            [("n2", "n2/gpu0"), ("n1", "n1/gpu1"), ("n1", "n1/gpu0"), ("n2", "n2/gpu1")],
            1,
            {},
            {"m0": [2], "m1": [1], "m2": [0], "m3": [3]},
        ),
        # Two devices each, gpu10 after gpu2.
        (
            [("n1", "n1/gpu10"), ("n1", "n1/gpu2"), ("n2", "n2/gpu0"), ("n2", "n2/gpu1")],
            2,
            {},
            {"m0": [1, 0], "m1": [2, 3]},
        ),
        # A member already pinned to n2 keeps n2.
        ([("n1", "n1/gpu0"), ("n2", "n2/gpu0")], 1, {"m0": "n2"}, {"m0": [1], "m1": [0]}),
        # 3 + 1 devices do not split into two members of two on one node each.
        ([("n1", "n1/gpu0"), ("n1", "n1/gpu1"), ("n1", "n1/gpu2"), ("n2", "n2/gpu0")], 2, {}, None),
        # A member pinned to a node the grant has nothing on.
        ([("n1", "n1/gpu0"), ("n1", "n1/gpu1")], 1, {"m1": "n9"}, None),
        # Too few slices.
        ([("n1", "n1/gpu0")], 1, {}, None),
    ],
)
def test_gang_slices_split_among_members_deterministically(
    slices: list[tuple[str, str]], per_member: int, pinned: dict[str, str], expected: dict[str, list[int]] | None
) -> None:
    members = [f"m{i}" for i in range(max(len(slices) // per_member, 2))]
    if expected is not None:
        members = sorted(expected)
    assert mapping.assign_members(members, slices, per_member, pinned) == expected
    assert mapping.assign_members(list(reversed(members)), slices, per_member, pinned) == expected


def test_init_containers_count_at_their_peak() -> None:
    p = pod({"nvidia.com/gpu": "2"}, initContainers=[{"name": "i", "resources": {"limits": {"nvidia.com/gpu": "4"}}}])
    assert mapping.read_request(p).count == 4


def test_webhook_gates_accelerator_pods_only() -> None:
    review = {
        "request": {"uid": "u1", "operation": "CREATE", "namespace": "ns", "object": pod({"nvidia.com/gpu": "1"})}
    }
    response = review_response(review)["response"]
    patch = json.loads(base64.b64decode(response["patch"]))
    assert response["allowed"] and response["uid"] == "u1"
    assert {"op": "add", "path": "/spec/schedulingGates", "value": [{"name": mapping.GATE}]} in patch
    assert {"op": "add", "path": "/metadata/finalizers", "value": [mapping.FINALIZER]} in patch

    plain = {"request": {"uid": "u2", "operation": "CREATE", "namespace": "ns", "object": pod({"cpu": "1"})}}
    assert "patch" not in review_response(plain)["response"]
    excluded = {"request": {"uid": "u3", "namespace": "kube-system", "object": pod({"nvidia.com/gpu": "1"})}}
    assert "patch" not in review_response(excluded, ("kube-system",))["response"]


def test_webhook_appends_to_existing_gates_and_keeps_ours_once() -> None:
    p = pod({"nvidia.com/gpu": "1"}, schedulingGates=[{"name": "other"}])
    assert mapping.gate_patch(p)[0] == {"op": "add", "path": "/spec/schedulingGates/-", "value": {"name": mapping.GATE}}
    p["spec"]["schedulingGates"].append({"name": mapping.GATE})
    p["metadata"]["finalizers"] = [mapping.FINALIZER]
    assert mapping.gate_patch(p) == []


def test_pinning_narrows_every_existing_term_and_only_adds() -> None:
    spec: dict[str, Any] = {}
    mapping.pin_to_node(spec, "n1")
    assert spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]
    }
    zone = {"key": "zone", "operator": "In", "values": ["a"]}
    spec = {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [zone]}, {"matchExpressions": [zone]}]
                }
            }
        }
    }
    mapping.pin_to_node(spec, "n2")
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert all(t["matchExpressions"] == [zone] and t["matchFields"][0]["values"] == ["n2"] for t in terms)


def test_without_gate_keeps_other_gates() -> None:
    assert mapping.without_gate([{"name": mapping.GATE}, {"name": "x"}]) == [{"name": "x"}]


def test_priority_class_is_read_from_the_annotation() -> None:
    assert mapping.read_request(pod({"nvidia.com/gpu": "1"}, {mapping.ANN_PRIORITY: "preemptible"})).priority == (
        "preemptible"
    )
    assert mapping.read_request(pod({"nvidia.com/gpu": "1"})).priority == ""
