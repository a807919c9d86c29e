"""Pod gangs granted as one request under one leaf switch, all members or none, and MIG
partitions and shares of a device through the operator — on a real kube-apiserver with the four
real services behind it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from slicebroker.client import GrantState
from slicebroker.operator import mapping
from slicebroker.operator.controller import Operator
from slicebroker.operator.kube import MERGE, Kube, KubeError, load_api_client
from tests.k8s.conftest import (
    GPU_NODES,
    OPERATOR_SETTINGS,
    Mesh,
    Namespace,
    OperatorHandle,
    ensure_node,
    eventually,
)
from tests.k8s.controlplane import ControlPlane

call = asyncio.to_thread

B200 = "B200-SXM-180GB"
# Two leaf switches: leaf-a has 2 + 2 free B200s (no single node has 4), leaf-b has 2 + 1.
LEAVES = {"gang-a1": ("leaf-a", 2), "gang-a2": ("leaf-a", 2), "gang-b1": ("leaf-b", 2), "gang-b2": ("leaf-b", 1)}


def _gates(pod: dict[str, Any] | None) -> list[str]:
    return [g["name"] for g in ((pod or {}).get("spec") or {}).get("schedulingGates") or ()]


def _reasons(ns: Namespace, name: str) -> dict[str, str]:
    return {e["reason"]: e["message"] for e in ns.events(name)}


def _member(ns: Namespace, gang: str, name: str, size: int, topology: str = "same-leaf") -> None:
    ns.create_pod(
        name,
        {"nvidia.com/gpu": "1"},
        {mapping.ANN_SKU: B200, mapping.ANN_GANG_SIZE: str(size), mapping.ANN_TOPOLOGY: topology},
        {mapping.LABEL_GANG: gang},
    )


def _all_granted(ns: Namespace, names: list[str]) -> list[dict[str, Any]] | None:
    pods = [ns.pod(n) for n in names]
    if all(p and not _gates(p) and mapping.ANN_GRANT in p["metadata"]["annotations"] for p in pods):
        return [p for p in pods if p]
    return None


async def _leaf_nodes_synced(kube: Any, operator: OperatorHandle) -> None:
    for name, (leaf, gpus) in LEAVES.items():
        labels = {"slicebroker.io/sku": B200, "slicebroker.io/leaf": leaf, "slicebroker.io/rack": f"rack-{name}"}
        ensure_node(kube, name, {"nvidia.com/gpu": str(gpus)}, labels)
    await eventually(lambda: set(LEAVES) <= set(operator.current.synced_nodes() if operator.current else {}))


async def test_gang_is_granted_as_one_under_one_leaf_or_waits_whole(
    kube: Any, new_namespace: Any, operator: OperatorHandle
) -> None:
    await _leaf_nodes_synced(kube, operator)
    ns = new_namespace({mapping.LABEL_INSTITUTION: "uni-a", mapping.LABEL_PROJECT: "gangs"})
    first = [f"ring-{i}" for i in range(4)]
    for name in first[:3]:
        _member(ns, "ring", name, 4)
    # Three of four members: nothing is requested, every member says why it waits.
    await eventually(lambda: all("GangIncomplete" in _reasons(ns, n) for n in first[:3]))
    await eventually(lambda: any("3 of 4 members" in e["message"] for e in ns.events("ring-0")))
    assert [g for g in await call(lambda: list(operator.sb.list_grants(project="gangs"))) if g.live] == []
    assert all(_gates(ns.pod(n)) == [mapping.GATE] for n in first[:3])

    _member(ns, "ring", "ring-3", 4)
    pods = await eventually(lambda: _all_granted(ns, first))
    grant_ids = {p["metadata"]["annotations"][mapping.ANN_GRANT] for p in pods}
    assert len(grant_ids) == 1, "one grant for the whole gang"
    grant = await call(operator.sb.get_grant, grant_ids.pop())
    assert grant.state is GrantState.ACTIVE and grant.count == 4 and grant.sku == B200
    nodes = {p["metadata"]["name"]: p["metadata"]["annotations"][mapping.ANN_NODE] for p in pods}
    # Under one leaf (leaf-a: the only one with four free), split node by node in name order.
    assert {LEAVES[n][0] for n in nodes.values()} == {"leaf-a"}
    assert nodes == {"ring-0": "gang-a1", "ring-1": "gang-a1", "ring-2": "gang-a2", "ring-3": "gang-a2"}
    slices = [p["metadata"]["annotations"][mapping.ANN_SLICES] for p in pods]
    assert sorted(slices) == sorted(s.device_id for s in grant.slices), "each member its own device"
    for pod in pods:
        node = pod["metadata"]["annotations"][mapping.ANN_NODE]
        terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"] == [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
        ]
        assert slices.count(pod["metadata"]["annotations"][mapping.ANN_SLICES]) == 1

    # A second gang of four under one leaf: leaf-b has only three free, so all four wait.
    second = [f"pair-{i}" for i in range(4)]
    for name in second:
        _member(ns, "pair", name, 4)
    await eventually(lambda: all({"GrantQueued", "GrantPending"} & set(_reasons(ns, n)) for n in second))
    assert all(_gates(ns.pod(n)) == [mapping.GATE] for n in second)
    assert all(mapping.ANN_GRANT not in (ns.pod(n) or {})["metadata"].get("annotations", {}) for n in second)
    waiting = [g for g in await call(lambda: list(operator.sb.list_grants(project="gangs"))) if g.id != grant.id]
    assert all(not g.slices for g in waiting), "a waiting gang holds nothing"

    # The first gang's grant goes with its last member, not before.
    ns.delete_pod("ring-0")
    await eventually(lambda: ns.pod("ring-0") is None)
    assert (await call(operator.sb.get_grant, grant.id)).state is GrantState.ACTIVE
    for name in first[1:]:
        ns.delete_pod(name)
    await eventually(lambda: all(ns.pod(n) is None for n in first))
    assert (await call(operator.sb.get_grant, grant.id)).state is GrantState.ENDED

    # Now leaf-a is free again: the waiting gang is granted there, all four members at once.
    pods = await eventually(lambda: _all_granted(ns, second), timeout_s=30)
    assert {LEAVES[p["metadata"]["annotations"][mapping.ANN_NODE]][0] for p in pods} == {"leaf-a"}
    assert len({p["metadata"]["annotations"][mapping.ANN_GRANT] for p in pods}) == 1


async def test_gang_spread_puts_each_member_on_its_own_node(
    kube: Any, new_namespace: Any, operator: OperatorHandle
) -> None:
    await _leaf_nodes_synced(kube, operator)
    ns = new_namespace({mapping.LABEL_INSTITUTION: "uni-a", mapping.LABEL_PROJECT: "gangs"})
    names = [f"w-{i}" for i in range(3)]
    for name in names:
        _member(ns, "wide", name, 3, topology="spread")
    pods = await eventually(lambda: _all_granted(ns, names))
    nodes = [p["metadata"]["annotations"][mapping.ANN_NODE] for p in pods]
    assert len(set(nodes)) == 3


async def test_mig_partitions_through_the_operator(namespace: Namespace, operator: OperatorHandle) -> None:
    namespace.create_pod("mig", {"nvidia.com/mig-1g.10gb": "2"})

    def granted() -> dict[str, Any] | None:
        pod = namespace.pod("mig")
        return pod if pod and not _gates(pod) and mapping.ANN_GRANT in pod["metadata"]["annotations"] else None

    pod = await eventually(granted)
    annotations = pod["metadata"]["annotations"]
    assert annotations[mapping.ANN_NODE] in GPU_NODES
    assert annotations[mapping.ANN_SLICE_KIND] == "mig"
    assert annotations[mapping.ANN_SLICE_PROFILE] == "1g.10gb,1g.10gb"
    grant = await call(operator.sb.get_grant, annotations[mapping.ANN_GRANT])
    assert grant.state is GrantState.ACTIVE and grant.sku == "H100-SXM-80GB" and grant.count == 2
    assert {(s.kind, s.profile, s.node_id) for s in grant.slices} == {("mig", "1g.10gb", annotations[mapping.ANN_NODE])}
    assert annotations[mapping.ANN_SLICES] == ",".join(s.device_id for s in grant.slices)
    namespace.delete_pod("mig")
    await eventually(lambda: namespace.pod("mig") is None)
    assert (await call(operator.sb.get_grant, grant.id)).state is GrantState.ENDED


async def test_share_of_a_device_through_the_operator(namespace: Namespace, operator: OperatorHandle) -> None:
    # A time-sliced resource with the share in an annotation, and a share asked for by annotation alone.
    namespace.create_pod(
        "quarter", {"nvidia.com/gpu.shared": "1"}, {mapping.ANN_COMPUTE_MILLI: "250", mapping.ANN_SKU: "H100-SXM-80GB"}
    )
    namespace.create_pod(
        "half", {}, {mapping.ANN_COMPUTE_MILLI: "500", mapping.ANN_SKU: "H100-SXM-80GB", mapping.ANN_LEASE: "30m"}
    )

    def granted(name: str) -> dict[str, Any] | None:
        pod = namespace.pod(name)
        return pod if pod and not _gates(pod) and mapping.ANN_GRANT in pod["metadata"]["annotations"] else None

    for name, profile in (("quarter", "0.25"), ("half", "0.5")):
        pod = await eventually(lambda n=name: granted(n))  # type: ignore[misc]
        annotations = pod["metadata"]["annotations"]
        assert annotations[mapping.ANN_SLICE_KIND] == "share"
        grant = await call(operator.sb.get_grant, annotations[mapping.ANN_GRANT])
        assert grant.count == 1 and len(grant.slices) == 1
        (piece,) = grant.slices
        assert (piece.kind, piece.node_id) == ("share", annotations[mapping.ANN_NODE])
        assert float(piece.profile) == float(profile) and annotations[mapping.ANN_SLICE_PROFILE] == piece.profile


class CrashAfter(Kube):
    """The operator's API client, cut off after `puts` pod updates (as if the process died there):
    every later write fails."""

    def __init__(self, kube: Kube, puts: int) -> None:
        super().__init__(kube._api)
        self.left = puts
        self.crashed = threading.Event()

    def request(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        if method != "GET" and (self.crashed.is_set() or (method == "PUT" and "/pods/" in path and self.left <= 0)):
            self.crashed.set()
            raise KubeError(503, "operator died", method, path)
        if method == "PUT" and "/pods/" in path:
            self.left -= 1
        return super().request(method, path, *args, **kwargs)


async def test_gang_interrupted_between_pinning_and_ungating_converges_on_the_same_grant(
    control_plane: ControlPlane, kube: Kube, new_namespace: Any, mesh: Mesh
) -> None:
    ns = new_namespace({mapping.LABEL_INSTITUTION: "uni-a", mapping.LABEL_PROJECT: "gangs"})
    # An operator that dies after pinning both members (pass 1), before any gate is removed.
    dying = Operator(
        OPERATOR_SETTINGS, CrashAfter(Kube(load_api_client(str(control_plane.kubeconfig))), 2), mesh.client()
    )
    handle = OperatorHandle(control_plane, mesh)
    try:
        await call(dying.start)
        await _leaf_nodes_synced_by(kube, dying)
        for name in ("duo-0", "duo-1"):
            _member(ns, "duo", name, 2)
        assert isinstance(dying.kube, CrashAfter)
        await eventually(dying.kube.crashed.is_set)
        await call(dying.stop)
        pinned = [ns.pod(n) for n in ("duo-0", "duo-1")]
        assert all(p and _gates(p) == [mapping.GATE] for p in pinned), "no member was released"
        first = {p["metadata"]["annotations"][mapping.ANN_NODE] for p in pinned if p}
        grant_ids = {p["metadata"]["annotations"][mapping.ANN_GRANT] for p in pinned if p}
        assert len(grant_ids) == 1

        # A fresh operator replays the gang's key: the same grant, the same split, both released.
        restarted = await handle.start()
        await _leaf_nodes_synced_by(kube, restarted)
        pods = await eventually(lambda: _all_granted(ns, ["duo-0", "duo-1"]))
        assert {p["metadata"]["annotations"][mapping.ANN_GRANT] for p in pods} == grant_ids
        assert {p["metadata"]["annotations"][mapping.ANN_NODE] for p in pods} == first
        live = [g for g in await call(lambda: list(handle.sb.list_grants(project="gangs"))) if g.live]
        assert [g.id for g in live] == list(grant_ids), "no second grant"
    finally:
        await call(dying.stop)
        dying.sb.close()
        await handle.stop()
        handle.sb.close()


async def _leaf_nodes_synced_by(kube: Kube, operator: Operator) -> None:
    for name, (leaf, gpus) in LEAVES.items():
        labels = {"slicebroker.io/sku": B200, "slicebroker.io/leaf": leaf, "slicebroker.io/rack": f"rack-{name}"}
        ensure_node(kube, name, {"nvidia.com/gpu": str(gpus)}, labels)
    await eventually(lambda: set(LEAVES) <= set(operator.synced_nodes()))


# Two more leaves of B200s for gangs of pairs: leaf-c has 9 free but only 6 in pairs (3 + 3 + 3);
# leaf-d has 9 with 8 in pairs (4 + 2 + 3). Removed again at the end, so other tests never see them.
PAIR_LEAVES = {
    "pair-c1": ("leaf-c", 3),
    "pair-c2": ("leaf-c", 3),
    "pair-c3": ("leaf-c", 3),
    "pair-d1": ("leaf-d", 4),
    "pair-d2": ("leaf-d", 2),
    "pair-d3": ("leaf-d", 3),
}


async def test_gang_of_two_gpu_pods_gets_each_pod_s_pair_on_one_node(
    kube: Kube, new_namespace: Any, operator: OperatorHandle
) -> None:
    try:
        for name, (leaf, gpus) in PAIR_LEAVES.items():
            labels = {"slicebroker.io/sku": B200, "slicebroker.io/leaf": leaf, "slicebroker.io/rack": f"rack-{name}"}
            ensure_node(kube, name, {"nvidia.com/gpu": str(gpus)}, labels)
        await eventually(lambda: set(PAIR_LEAVES) <= set(operator.current.synced_nodes() if operator.current else {}))
        ns = new_namespace({mapping.LABEL_INSTITUTION: "uni-a", mapping.LABEL_PROJECT: "gangs"})
        names = [f"duo-{i}" for i in range(4)]
        for name in names:
            ns.create_pod(
                name,
                {"nvidia.com/gpu": "2"},
                {mapping.ANN_SKU: B200, mapping.ANN_GANG_SIZE: "4", mapping.ANN_TOPOLOGY: "same-leaf"},
                {mapping.LABEL_GANG: "pairs"},
            )
        pods = await eventually(lambda: _all_granted(ns, names))
        grant_ids = {p["metadata"]["annotations"][mapping.ANN_GRANT] for p in pods}
        assert len(grant_ids) == 1, "one grant for the whole gang"
        grant = await call(operator.sb.get_grant, grant_ids.pop())
        assert grant.state is GrantState.ACTIVE and grant.count == 8 and grant.sku == B200
        node_of_device = {s.device_id: s.node_id for s in grant.slices}
        # leaf-d, although leaf-c has as many free devices: there a pod's pair would span nodes.
        assert {PAIR_LEAVES[s.node_id][0] for s in grant.slices} == {"leaf-d"}
        seen: list[str] = []
        for pod in pods:
            annotations = pod["metadata"]["annotations"]
            node = annotations[mapping.ANN_NODE]
            devices = annotations[mapping.ANN_SLICES].split(",")
            assert len(devices) == 2 and {node_of_device[d] for d in devices} == {node}, "both devices on its node"
            terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            assert terms["nodeSelectorTerms"] == [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
            ]
            seen += devices
        assert sorted(seen) == sorted(node_of_device), "every device of the grant to exactly one pod"
        for name in names:
            ns.delete_pod(name)
        await eventually(lambda: all(ns.pod(n) is None for n in names))
        assert (await call(operator.sb.get_grant, grant.id)).state is GrantState.ENDED
    finally:
        for name in PAIR_LEAVES:
            with contextlib.suppress(KubeError):
                kube.request("DELETE", f"/api/v1/nodes/{name}")


async def test_gang_members_asking_for_different_counts_are_told_so(
    new_namespace: Any, operator: OperatorHandle
) -> None:
    ns = new_namespace({mapping.LABEL_INSTITUTION: "uni-a", mapping.LABEL_PROJECT: "gangs"})
    for name, gpus in (("odd-0", "2"), ("odd-1", "1")):
        ns.create_pod(
            name,
            {"nvidia.com/gpu": gpus},
            {mapping.ANN_SKU: B200, mapping.ANN_GANG_SIZE: "2"},
            {mapping.LABEL_GANG: "odd"},
        )
    await eventually(lambda: all("GangMismatch" in _reasons(ns, n) for n in ("odd-0", "odd-1")))
    assert "different numbers of devices per pod (1, 2)" in _reasons(ns, "odd-0")["GangMismatch"]
    assert all(_gates(ns.pod(n)) == [mapping.GATE] for n in ("odd-0", "odd-1"))


async def test_a_node_with_only_mig_capacity_syncs_and_takes_mig_pods(
    kube: Kube, new_namespace: Any, operator: OperatorHandle
) -> None:
    # What the NVIDIA device plugin (MIG strategy "mixed") and GPU feature discovery publish for
    # one A100 cut into seven 1g.10gb instances: no nvidia.com/gpu at all.
    labels = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB", "nvidia.com/gpu.count": "1"}
    try:
        ensure_node(kube, "mig-only", {"nvidia.com/mig-1g.10gb": "7"}, labels)
        synced = await eventually(lambda: (operator.current.synced_nodes() if operator.current else {}).get("mig-only"))
        assert synced == ("A100-SXM-80GB", 1, "active", {"1g.10gb": 7})
        registered = await call(operator.sb.get_node, "mig-only")
        # The GPU, and how the node's MIG manager has cut it: seven 1g.10gb instances.
        assert (registered.sku, registered.devices, registered.mig_layout) == ("A100-SXM-80GB", 1, {"1g.10gb": 7})

        ns = new_namespace({mapping.LABEL_INSTITUTION: "uni-a", mapping.LABEL_PROJECT: "migs"})
        ns.create_pod("mig-pod", {"nvidia.com/mig-1g.10gb": "2"}, {mapping.ANN_SKU: "A100-SXM-80GB"})

        def granted() -> dict[str, Any] | None:
            pod = ns.pod("mig-pod")
            return pod if pod and not _gates(pod) and mapping.ANN_GRANT in pod["metadata"]["annotations"] else None

        pod = await eventually(granted)
        annotations = pod["metadata"]["annotations"]
        assert annotations[mapping.ANN_NODE] == "mig-only"
        assert annotations[mapping.ANN_SLICE_KIND] == "mig"
        assert annotations[mapping.ANN_SLICE_PROFILE] == "1g.10gb,1g.10gb"
        grant = await call(operator.sb.get_grant, annotations[mapping.ANN_GRANT])
        assert grant.state is GrantState.ACTIVE and grant.sku == "A100-SXM-80GB"
        assert {(s.kind, s.profile, s.node_id) for s in grant.slices} == {("mig", "1g.10gb", "mig-only")}
        ns.delete_pod("mig-pod")
        await eventually(lambda: ns.pod("mig-pod") is None)
        assert (await call(operator.sb.get_grant, grant.id)).state is GrantState.ENDED

        # The MIG manager re-cuts the GPU into two 3g.40gb: the next sync registers the new layout.
        recut = {"nvidia.com/mig-1g.10gb": None, "nvidia.com/mig-3g.40gb": "2"}
        status = {"status": {"capacity": recut, "allocatable": recut}}
        kube.request("PATCH", "/api/v1/nodes/mig-only/status", body=status, content_type=MERGE)

        def recut_synced() -> bool:
            now = (operator.current.synced_nodes() if operator.current else {}).get("mig-only")
            return now is not None and now.mig_layout == {"3g.40gb": 2}

        await eventually(recut_synced)
        registered = await call(operator.sb.get_node, "mig-only")
        assert (registered.devices, registered.mig_layout) == (1, {"3g.40gb": 2})
    finally:
        with contextlib.suppress(KubeError):
            kube.request("DELETE", "/api/v1/nodes/mig-only")
