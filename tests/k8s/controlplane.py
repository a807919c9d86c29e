"""A real Kubernetes control plane for tests: etcd + kube-apiserver on free loopback ports, the way
controller-runtime's envtest runs them (no kubelet, no scheduler; every API rule real).

The binaries come from scripts/k8s-test-bins.sh (a cache outside the repository); without them
the tests that need a control plane skip and say how to get them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BINS_SCRIPT = ROOT / "scripts" / "k8s-test-bins.sh"
REQUIRED = ("etcd", "kube-apiserver")


def bin_dir() -> Path:
    override = os.environ.get("SLICEBROKER_K8S_BIN_DIR")
    if override:
        return Path(override)
    out = subprocess.run(["bash", str(BINS_SCRIPT), "--dir"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def missing_reason() -> str | None:
    """Why the control plane cannot start here, or None when it can."""
    directory = bin_dir()
    missing = [name for name in REQUIRED if not os.access(directory / name, os.X_OK)]
    if missing:
        return (
            f"Kubernetes test binaries missing ({', '.join(missing)} not in {directory}): "
            "run `make k8s-bins` (scripts/k8s-test-bins.sh) to build them"
        )
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ControlPlane:
    workdir: Path
    bins: Path
    port: int = 0
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "pki" / "apiserver.crt"

    def start(self, timeout_s: float = 90.0) -> ControlPlane:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "pki").mkdir(exist_ok=True)
        etcd_port, peer_port, self.port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self._spawn(
            "etcd",
            [
                str(self.bins / "etcd"),
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        sa_key = self.workdir / "sa.key"
        subprocess.run(["openssl", "genrsa", "-out", str(sa_key), "2048"], check=True, capture_output=True)
        (self.workdir / "tokens.csv").write_text(f'{self.token},admin,admin,"system:masters"\n')
        self._spawn(
            "kube-apiserver",
            [
                str(self.bins / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.port}",
                f"--cert-dir={self.workdir / 'pki'}",
                f"--token-auth-file={self.workdir / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={sa_key}",
                f"--service-account-signing-key-file={sa_key}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--disable-admission-plugins=ServiceAccount",
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--v=0",
            ],
        )
        self._wait_ready(timeout_s)
        self.kubeconfig.write_text(
            f"""apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {{server: "{self.url}", certificate-authority: "{self.ca_file}"}}
users:
- name: admin
  user: {{token: "{self.token}"}}
contexts:
- name: test
  context: {{cluster: test, user: admin, namespace: default}}
current-context: test
"""
        )
        return self

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir))

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}; see {self.workdir}/*.log")
            if self.ca_file.exists():
                try:
                    context = ssl.create_default_context(cafile=str(self.ca_file))
                    request = urllib.request.Request(
                        f"{self.url}/readyz", headers={"Authorization": f"Bearer {self.token}"}
                    )
                    with urllib.request.urlopen(request, context=context, timeout=2) as reply:
                        if reply.status == 200:
                            return
                except (OSError, ssl.SSLError) as err:
                    last = str(err)
            time.sleep(0.2)
        raise RuntimeError(f"kube-apiserver not ready after {timeout_s}s ({last}); see {self.workdir}")

    def stop(self) -> None:
        # Only the processes this fixture started, by their own handles.
        for proc in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.workdir / "etcd", ignore_errors=True)
