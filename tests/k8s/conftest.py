"""Fixtures of the Kubernetes tests: one real control plane per session (skipped with a reason when
the binaries are not built), the operator's admission webhook registered against it, a fresh
namespace per test, and the four services in this process with the operator in front of them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest

from slicebroker.accounting.main import build as build_accounting
from slicebroker.accounting.settings import AccountingSettings
from slicebroker.broker.main import build as build_broker
from slicebroker.broker.settings import BrokerSettings
from slicebroker.client import Client, ClientOptions
from slicebroker.inventory.main import build as build_inventory
from slicebroker.inventory.settings import InventorySettings
from slicebroker.operator.certs import local_serving_cert
from slicebroker.operator.controller import Operator
from slicebroker.operator.kube import Kube, KubeError, load_api_client
from slicebroker.operator.main import install_crds
from slicebroker.operator.settings import OperatorSettings
from slicebroker.operator.webhook import WebhookServer, webhook_configuration
from slicebroker.quota.main import build as build_quota
from slicebroker.quota.settings import QuotaSettings
from slicebroker.v1 import quota_pb2, quota_pb2_grpc
from tests.k8s.controlplane import ControlPlane, bin_dir, missing_reason

T = TypeVar("T")

# Institutions and projects of the tests; "tiny" has room for 2 H100s only (quota refusals).
PROJECTS = {
    "uni-a-llm": ("uni-a", {"H100-SXM-80GB": 64, "RNGD": 32}),
    "tiny": ("uni-a", {"H100-SXM-80GB": 2}),
    "gangs": ("uni-a", {"B200-SXM-180GB": 16}),
    # A100s exist only on the MIG-only node of test_gangs_and_slices.
    "migs": ("uni-a", {"A100-SXM-80GB": 8}),
}
GPU_NODES = ("gpu-n1", "gpu-n2")
PREEMPTION_NOTICE_S = 3.0


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    reason = missing_reason()
    if reason:
        # `make chart-check` sets SLICEBROKER_K8S_REQUIRED: there a missing binary is a failure.
        if os.environ.get("SLICEBROKER_K8S_REQUIRED"):
            pytest.fail(reason)
        pytest.skip(reason)
    plane = ControlPlane(tmp_path_factory.mktemp("k8s"), bin_dir()).start()
    yield plane
    plane.stop()


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Iterator[Kube]:
    client = Kube(load_api_client(str(control_plane.kubeconfig), pool_size=16))
    install_crds(client)
    for name in GPU_NODES:
        ensure_node(client, name, {"nvidia.com/gpu": "8"}, {"slicebroker.io/sku": "H100-SXM-80GB"})
    yield client
    client.close()


@pytest.fixture(scope="session")
def webhook(control_plane: ControlPlane, kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The operator's admission webhook, served from this process and registered by URL."""
    serving = local_serving_cert(["127.0.0.1"])
    cert, key = serving.write(tmp_path_factory.mktemp("webhook"))
    server = WebhookServer("127.0.0.1:0", str(cert), str(key), ("kube-system",)).start()
    url = f"https://127.0.0.1:{server.port}/mutate-pods"
    config = webhook_configuration("slicebroker-test", serving.bundle_pem, url=url)
    kube.request("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", body=config)
    yield url
    kube.request("DELETE", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/slicebroker-test")
    server.stop()


def ensure_node(kube: Kube, name: str, capacity: dict[str, str], labels: dict[str, str]) -> None:
    """A kwok-style Node (no kubelet behind it; nothing here needs one to run)."""
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "type": "kwok", **labels},
            "annotations": {"kwok.x-k8s.io/node": "fake"},
        },
        "status": {"capacity": {"cpu": "64", "memory": "512Gi", "pods": "110", **capacity}},
    }
    body["status"]["allocatable"] = dict(body["status"]["capacity"])
    try:
        kube.request("POST", "/api/v1/nodes", body=body)
    except KubeError as err:
        if err.status != 409:
            raise


@dataclass
class Namespace:
    name: str
    kube: Kube

    def pod(self, name: str) -> dict[str, Any] | None:
        return self.kube.get(f"/api/v1/namespaces/{self.name}/pods/{name}")

    def create_pod(
        self,
        name: str,
        resources: dict[str, str],
        annotations: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "annotations": annotations or {}, "labels": labels or {}},
            "spec": {
                "containers": [
                    {"name": "main", "image": "busybox", "resources": {"limits": resources}},
                ]
            },
        }
        return self.kube.request("POST", f"/api/v1/namespaces/{self.name}/pods", body=body)

    def delete_pod(self, name: str) -> None:
        self.kube.request("DELETE", f"/api/v1/namespaces/{self.name}/pods/{name}", query={"gracePeriodSeconds": 0})

    def events(self, name: str) -> list[dict[str, Any]]:
        items = self.kube.request(
            "GET", f"/api/v1/namespaces/{self.name}/events", query={"fieldSelector": f"involvedObject.name={name}"}
        )
        return list(items.get("items") or [])


def make_namespace(kube: Kube, labels: dict[str, str]) -> Namespace:
    name = f"t-{uuid.uuid4().hex[:10]}"
    kube.request("POST", "/api/v1/namespaces", body={"metadata": {"name": name, "labels": labels}})
    return Namespace(name, kube)


