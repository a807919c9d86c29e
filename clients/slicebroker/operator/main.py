"""`slicebroker-operator`: runs the controller (and, with a webhook address, the admission webhook).

Reads SLICEBROKER_OPERATOR_* for itself and the SDK's SLICEBROKER_* variables (service addresses,
token, TLS files) for the mesh. Installs the SliceClaim CRD when asked (`--install-crds`; the chart
ships it instead)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from slicebroker.client import Client
from slicebroker.operator.certs import (
    CertificateKeeper,
    CertificateSource,
    FileCertificates,
    ServingCert,
    WebhookCertificates,
)
from slicebroker.operator.controller import Operator
from slicebroker.operator.kube import Kube, KubeError, load_api_client
from slicebroker.operator.leader import LeaderElector
from slicebroker.operator.settings import OperatorSettings
from slicebroker.operator.webhook import WebhookServer

log = logging.getLogger("slicebroker.operator")
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def crd_manifest() -> dict[str, Any]:
    text = resources.files("slicebroker.operator").joinpath("sliceclaims.crd.yaml").read_text(encoding="utf-8")
    manifest: dict[str, Any] = yaml.safe_load(text)
    return manifest


def install_crds(kube: Kube) -> None:
    """Creates or updates the SliceClaim CRD and waits until the API serves it."""
    crd = crd_manifest()
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    existing = kube.get(f"{path}/{crd['metadata']['name']}")
    if existing is None:
        try:
            kube.request("POST", path, body=crd)
        except KubeError as err:
            if err.status != 409:
                raise
    else:
        crd["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
        kube.request("PUT", f"{path}/{crd['metadata']['name']}", body=crd)
    for _ in range(100):
        current = kube.get(f"{path}/{crd['metadata']['name']}") or {}
        conditions = (current.get("status") or {}).get("conditions") or ()
        if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
            return
        threading.Event().wait(0.1)
    raise RuntimeError("the SliceClaim CRD was not established within 10 s")


def own_namespace(settings: OperatorSettings) -> str:
    if settings.namespace:
        return settings.namespace
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip() or "default"
    except OSError:
        return "default"


def start_webhook(
    settings: OperatorSettings, kube: Kube, namespace: str, is_leader: Callable[[], bool]
) -> tuple[WebhookServer, CertificateKeeper]:
    """The admission webhook and the keeper of its certificate: the operator's own (renewed by the
    leader in webhook_secret) or files someone else renews (reloaded when they change)."""
    server: list[WebhookServer] = []
    source: CertificateSource
    if settings.webhook_secret:
        source = WebhookCertificates(
            kube,
            namespace,
            settings.webhook_secret,
            settings.webhook_configuration,
            settings.webhook_hosts,
            ca_validity=timedelta(seconds=settings.webhook_ca_validity_s),
            cert_validity=timedelta(seconds=settings.webhook_cert_validity_s),
            renew_before=timedelta(seconds=settings.webhook_cert_renew_before_s),
        )
        directory = Path(settings.webhook_cert_dir)

        def files(cert: ServingCert) -> tuple[str, str]:
            cert_file, key_file = cert.write(directory)
            return str(cert_file), str(key_file)
    else:
        source = FileCertificates(settings.webhook_cert_file, settings.webhook_key_file)

        def files(cert: ServingCert) -> tuple[str, str]:
            return settings.webhook_cert_file, settings.webhook_key_file

    def on_change(cert: ServingCert) -> None:
        if server:
            server[0].reload(*files(cert))

    keeper = CertificateKeeper(source, is_leader, on_change, settings.webhook_cert_check_s)
    # A fresh install has no certificate until the leader makes one.
    first = keeper.wait_for_certificate(timeout_s=max(60.0, 4 * settings.lease_duration_s))
    if first is None:
        raise RuntimeError("no webhook certificate: none in the Secret and no leader made one")
    server.append(WebhookServer(settings.webhook_listen, *files(first), settings.excluded_namespaces).start())
    return server[0], keeper.start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="slicebroker-operator", description=__doc__)
    parser.add_argument("--install-crds", action="store_true", help="create or update the SliceClaim CRD first")
    args = parser.parse_args(argv)
    settings = OperatorSettings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    kube = Kube(load_api_client(settings.kubeconfig, pool_size=settings.workers + 8))
    if args.install_crds:
        install_crds(kube)
    namespace = own_namespace(settings)
    sb = Client.from_env()
    operator = Operator(settings, kube, sb)
    done = threading.Event()
    lost = threading.Event()
    elector: LeaderElector | None = None
    if settings.leader_election:
        identity = f"{os.environ.get('HOSTNAME', 'operator')}_{uuid.uuid4().hex[:8]}"

        def stopped_leading() -> None:
            # The controllers' state is the leader's; a replica that lost the Lease exits and comes
            # back as a standby (the Deployment restarts it).
            lost.set()
            done.set()

        elector = LeaderElector(
            kube,
            namespace,
            settings.lease_name,
            identity,
            lease_s=settings.lease_duration_s,
            renew_deadline_s=settings.renew_deadline_s,
            retry_s=settings.retry_period_s,
            on_started_leading=operator.start,
            on_stopped_leading=stopped_leading,
        ).start()
        is_leader: Callable[[], bool] = lambda: elector is not None and elector.is_leader  # noqa: E731
    else:
        operator.start()
        is_leader = lambda: True  # noqa: E731
    webhook: tuple[WebhookServer, CertificateKeeper] | None = None
    if settings.webhook_listen:
        webhook = start_webhook(settings, kube, namespace, is_leader)
        log.info("admission webhook on :%d", webhook[0].port)
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    if elector is not None:
        elector.stop(release=True)  # a standby takes over now, not after the Lease expires
    operator.stop()
    if webhook is not None:
        webhook[1].stop()
        webhook[0].stop()
    sb.close()
    kube.close()
    return 1 if lost.is_set() else 0


if __name__ == "__main__":
    sys.exit(main())
