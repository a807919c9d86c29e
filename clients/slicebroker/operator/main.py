"""`slicebroker-operator`: runs the controller (and, with a webhook address, the admission webhook).

Reads SLICEBROKER_OPERATOR_* for itself and the SDK's SLICEBROKER_* variables (service addresses,
token, TLS files) for the mesh. Installs the SliceClaim CRD when asked (`--install-crds`; the chart
ships it instead)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from importlib import resources
from typing import Any

import yaml

from slicebroker.client import Client
from slicebroker.operator.controller import Operator
from slicebroker.operator.kube import Kube, KubeError, load_api_client
from slicebroker.operator.settings import OperatorSettings
from slicebroker.operator.webhook import WebhookServer

log = logging.getLogger("slicebroker.operator")


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="slicebroker-operator", description=__doc__)
    parser.add_argument("--install-crds", action="store_true", help="create or update the SliceClaim CRD first")
    args = parser.parse_args(argv)
    settings = OperatorSettings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    kube = Kube(load_api_client(settings.kubeconfig, pool_size=settings.workers + 8))
    if args.install_crds:
        install_crds(kube)
    webhook = None
    if settings.webhook_listen:
        webhook = WebhookServer(
            settings.webhook_listen,
            settings.webhook_cert_file,
            settings.webhook_key_file,
            settings.excluded_namespaces,
        ).start()
        log.info("admission webhook on :%d", webhook.port)
    sb = Client.from_env()
    operator = Operator(settings, kube, sb)
    operator.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    operator.stop()
    if webhook is not None:
        webhook.stop()
    sb.close()
    kube.close()


if __name__ == "__main__":
    main()