def cleanup_namespace(ns: Namespace) -> None:
    # No controller-manager: nothing deletes pods or finishes namespace deletion, so drop our
    # finalizers and delete the pods ourselves; the namespace itself stays Terminating.
    pods, _ = ns.kube.list_all(f"/api/v1/namespaces/{ns.name}/pods")
    for pod in pods:
        path = f"/api/v1/namespaces/{ns.name}/pods/{pod['metadata']['name']}"
        try:
            ns.kube.request(
                "PATCH", path, body={"metadata": {"finalizers": None}}, content_type="application/merge-patch+json"
            )
            ns.kube.request("DELETE", path, query={"gracePeriodSeconds": 0})
        except KubeError:
            pass
    claims, _ = ns.kube.list_all(f"/apis/slicebroker.io/v1alpha1/namespaces/{ns.name}/sliceclaims")
    for claim in claims:
        path = f"/apis/slicebroker.io/v1alpha1/namespaces/{ns.name}/sliceclaims/{claim['metadata']['name']}"
        try:
            ns.kube.request(
                "PATCH", path, body={"metadata": {"finalizers": None}}, content_type="application/merge-patch+json"
            )
            ns.kube.request("DELETE", path)
        except KubeError:
            pass
    with contextlib.suppress(KubeError):
        ns.kube.request("DELETE", f"/api/v1/namespaces/{ns.name}")


@pytest.fixture
def namespace(kube: Kube, webhook: str) -> Iterator[Namespace]:
    ns = make_namespace(kube, {"slicebroker.io/institution": "uni-a", "slicebroker.io/project": "uni-a-llm"})
    yield ns
    cleanup_namespace(ns)


@pytest.fixture
def new_namespace(kube: Kube, webhook: str) -> Iterator[Callable[[dict[str, str]], Namespace]]:
    made: list[Namespace] = []

    def make(labels: dict[str, str]) -> Namespace:
        made.append(make_namespace(kube, labels))
        return made[-1]

    yield make
    for ns in made:
        cleanup_namespace(ns)


@dataclass
class Mesh:
    addresses: dict[str, str]

    def client(self) -> Client:
        return Client(
            ClientOptions(
                broker_addr=self.addresses["broker"],
                inventory_addr=self.addresses["inventory"],
                quota_addr=self.addresses["quota"],
                accounting_addr=self.addresses["accounting"],
            )
        )


@pytest.fixture
async def mesh(start_service: Any, redis_url: str) -> Mesh:
    """The four services with tenants but no nodes: the operator's node sync registers the cluster's."""
    listen = "127.0.0.1:0"
    inventory = await start_service(build_inventory, InventorySettings(redis_url=redis_url, listen=listen))
    quota = await start_service(build_quota, QuotaSettings(redis_url=redis_url, listen=listen))
    accounting = await start_service(build_accounting, AccountingSettings(redis_url=redis_url, listen=listen))
    async with grpc.aio.insecure_channel(quota.address) as channel:
        stub = quota_pb2_grpc.QuotaServiceStub(channel)
        for institution in sorted({inst for inst, _ in PROJECTS.values()}):
            await stub.UpsertInstitution(quota_pb2.UpsertInstitutionRequest(id=institution))
        for project, (institution, caps) in PROJECTS.items():
            await stub.UpsertProject(
                quota_pb2.UpsertProjectRequest(id=project, institution=institution, device_caps=caps)
            )
    broker = await start_service(
        build_broker,
        BrokerSettings(
            redis_url=redis_url,
            listen=listen,
            inventory_addr=inventory.address,
            quota_addr=quota.address,
            accounting_addr=accounting.address,
            reaper_interval_s=0.05,
            relay_interval_s=0.02,
            # Preemption within a test's patience: a short notice, no minimum runtime.
            preemption_notice_s=PREEMPTION_NOTICE_S,
            preemption_min_runtime_s=0.0,
        ),
    )
    return Mesh(
        {
            "inventory": inventory.address,
            "quota": quota.address,
            "accounting": accounting.address,
            "broker": broker.address,
        }
    )


OPERATOR_SETTINGS = OperatorSettings(
    workers=4, retry_s=0.5, renew_check_s=0.2, resync_s=30.0, watch_timeout_s=10, default_lease_s=3600.0
)


class OperatorHandle:
    """Starts and stops operators against the test control plane and mesh (a restart is stop + start)."""

    def __init__(self, control_plane: ControlPlane, mesh: Mesh) -> None:
        self._plane = control_plane
        self._mesh = mesh
        self.current: Operator | None = None
        self.sb = mesh.client()

    async def start(self, settings: OperatorSettings = OPERATOR_SETTINGS) -> Operator:
        kube = Kube(load_api_client(str(self._plane.kubeconfig), pool_size=16))
        self.current = Operator(settings, kube, self._mesh.client())
        await asyncio.to_thread(self.current.start)
        return self.current

    async def stop(self) -> None:
        if self.current is not None:
            operator, self.current = self.current, None
            # Off the event loop: its workers may be mid-call to the services this loop serves.
            await asyncio.to_thread(operator.stop)
            operator.sb.close()


@pytest.fixture
async def operator(control_plane: ControlPlane, kube: Kube, webhook: str, mesh: Mesh) -> AsyncIterator[OperatorHandle]:
    handle = OperatorHandle(control_plane, mesh)
    await handle.start()
    # Node sync: the cluster's GPU nodes are in inventory before a test asks for grants.
    await eventually(lambda: set(GPU_NODES) <= set(handle.current.synced_nodes()) if handle.current else False)
    yield handle
    await handle.stop()
    handle.sb.close()


async def eventually(check: Callable[[], T | None], timeout_s: float = 20.0, interval_s: float = 0.05) -> T:
    """Polls `check` (sync, quick) while the event loop keeps serving the in-process mesh."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout_s}s: {check}")
        await asyncio.sleep(interval_s)


@pytest.fixture(scope="session")
def chart_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "helm" / "slicebroker"
