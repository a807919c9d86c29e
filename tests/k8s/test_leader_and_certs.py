"""High availability of the operator on a real kube-apiserver: two replicas elect one leader on a
coordination.k8s.io Lease (only the leader acts, the standby takes over when the leader dies),
and the webhook's own certificates are renewed before they expire, the API server's trust
(caBundle) following, without a failed admission."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from slicebroker.operator import mapping
from slicebroker.operator.certs import CertificateKeeper, ServingCert, WebhookCertificates
from slicebroker.operator.controller import Operator
from slicebroker.operator.kube import Kube, load_api_client
from slicebroker.operator.leader import LeaderElector
from slicebroker.operator.webhook import WebhookServer, webhook_configuration
from tests.k8s.conftest import GPU_NODES, OPERATOR_SETTINGS, Mesh, Namespace, eventually
from tests.k8s.controlplane import ControlPlane

call = asyncio.to_thread
ADMISSION = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"


class Replica:
    """One operator replica: its own API and mesh connections, an elector and the controllers
    that run only while it leads."""

    def __init__(self, plane: ControlPlane, mesh: Mesh, lease: str, name: str) -> None:
        self.kube = Kube(load_api_client(str(plane.kubeconfig), pool_size=16))
        self.operator = Operator(OPERATOR_SETTINGS, self.kube, mesh.client())
        self.identity = f"{name}_{uuid.uuid4().hex[:6]}"
        self.elector = LeaderElector(
            self.kube,
            "default",
            lease,
            self.identity,
            lease_s=3.0,
            renew_deadline_s=2.0,
            retry_s=0.3,
            on_started_leading=self.operator.start,
            on_stopped_leading=self.operator.stop,
        )

    def crash(self) -> None:
        """Stops without giving the Lease up, as a killed process would."""
        self.elector.stop(release=False)

    def close(self) -> None:
        self.elector.stop(release=True)
        self.operator.stop()
        self.operator.sb.close()


def _granted(ns: Namespace, name: str) -> dict[str, Any] | None:
    pod = ns.pod(name)
    gates = ((pod or {}).get("spec") or {}).get("schedulingGates")
    return pod if pod and not gates and mapping.ANN_GRANT in pod["metadata"].get("annotations", {}) else None


async def test_one_replica_leads_and_the_standby_takes_over_when_it_dies(
    control_plane: ControlPlane, kube: Kube, webhook: str, mesh: Mesh, namespace: Namespace
) -> None:
    lease = f"op-{uuid.uuid4().hex[:8]}"
    replicas = [Replica(control_plane, mesh, lease, name) for name in ("a", "b")]
    try:
        for replica in replicas:
            replica.elector.start()
        leader = await eventually(lambda: next((r for r in replicas if r.elector.is_leader), None))
        standby = next(r for r in replicas if r is not leader)
        await eventually(lambda: set(GPU_NODES) <= set(leader.operator.synced_nodes()))
        namespace.create_pod("first", {"nvidia.com/gpu": "1"})
        await eventually(lambda: _granted(namespace, "first"))
        # Only the leader acts: the standby's controllers never started.
        assert leader.operator.running and leader.operator.bound == 1
        assert not standby.elector.is_leader and not standby.operator.running
        assert standby.operator.bound == 0 and standby.operator.synced_nodes() == {}
        held = kube.get(f"/apis/coordination.k8s.io/v1/namespaces/default/leases/{lease}") or {}
        assert held["spec"]["holderIdentity"] == leader.identity

        # The leader dies without a word; once its Lease lapses the standby leads and works.
        await call(leader.crash)
        assert not leader.operator.running
        await eventually(lambda: standby.elector.is_leader, timeout_s=15)
        await eventually(lambda: set(GPU_NODES) <= set(standby.operator.synced_nodes()))
        namespace.create_pod("second", {"nvidia.com/gpu": "1"})
        await eventually(lambda: _granted(namespace, "second"))
        assert standby.operator.bound == 1 and leader.operator.bound == 1
        held = kube.get(f"/apis/coordination.k8s.io/v1/namespaces/default/leases/{lease}") or {}
        assert held["spec"]["holderIdentity"] == standby.identity and held["spec"]["leaseTransitions"] >= 1
    finally:
        for replica in replicas:
            await call(replica.close)


async def test_a_leader_that_stops_cleanly_hands_over_at_once(
    control_plane: ControlPlane, kube: Kube, mesh: Mesh
) -> None:
    lease = f"op-{uuid.uuid4().hex[:8]}"
    first = Replica(control_plane, mesh, lease, "a")
    second = Replica(control_plane, mesh, lease, "b")
    # No controllers here: only who holds the Lease matters.
    for replica in (first, second):
        replica.elector._on_started = replica.elector._on_stopped = lambda: None
    try:
        first.elector.start()
        await eventually(lambda: first.elector.is_leader)
        second.elector.start()
        await asyncio.sleep(1.0)
        assert not second.elector.is_leader
        await call(first.elector.stop, True)
        # Released: no waiting out the 3 s lease.
        await eventually(lambda: second.elector.is_leader, timeout_s=2.0)
    finally:
        await call(second.elector.stop, True)
        first.operator.sb.close()
        second.operator.sb.close()


def _served_serial(port: int) -> int:
    pem = ssl.get_server_certificate(("127.0.0.1", port))
    return x509.load_pem_x509_certificate(pem.encode()).serial_number


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


@pytest.fixture
def rotation_namespace(kube: Kube) -> Iterator[Namespace]:
    """A namespace that only the rotating webhook below serves (by label)."""
    from tests.k8s.conftest import cleanup_namespace, make_namespace

    ns = make_namespace(kube, {"slicebroker-test/rotation": "yes", mapping.LABEL_PROJECT: "uni-a-llm"})
    yield ns
    cleanup_namespace(ns)


async def test_webhook_certificate_and_ca_are_renewed_before_expiry(
    kube: Kube, webhook: str, rotation_namespace: Namespace, tmp_path: Path
) -> None:
    name = f"rotating-{uuid.uuid4().hex[:8]}"
    certificates = WebhookCertificates(
        kube,
        "default",
        name,
        name,
        ["127.0.0.1"],
        ca_validity=timedelta(seconds=12),
        cert_validity=timedelta(seconds=6),
        renew_before=timedelta(seconds=3),
    )
    first = await call(certificates.ensure)
    cert_file, key_file = first.write(tmp_path)
    server = WebhookServer("127.0.0.1:0", str(cert_file), str(key_file)).start()
    # What the chart installs: the configuration without a caBundle, which the operator fills in.
    config = webhook_configuration(name, b"", url=f"https://127.0.0.1:{server.port}/mutate-pods")
    config["webhooks"][0]["clientConfig"].pop("caBundle")
    config["webhooks"][0]["namespaceSelector"] = {"matchLabels": {"slicebroker-test/rotation": "yes"}}
    kube.request("POST", ADMISSION, body=config)
    seen: list[ServingCert] = []

    def reload(cert: ServingCert) -> None:
        seen.append(cert)
        server.reload(*(str(f) for f in cert.write(tmp_path)))

    keeper = CertificateKeeper(certificates, lambda: True, reload, check_s=0.3)
    try:
        await call(keeper.check)
        current = kube.get(f"{ADMISSION}/{name}") or {}
        bundle = current["webhooks"][0]["clientConfig"]["caBundle"]
        assert bundle and x509.load_pem_x509_certificates(first.bundle_pem)
        keeper.start()

        # Admission keeps working (failurePolicy Fail: a TLS failure refuses the pod) across a
        # serving-certificate renewal and a CA renewal.
        serials = {await call(_served_serial, server.port)}
        cas = {x509.load_pem_x509_certificates(first.bundle_pem)[0].serial_number}
        created = 0
        for _ in range(80):
            rotation_namespace.create_pod(f"p{created}", {"nvidia.com/gpu": "1"})
            created += 1
            serials.add(await call(_served_serial, server.port))
            if keeper.current is not None:
                cas.add(x509.load_pem_x509_certificates(keeper.current.bundle_pem)[0].serial_number)
            if len(serials) >= 3 and len(cas) >= 2:
                break
            await asyncio.sleep(0.25)
        assert len(serials) >= 3, "the serving certificate was renewed more than once"
        assert len(cas) >= 2, "the CA was renewed"
        pods, _ = kube.list_all(f"/api/v1/namespaces/{rotation_namespace.name}/pods")
        assert len(pods) == created
        assert all(mapping.GATE in [g["name"] for g in p["spec"]["schedulingGates"]] for p in pods)

        # What is served is what the Secret holds, and the API server trusts the Secret's bundle.
        stored = await call(certificates.load)
        assert stored is not None
        await eventually(lambda: _served_serial(server.port) == (certificates.load() or stored).serial)
        config_now = kube.get(f"{ADMISSION}/{name}") or {}
        trusted = base64.b64decode(config_now["webhooks"][0]["clientConfig"]["caBundle"])
        assert trusted == (certificates.load() or stored).bundle_pem
        # Every certificate served was signed by a CA of the bundle served with it and ends no
        # later than that CA.
        for cert in seen:
            leaf = x509.load_pem_x509_certificate(cert.cert_pem)
            issuers = [ca for ca in x509.load_pem_x509_certificates(cert.bundle_pem) if ca.subject == leaf.issuer]
            assert any(_signed_by(leaf, ca) and leaf.not_valid_after_utc <= ca.not_valid_after_utc for ca in issuers)
    finally:
        keeper.stop()
        with contextlib.suppress(Exception):
            kube.request("DELETE", f"{ADMISSION}/{name}")
        with contextlib.suppress(Exception):
            kube.request("DELETE", f"/api/v1/namespaces/default/secrets/{name}")
        server.stop()


async def test_operator_process_wiring_serves_its_own_certificate(kube: Kube, tmp_path: Path) -> None:
    """What `slicebroker-operator` does at start with the chart's settings: a standby waits for the
    leader's certificate, the leader makes it, both serve it."""
    from slicebroker.operator.main import start_webhook
    from slicebroker.operator.settings import OperatorSettings

    name = f"wiring-{uuid.uuid4().hex[:8]}"
    config = webhook_configuration(name, b"", url="https://127.0.0.1:1/mutate-pods")
    config["webhooks"][0]["clientConfig"].pop("caBundle")
    config["webhooks"][0]["namespaceSelector"] = {"matchLabels": {"slicebroker-test/never": "yes"}}
    kube.request("POST", ADMISSION, body=config)
    settings = OperatorSettings(
        namespace="default",
        webhook_listen="127.0.0.1:0",
        webhook_secret=name,
        webhook_configuration=name,
        webhook_hosts=("127.0.0.1",),
        webhook_cert_check_s=0.2,
        lease_duration_s=1.0,
    )
    started: list[Any] = []
    try:
        standby = asyncio.create_task(
            call(
                start_webhook,
                settings.model_copy(update={"webhook_cert_dir": str(tmp_path / "b")}),
                kube,
                "default",
                lambda: False,
            )
        )
        await asyncio.sleep(0.5)
        assert not standby.done(), "a standby serves nothing before a certificate exists"
        leader = await call(
            start_webhook,
            settings.model_copy(update={"webhook_cert_dir": str(tmp_path / "a")}),
            kube,
            "default",
            lambda: True,
        )
        started.append(leader)
        started.append(await standby)
        stored = WebhookCertificates(kube, "default", name, name, ["127.0.0.1"]).load()
        assert stored is not None
        for server, _ in started:
            assert await call(_served_serial, server.port) == stored.serial
        trusted = (kube.get(f"{ADMISSION}/{name}") or {})["webhooks"][0]["clientConfig"]["caBundle"]
        assert base64.b64decode(trusted) == stored.bundle_pem
    finally:
        for server, keeper in started:
            keeper.stop()
            server.stop()
        with contextlib.suppress(Exception):
            kube.request("DELETE", f"{ADMISSION}/{name}")
        with contextlib.suppress(Exception):
            kube.request("DELETE", f"/api/v1/namespaces/default/secrets/{name}")
