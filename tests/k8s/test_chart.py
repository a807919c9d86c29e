"""The Helm chart: lints and renders with every CI value set, the API server accepts every rendered
object (server-side dry run: real schemas, CRDs and admission), and a real install succeeds."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from slicebroker.operator.kube import Kube
from tests.k8s.controlplane import ControlPlane, bin_dir

CHART = Path(__file__).resolve().parents[2] / "helm" / "slicebroker"
VALUE_SETS = sorted((CHART / "ci").glob("*.yaml"))

# The one CRD the production value set needs that a bare cluster lacks (Prometheus Operator's),
# reduced to what a dry run checks: that the kind is served.
SERVICE_MONITOR_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: ServiceMonitor, plural: servicemonitors, singular: servicemonitor, listKind: ServiceMonitorList}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"""
# cert-manager's kinds, reduced the same way (the certManager value set renders an Issuer and a
# Certificate).
CERT_MANAGER_CRDS = "\n---\n".join(
    f"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: {plural}.cert-manager.io}}
spec:
  group: cert-manager.io
  scope: Namespaced
  names: {{kind: {kind}, plural: {plural}, singular: {plural[:-1]}, listKind: {kind}List}}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}
"""
    for kind, plural in (("Issuer", "issuers"), ("Certificate", "certificates"))
)


def tool(name: str, *args: str, stdin: str | None = None) -> str:
    binary = bin_dir() / name
    if not binary.exists():
        pytest.skip(f"{name} not in {bin_dir()}: run `make k8s-bins`")
    done = subprocess.run([str(binary), *args], input=stdin, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{name} {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda p: p.stem)
def test_chart_lints(values: Path) -> None:
    tool("helm", "lint", "--strict", str(CHART), "-f", str(values))


def test_chart_refuses_unknown_settings() -> None:
    binary = bin_dir() / "helm"
    if not binary.exists():
        pytest.skip(f"helm not in {bin_dir()}: run `make k8s-bins`")
    done = subprocess.run(
        [str(binary), "template", "sb", str(CHART), "--set", "services.quota.settings.no_such_field=1"],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "no_such_field" in done.stderr


@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda p: p.stem)
def test_rendered_chart_is_accepted_by_the_api_server(values: Path, control_plane: ControlPlane, kube: Kube) -> None:
    namespace = f"chart-{uuid.uuid4().hex[:8]}"
    kubeconfig = str(control_plane.kubeconfig)
    tool("kubectl", "--kubeconfig", kubeconfig, "create", "namespace", namespace)
    for crds in (SERVICE_MONITOR_CRD, CERT_MANAGER_CRDS):
        tool("kubectl", "--kubeconfig", kubeconfig, "apply", "--server-side", "-f", "-", stdin=crds)
    tool(
        "kubectl",
        "--kubeconfig",
        kubeconfig,
        "wait",
        "--for=condition=Established",
        "crd/servicemonitors.monitoring.coreos.com",
        "crd/issuers.cert-manager.io",
        "crd/certificates.cert-manager.io",
    )
    rendered = tool("helm", "template", "sb", str(CHART), "-n", namespace, "-f", str(values), "--include-crds")
    out = tool(
        "kubectl", "--kubeconfig", kubeconfig, "apply", "-n", namespace, "--dry-run=server", "-f", "-", stdin=rendered
    )
    assert "deployment.apps/sb-slicebroker-broker created (server dry run)" in out
    if "plaintext" not in values.stem:
        assert "mutatingwebhookconfiguration.admissionregistration.k8s.io/sb-slicebroker-operator created" in out
    if "certmanager" in values.stem:
        assert "certificate.cert-manager.io/sb-slicebroker-operator-webhook created" in out
        assert "secret/sb-slicebroker-operator-webhook-tls" not in out


def test_operator_is_highly_available_with_its_own_webhook_certificates() -> None:
    docs = [d for d in yaml.safe_load_all(tool("helm", "template", "sb", str(CHART), "-n", "sb")) if d]
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    deployment = by_kind[("Deployment", "sb-slicebroker-operator")]
    assert deployment["spec"]["replicas"] == 2
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SLICEBROKER_OPERATOR_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["SLICEBROKER_OPERATOR_WEBHOOK_SECRET"]["value"] == "sb-slicebroker-operator-webhook-tls"
    assert env["SLICEBROKER_OPERATOR_WEBHOOK_CONFIGURATION"]["value"] == "sb-slicebroker-operator"
    assert "sb-slicebroker-operator.sb.svc" in env["SLICEBROKER_OPERATOR_WEBHOOK_HOSTS"]["value"]
    # The operator makes and renews the certificate: the chart renders neither it nor a caBundle.
    assert ("Secret", "sb-slicebroker-operator-webhook-tls") not in by_kind
    hook = by_kind[("MutatingWebhookConfiguration", "sb-slicebroker-operator")]["webhooks"][0]
    assert "caBundle" not in hook["clientConfig"]


def test_chart_installs(control_plane: ControlPlane, kube: Kube) -> None:
    namespace = f"chart-{uuid.uuid4().hex[:8]}"
    release = f"r{uuid.uuid4().hex[:6]}"
    kubeconfig = str(control_plane.kubeconfig)
    # Ignore: this cluster has no kubelet, so the webhook's Service never has endpoints; the
    # other tests' pods must not depend on it while the release exists.
    tool(
        "helm", "install", release, str(CHART), "-n", namespace, "--create-namespace", "--kubeconfig", kubeconfig,
        "--set", "operator.webhook.failurePolicy=Ignore",
    )  # fmt: skip
    try:
        deployments = tool("kubectl", "--kubeconfig", kubeconfig, "get", "deployments", "-n", namespace, "-o", "name")
        assert sorted(deployments.split()) == sorted(
            f"deployment.apps/{release}-slicebroker-{c}"
            for c in ("accounting", "broker", "inventory", "operator", "quota")
        )
        claims = tool("kubectl", "--kubeconfig", kubeconfig, "get", "crd", "sliceclaims.slicebroker.io", "-o", "name")
        assert claims.strip() == "customresourcedefinition.apiextensions.k8s.io/sliceclaims.slicebroker.io"
        # The operator's service account may do what leader election and certificate renewal
        # need, on its own objects only.
        account = f"system:serviceaccount:{namespace}:{release}-slicebroker-operator"
        own = f"{release}-slicebroker-operator"

        def can(*args: str) -> bool:
            binary = bin_dir() / "kubectl"
            argv = [str(binary), "--kubeconfig", kubeconfig, "auth", "can-i", "--as", account, *args]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            return done.stdout.strip() == "yes"

        assert can("create", "leases.coordination.k8s.io", "-n", namespace)
        assert can("update", f"leases.coordination.k8s.io/{own}", "-n", namespace)
        assert not can("update", "leases.coordination.k8s.io/someone-else", "-n", namespace)
        assert can("update", f"secrets/{own}-webhook-tls", "-n", namespace)
        assert not can("get", "secrets/other", "-n", namespace)
        assert not can("create", "leases.coordination.k8s.io", "-n", "default")
        assert can("update", f"mutatingwebhookconfigurations.admissionregistration.k8s.io/{own}")
        assert not can("update", "mutatingwebhookconfigurations.admissionregistration.k8s.io/other")
        assert can("create", "pods", "--subresource=eviction", "-n", "default")
    finally:
        tool("helm", "uninstall", release, "-n", namespace, "--kubeconfig", kubeconfig)


def test_each_service_is_given_the_peers_it_calls() -> None:
    docs = [d for d in yaml.safe_load_all(tool("helm", "template", "sb", str(CHART), "-n", "sb")) if d]
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}

    def env(service: str) -> set[str]:
        container = deployments[f"sb-slicebroker-{service}"]["spec"]["template"]["spec"]["containers"][0]
        return {e["name"] for e in container["env"]}

    assert {"SLICEBROKER_BROKER_INVENTORY_ADDR", "SLICEBROKER_BROKER_QUOTA_ADDR"} <= env("broker")
    assert "SLICEBROKER_BROKER_ACCOUNTING_ADDR" in env("broker")
    assert "SLICEBROKER_ACCOUNTING_QUOTA_ADDR" in env("accounting")
    # Quota checks guarantees against the capacity inventory reports.
    assert "SLICEBROKER_QUOTA_INVENTORY_ADDR" in env("quota")
