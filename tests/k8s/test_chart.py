"""The Helm chart: lints and renders with every CI value set, the API server accepts every rendered
object (server-side dry run: real schemas, CRDs and admission), and a real install succeeds."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

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
    tool("kubectl", "--kubeconfig", kubeconfig, "apply", "--server-side", "-f", "-", stdin=SERVICE_MONITOR_CRD)
    tool(
        "kubectl",
        "--kubeconfig",
        kubeconfig,
        "wait",
        "--for=condition=Established",
        "crd/servicemonitors.monitoring.coreos.com",
    )
    rendered = tool("helm", "template", "sb", str(CHART), "-n", namespace, "-f", str(values), "--include-crds")
    out = tool(
        "kubectl", "--kubeconfig", kubeconfig, "apply", "-n", namespace, "--dry-run=server", "-f", "-", stdin=rendered
    )
    assert "deployment.apps/sb-slicebroker-broker created (server dry run)" in out
    if "plaintext" not in values.stem:
        assert "mutatingwebhookconfiguration.admissionregistration.k8s.io/sb-slicebroker-operator created" in out


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
    finally:
        tool("helm", "uninstall", release, "-n", namespace, "--kubeconfig", kubeconfig)
