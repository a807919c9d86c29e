"""The operator against a real kube-apiserver and the four real services: pods that ask for
accelerators are gated at creation, granted, pinned to the granted node and released."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from slicebroker.client import GrantState
from slicebroker.operator import grants, mapping
from tests.k8s.conftest import GPU_NODES, Namespace, OperatorHandle, eventually

call = asyncio.to_thread

GPU4 = {"nvidia.com/gpu": "4"}


def _gates(pod: dict[str, Any] | None) -> list[str]:
    return [g["name"] for g in ((pod or {}).get("spec") or {}).get("schedulingGates") or ()]


def _granted(ns: Namespace, name: str) -> dict[str, Any] | None:
    pod = ns.pod(name)
    if pod and mapping.ANN_GRANT in (pod["metadata"].get("annotations") or {}) and not _gates(pod):
        return pod
    return None


def _condition(ns: Namespace, name: str) -> str | None:
    """The status of the pod's slicebroker condition, None while it has none."""
    pod = ns.pod(name) or {}
    conditions = {c["type"]: c for c in (pod.get("status") or {}).get("conditions") or ()}
    status: str | None = conditions.get(mapping.CONDITION, {}).get("status")
    return status


def _reasons(ns: Namespace, name: str) -> dict[str, str]:
    return {e["reason"]: e["message"] for e in ns.events(name)}


async def test_gpu_pod_is_pinned_to_its_granted_node_and_released_on_delete(
    namespace: Namespace, operator: OperatorHandle
) -> None:
    created = namespace.create_pod("train", GPU4)
    # The webhook gated the pod and added the release finalizer at creation.
    assert _gates(created) == [mapping.GATE]
    assert mapping.FINALIZER in created["metadata"]["finalizers"]

    pod = await eventually(lambda: _granted(namespace, "train"))
    annotations = pod["metadata"]["annotations"]
    node = annotations[mapping.ANN_NODE]
    assert node in GPU_NODES
    slices = annotations[mapping.ANN_SLICES].split(",")
    assert len(slices) == 4 and all(s.startswith(f"{node}/gpu") for s in slices)
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]
    # The condition is written to the status subresource, a call of its own after the ungating update.
    assert await eventually(lambda: _condition(namespace, "train") == "True")

    # The grant is the broker's: what `slicectl grants` lists.
    grant = await call(operator.sb.get_grant, annotations[mapping.ANN_GRANT])
    assert grant.state is GrantState.ACTIVE and grant.count == 4 and grant.project == "uni-a-llm"
    assert sorted(s.device_id for s in grant.slices) == sorted(slices)
    assert grant.id in {g.id for g in (await call(lambda: list(operator.sb.list_grants(project="uni-a-llm"))))}

    namespace.delete_pod("train")
    await eventually(lambda: namespace.pod("train") is None)
    assert (await call(operator.sb.get_grant, grant.id)).state is GrantState.ENDED
    assert "Released" in _reasons(namespace, "train")


async def test_pod_that_finishes_releases_its_grant(namespace: Namespace, operator: OperatorHandle) -> None:
    namespace.create_pod("job", {"nvidia.com/gpu": "2"})
    pod = await eventually(lambda: _granted(namespace, "job"))
    grant_id = pod["metadata"]["annotations"][mapping.ANN_GRANT]
    # The kubelet's part: the pod ran and succeeded.
    status = {"status": {"phase": "Succeeded"}}
    namespace.kube.request(
        "PATCH", f"/api/v1/namespaces/{namespace.name}/pods/job/status", body=status, content_type=mapping_merge()
    )
    await eventually(lambda: operator.sb.get_grant(grant_id).state is GrantState.ENDED)
    await eventually(
        lambda: mapping.FINALIZER not in ((namespace.pod("job") or {})["metadata"].get("finalizers") or ())
    )


def mapping_merge() -> str:
    return "application/merge-patch+json"


async def test_unmapped_namespace_gets_an_event_and_proceeds_once_labelled(
    new_namespace: Any, operator: OperatorHandle
) -> None:
    ns = new_namespace({})
    ns.create_pod("p", GPU4)
    reasons = await eventually(lambda: _reasons(ns, "p") if "NamespaceNotMapped" in _reasons(ns, "p") else None)
    assert "kubectl label namespace" in reasons["NamespaceNotMapped"]
    assert _gates(ns.pod("p")) == [mapping.GATE]

    labels = {"metadata": {"labels": {mapping.LABEL_INSTITUTION: "uni-a", mapping.LABEL_PROJECT: "uni-a-llm"}}}
    ns.kube.request("PATCH", f"/api/v1/namespaces/{ns.name}", body=labels, content_type=mapping_merge())
    await eventually(lambda: _granted(ns, "p"))


async def test_quota_refusal_and_unknown_resource_are_pod_events(new_namespace: Any, operator: OperatorHandle) -> None:
    ns = new_namespace({mapping.LABEL_INSTITUTION: "uni-a", mapping.LABEL_PROJECT: "tiny"})
    ns.create_pod("big", GPU4)
    ns.create_pod("odd", {"nvidia.com/gpu-h100x": "1"})
    ns.create_pod("shared", {"nvidia.com/gpu.shared": "1"})
    big = await eventually(lambda: _reasons(ns, "big").get("GrantPending"))
    assert "QUOTA_EXCEEDED" in big
    odd = await eventually(lambda: _reasons(ns, "odd").get("UnknownResource"))
    assert "nvidia.com/gpu-h100x" in odd and "nvidia.com/gpu" in odd
    shared = await eventually(lambda: _reasons(ns, "shared").get("MissingShare"))
    assert mapping.ANN_COMPUTE_MILLI in shared
    for name in ("big", "odd", "shared"):
        assert _gates(ns.pod(name)) == [mapping.GATE]
    # Nothing holds devices for the refused pods (the broker may keep a request queued).
    held = [g for g in await call(lambda: list(operator.sb.list_grants(project="tiny"))) if g.slices]
    assert held == []


