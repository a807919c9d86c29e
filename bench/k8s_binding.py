"""Pods bound per second through the operator on a real control plane: a facility of NODES
Kubernetes Nodes with 8 GPUs each is synced into inventory, then PODS gated pods asking for
`nvidia.com/gpu: 4` are created at once; a pod counts as bound when it carries its grant, is
pinned to the granted node and (with kube-scheduler) has been bound to exactly that node.

Everything shares this machine: etcd, kube-apiserver, kube-scheduler, kwok (if built), Redis, the
four services (one process each, mTLS), the operator's threads and the pod creator. Needs
`make k8s-bins`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console

from slicebroker.client import Client, ClientOptions
from slicebroker.mesh.launcher import Mesh
from slicebroker.operator import mapping
from slicebroker.operator.certs import local_serving_cert
from slicebroker.operator.controller import Operator
from slicebroker.operator.kube import MERGE, Kube, load_api_client
from slicebroker.operator.main import install_crds
from slicebroker.operator.settings import OperatorSettings
from slicebroker.operator.webhook import WebhookServer, webhook_configuration
from slicebroker.runtime.redis_server import RedisServer
from slicebroker.v1 import quota_pb2, quota_pb2_grpc
from tests.k8s.controlplane import ControlPlane, bin_dir, free_port, missing_reason

NODES = int(os.environ.get("SLICEBROKER_BENCH_K8S_NODES", "1000"))
PODS = int(os.environ.get("SLICEBROKER_BENCH_K8S_PODS", "1000"))
GPUS_PER_POD = 4


def _node(i: int) -> dict[str, Any]:
    name = f"kwok-gpu-{i:04d}"
    capacity = {"cpu": "64", "memory": "512Gi", "pods": "110", "nvidia.com/gpu": "8"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {
                "kubernetes.io/hostname": name,
                "type": "kwok",
                "slicebroker.io/sku": "H100-SXM-80GB",
                "slicebroker.io/rack": f"r{i // 8:03d}",
            },
        },
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def _pod(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"train-{i:04d}"},
        "spec": {
            "containers": [
                {"name": "main", "image": "busybox", "resources": {"limits": {"nvidia.com/gpu": str(GPUS_PER_POD)}}}
            ]
        },
    }


def _spawn(plane: ControlPlane, name: str, argv: list[str]) -> subprocess.Popen[bytes] | None:
    if not (plane.bins / argv[0]).exists():
        return None
    log = open(plane.workdir / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen([str(plane.bins / argv[0]), *argv[1:]], stdout=log, stderr=subprocess.STDOUT)
    plane.procs.append(proc)
    return proc


def _bound(pods: list[dict[str, Any]], scheduler: bool) -> int:
    done = 0
    for pod in pods:
        annotations = pod["metadata"].get("annotations") or {}
        node = annotations.get(mapping.ANN_NODE)
        if not node or (pod["spec"].get("schedulingGates") or []):
            continue
        if scheduler and pod["spec"].get("nodeName") != node:
            continue
        done += 1
    return done


def run(seconds: float, console: Console) -> tuple[dict[str, float], dict[str, Any]]:
    reason = missing_reason()
    if reason:
        raise SystemExit(reason)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        plane = ControlPlane(work / "k8s", bin_dir()).start()
        redis = RedisServer(data_dir=work / "redis").start()
        mesh = Mesh(run_dir=work / "run", redis_url=redis.url).start()
        mesh.wait_serving()
        try:
            return _run(plane, mesh, console)
        finally:
            mesh.stop()
            redis.stop()
            plane.stop()


def _run(plane: ControlPlane, mesh: Mesh, console: Console) -> tuple[dict[str, float], dict[str, Any]]:
    kubeconfig = str(plane.kubeconfig)
    kube = Kube(load_api_client(kubeconfig, pool_size=32))
    install_crds(kube)
    scheduler = _spawn(
        plane,
        "kube-scheduler",
        ["kube-scheduler", f"--kubeconfig={kubeconfig}", "--leader-elect=false",
         "--bind-address=127.0.0.1", f"--secure-port={free_port()}",
         f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
         "--kube-api-qps=500", "--kube-api-burst=1000"],
    )  # fmt: skip
    kwok = _spawn(
        plane,
        "kwok",
        ["kwok", f"--kubeconfig={kubeconfig}", "--manage-all-nodes=false",
         "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
         "--cidr=10.0.0.1/16", "--node-ip=10.0.0.1"],
    )  # fmt: skip
    serving = local_serving_cert(["127.0.0.1"])
    cert, key = serving.write(plane.workdir / "webhook")
    webhook = WebhookServer("127.0.0.1:0", str(cert), str(key), ("kube-system",)).start()
    kube.request(
        "POST",
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        body=webhook_configuration(
            "slicebroker-bench", serving.bundle_pem, url=f"https://127.0.0.1:{webhook.port}/mutate-pods"
        ),
    )
    with mesh.channel("quota") as channel:
        stub = quota_pb2_grpc.QuotaServiceStub(channel)
        stub.UpsertInstitution(quota_pb2.UpsertInstitutionRequest(id="bench"), metadata=mesh.metadata)
        stub.UpsertProject(
            quota_pb2.UpsertProjectRequest(
                id="bench-llm", institution="bench", device_caps={"H100-SXM-80GB": 8 * NODES}
            ),
            metadata=mesh.metadata,
        )
    tls = mesh.client_tls
    options = ClientOptions(
        broker_addr=mesh.addresses["broker"],
        inventory_addr=mesh.addresses["inventory"],
        quota_addr=mesh.addresses["quota"],
        accounting_addr=mesh.addresses["accounting"],
        token=mesh.admin_token,
        tls_ca_file=str(tls.ca) if tls else None,
        tls_cert_file=str(tls.cert) if tls else None,
        tls_key_file=str(tls.key) if tls else None,
        timeout=30.0,
    )
    pool = ThreadPoolExecutor(16)
    t0 = time.monotonic()
    list(pool.map(lambda i: kube.request("POST", "/api/v1/nodes", body=_node(i)), range(NODES)))
    # The TaintNodesByCondition admission plugin taints new Nodes not-ready; the node lifecycle
    # controller (kube-controller-manager, not run here) would lift it once kwok reports Ready.
    untaint = {"spec": {"taints": None}}
    list(
        pool.map(
            lambda i: kube.request(
                "PATCH", f"/api/v1/nodes/{_node(i)['metadata']['name']}", body=untaint, content_type=MERGE
            ),
            range(NODES),
        )
    )
    nodes_created_s = time.monotonic() - t0

    settings = OperatorSettings(workers=16, retry_s=0.5, renew_check_s=5.0, watch_timeout_s=30)
    operator = Operator(settings, Kube(load_api_client(kubeconfig, pool_size=32)), Client(options))
    t_sync = time.monotonic()
    operator.start()
    while len(operator.synced_nodes()) < NODES:
        time.sleep(0.1)
    node_sync_s = time.monotonic() - t_sync
    with Client(options) as sb:
        inventory_nodes = sum(1 for _ in sb.nodes(page_size=500))
    console.print(f"{NODES} nodes created in {nodes_created_s:.1f}s, synced into inventory in {node_sync_s:.1f}s")

    kube.request(
        "POST",
        "/api/v1/namespaces",
        body={
            "metadata": {
                "name": "bench",
                "labels": {mapping.LABEL_INSTITUTION: "bench", mapping.LABEL_PROJECT: "bench-llm"},
            }
        },
    )
    t_pods = time.monotonic()
    list(pool.map(lambda i: kube.request("POST", "/api/v1/namespaces/bench/pods", body=_pod(i)), range(PODS)))
    pods_created_s = time.monotonic() - t_pods
    bound = 0
    deadline = t_pods + float(os.environ.get("SLICEBROKER_BENCH_K8S_WAIT_S", "600"))
    while time.monotonic() < deadline:
        pods, _ = kube.list_all("/api/v1/namespaces/bench/pods")
        bound = _bound(pods, scheduler is not None)
        if bound >= PODS:
            break
        time.sleep(0.25)
    bind_s = time.monotonic() - t_pods
    granted = _bound(pods, False)
    if bound < PODS:
        sample = pods[0] if pods else {}
        console.print(
            f"granted (pinned, gate removed): {granted}; sample pod: {sample.get('metadata', {}).get('annotations')}"
        )
        console.print(f"sample status: {(sample.get('status') or {}).get('conditions')}")
    console.print(f"{PODS} pods created in {pods_created_s:.1f}s; {bound} bound after {bind_s:.1f}s")

    # Correctness: every grant's devices on the node the pod runs on, no device in two grants.
    pods, _ = kube.list_all("/api/v1/namespaces/bench/pods")
    devices: list[str] = []
    wrong = 0
    running = 0
    for pod in pods:
        annotations = pod["metadata"].get("annotations") or {}
        node = annotations.get(mapping.ANN_NODE, "")
        slices = [s for s in annotations.get(mapping.ANN_SLICES, "").split(",") if s]
        devices.extend(slices)
        if len(slices) != GPUS_PER_POD or any(not s.startswith(node + "/") for s in slices):
            wrong += 1
        if (pod.get("status") or {}).get("phase") == "Running":
            running += 1
    operator.stop()
    webhook.stop()
    with contextlib.suppress(Exception):
        kube.close()
    metrics = {
        "pods_bound_per_s": round(bound / bind_s, 1),
        "pods_bound": float(bound),
        "bind_all_s": round(bind_s, 2),
        "pod_create_per_s": round(PODS / pods_created_s, 1),
        "nodes_synced_per_s": round(NODES / node_sync_s, 1),
        "wrongly_bound": float(wrong),
        "duplicate_devices": float(len(devices) - len(set(devices))),
    }
    details = {
        "nodes": NODES,
        "pods": PODS,
        "gpus_per_pod": GPUS_PER_POD,
        "inventory_nodes": inventory_nodes,
        "kube_scheduler": scheduler is not None,
        "kwok": kwok is not None,
        "pods_running_per_kwok": running,
        "bound_means": "grant annotated, gate removed, pinned to the granted node"
        + (", and bound there by kube-scheduler" if scheduler is not None else ""),
        "operator_workers": settings.workers,
        "machine_note": "2 cores shared by etcd, kube-apiserver, kube-scheduler, kwok, Redis, 4 services, "
        "the operator and the pod creator; the machine is shared with other sessions (noisy)",
    }
    return metrics, details
