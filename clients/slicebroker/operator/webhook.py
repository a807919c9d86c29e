"""The mutating admission webhook: gates every new pod that asks for accelerators.

A small HTTPS server (stdlib `http.server` in a thread: one short JSON exchange per pod creation)
answering AdmissionReview v1 with a JSON patch that adds the `slicebroker.io/grant` scheduling
gate and the release finalizer. It only reads the pod; whether the namespace is mapped, the SKU
known and quota left is the controller's business, reported as pod events, so that a pod is never
refused at creation for a reason its owner can fix afterwards.
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from slicebroker.operator import mapping

log = logging.getLogger("slicebroker.operator.webhook")

PATH = "/mutate-pods"
WEBHOOK_NAME = "pods.slicebroker.io"


def review_response(review: dict[str, Any], excluded: tuple[str, ...] = ()) -> dict[str, Any]:
    """The AdmissionReview answer for one request: allowed, with a patch when the pod is ours."""
    request = review.get("request") or {}
    response: dict[str, Any] = {"uid": request.get("uid", ""), "allowed": True}
    pod = request.get("object") or {}
    namespace = request.get("namespace") or (pod.get("metadata") or {}).get("namespace", "")
    if request.get("operation", "CREATE") == "CREATE" and namespace not in excluded and mapping.wants_accelerators(pod):
        patch = mapping.gate_patch(pod)
        if patch:
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


class _Handler(BaseHTTPRequestHandler):
    server: WebhookServer

    def do_POST(self) -> None:
        if self.path.split("?")[0] != PATH:
            self.send_error(404)
            return
        length = int(self.headers.get("Content-Length", "0"))
        try:
            review = json.loads(self.rfile.read(length))
            body = json.dumps(review_response(review, self.server.excluded)).encode()
        except (ValueError, AttributeError) as err:
            self.send_error(400, str(err))
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # health probe
        body = b"ok"
        self.send_response(200 if self.path in ("/healthz", "/readyz") else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, listen: str, cert_file: str, key_file: str, excluded: tuple[str, ...] = ()) -> None:
        host, _, port = listen.rpartition(":")
        super().__init__((host or "0.0.0.0", int(port)), _Handler)
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert_file, key_file)
        self.socket = self._context.wrap_socket(self.socket, server_side=True)
        self.excluded = excluded
        self._thread: threading.Thread | None = None

    def reload(self, cert_file: str, key_file: str) -> None:
        """Serves a renewed certificate from the next connection on (the listening socket's
        context hands its certificate to every new handshake; open connections keep theirs)."""
        self._context.load_cert_chain(cert_file, key_file)
        log.info("webhook serving certificate reloaded from %s", cert_file)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> WebhookServer:
        self._thread = threading.Thread(target=self.serve_forever, name="slicebroker-webhook", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def webhook_configuration(
    name: str,
    ca_pem: bytes,
    *,
    url: str = "",
    service: dict[str, Any] | None = None,
    excluded: tuple[str, ...] = ("kube-system",),
    failure_policy: str = "Fail",
) -> dict[str, Any]:
    """The MutatingWebhookConfiguration that sends pod creations to the webhook (by URL, for a
    webhook outside the cluster such as the tests', or by Service, as the chart does)."""
    client_config: dict[str, Any] = {"caBundle": base64.b64encode(ca_pem).decode()}
    if url:
        client_config["url"] = url
    else:
        client_config["service"] = {**(service or {}), "path": PATH}
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": WEBHOOK_NAME,
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": failure_policy,
                "reinvocationPolicy": "IfNeeded",
                "timeoutSeconds": 5,
                "clientConfig": client_config,
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["pods"],
                        "scope": "Namespaced",
                    }
                ],
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": list(excluded)}
                    ]
                },
            }
        ],
    }