async def test_operator_restart_converges_without_leaking_grants(
    namespace: Namespace, operator: OperatorHandle
) -> None:
    namespace.create_pod("a", GPU4)
    pod_a = await eventually(lambda: _granted(namespace, "a"))
    grant_a = pod_a["metadata"]["annotations"][mapping.ANN_GRANT]

    await operator.stop()
    # While the operator is down: pod a is deleted (held by the finalizer), pod b is created
    # (gated by the webhook), and a grant for pod c is made as if the operator had crashed
    # between requesting it and updating the pod.
    namespace.delete_pod("a")
    assert namespace.pod("a") is not None
    namespace.create_pod("b", GPU4)
    pod_c = namespace.create_pod("c", {"nvidia.com/gpu": "2"})
    skus = mapping.resource_names()["nvidia.com/gpu"].skus
    early = await call(
        grants.request_grant,
        operator.sb,
        "uni-a-llm",
        skus[0],
        2,
        mapping.parse_lease("1h"),
        f"k8s-pod-{pod_c['metadata']['uid']}",
        "same-node",
        alternatives=skus[1:],
    )

    await operator.start()
    await eventually(lambda: namespace.pod("a") is None)
    assert (await call(operator.sb.get_grant, grant_a)).state is GrantState.ENDED
    pod_b = await eventually(lambda: _granted(namespace, "b"))
    pod_c = await eventually(lambda: _granted(namespace, "c"))
    assert pod_c["metadata"]["annotations"][mapping.ANN_GRANT] == early.id

    live = {g.id for g in (await call(lambda: list(operator.sb.list_grants(project="uni-a-llm")))) if g.live}
    assert live == {pod_b["metadata"]["annotations"][mapping.ANN_GRANT], early.id}


async def test_leases_are_renewed_while_the_pod_lives(namespace: Namespace, operator: OperatorHandle) -> None:
    namespace.create_pod("long", GPU4, {mapping.ANN_LEASE: "60s"})
    pod = await eventually(lambda: _granted(namespace, "long"))
    grant_id = pod["metadata"]["annotations"][mapping.ANN_GRANT]
    first = (await call(operator.sb.get_grant, grant_id)).expires_at
    assert operator.current is not None and first is not None
    # Pretend most of the lease has passed: the renewer extends it.
    assert await eventually(lambda: operator.current.renew_due(now=first.timestamp() - 5) if operator.current else 0)
    later = (await call(operator.sb.get_grant, grant_id)).expires_at
    assert first is not None and later is not None and later >= first


async def test_slice_claim_is_granted_and_released(namespace: Namespace, operator: OperatorHandle) -> None:
    path = f"/apis/slicebroker.io/v1alpha1/namespaces/{namespace.name}/sliceclaims"
    claim = {
        "apiVersion": "slicebroker.io/v1alpha1",
        "kind": "SliceClaim",
        "metadata": {"name": "notebook"},
        "spec": {"sku": "H100-SXM-80GB", "count": 2, "lease": "2h"},
    }
    namespace.kube.request("POST", path, body=claim)

    def granted() -> dict[str, Any] | None:
        got = namespace.kube.get(f"{path}/notebook") or {}
        return got if (got.get("status") or {}).get("state") == "Granted" else None

    got = await eventually(granted)
    grant = await call(operator.sb.get_grant, got["status"]["grantId"])
    assert grant.live and grant.count == 2 and got["status"]["node"] in GPU_NODES
    # Printer columns: what `kubectl get sliceclaims` shows.
    table = namespace.kube.request("GET", path, query={}, content_type="application/json")
    assert table["items"][0]["spec"]["sku"] == "H100-SXM-80GB"

    namespace.kube.request("DELETE", f"{path}/notebook")
    await eventually(lambda: namespace.kube.get(f"{path}/notebook") is None)
    assert (await call(operator.sb.get_grant, grant.id)).state is GrantState.ENDED


async def test_cordoned_node_is_cordoned_in_inventory(kube: Any, operator: OperatorHandle) -> None:
    from tests.k8s.conftest import ensure_node

    ensure_node(kube, "gpu-cordon", {"nvidia.com/gpu": "8"}, {"slicebroker.io/sku": "H100-SXM-80GB"})
    try:
        await eventually(lambda: "gpu-cordon" in (operator.current.synced_nodes() if operator.current else {}))
        kube.request(
            "PATCH", "/api/v1/nodes/gpu-cordon", body={"spec": {"unschedulable": True}}, content_type=mapping_merge()
        )
        await eventually(
            lambda: (
                (operator.current.synced_nodes().get("gpu-cordon") or ("", 0, ""))[2] == "cordoned"
                if operator.current
                else False
            )
        )
        node = next(n for n in (await call(lambda: list(operator.sb.nodes()))) if n.id == "gpu-cordon")
        assert not node.schedulable
        kube.request("DELETE", "/api/v1/nodes/gpu-cordon")
        await eventually(
            lambda: (
                (operator.current.synced_nodes().get("gpu-cordon") or ("", 0, ""))[2] == "draining"
                if operator.current
                else False
            )
        )
    finally:
        with contextlib.suppress(Exception):
            kube.request("DELETE", "/api/v1/nodes/gpu-cordon")
