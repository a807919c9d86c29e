"""Starts and stops Redis and the four services as child processes, each on its own port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from slicebroker.runtime.auth import append_entries, issue_token
from slicebroker.runtime.redis_server import RedisServer, free_port, port_is_free
from slicebroker.runtime.tls import TlsFiles, channel_credentials, make_local_pki

# Start order: the broker needs the other three. Port offsets from `base_port` are fixed so that
# the services' own defaults (e.g. the broker's INVENTORY_ADDR) point at `make run`'s mesh.
SERVICES = ("inventory", "quota", "accounting", "broker")
PORT_OFFSETS = {"inventory": 0, "quota": 1, "broker": 2, "accounting": 3}


@dataclass
class Mesh:
    """The mesh's processes. Ports are picked free unless `base_port` is given (then 4 in a row)."""

    run_dir: Path
    base_port: int = 0
    redis_url: str = ""
    log_json: bool = True
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)
    redis: RedisServer | None = None
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    admin_token: str = ""
    # The broker's service identity (its calls to the other services, and its relay).
    service_token: str = ""
    operator_token: str = ""
    # mTLS between every pair, with a local CA under run_dir/pki; False runs plaintext (explicitly).
    tls: bool = True
    pki: dict[str, TlsFiles] = field(default_factory=dict)

    @property
    def addresses(self) -> dict[str, str]:
        return {name: f"127.0.0.1:{port}" for name, port in self.ports.items()}

    def start(self) -> Mesh:
        self.run_dir = self.run_dir.resolve()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "logs").mkdir(exist_ok=True)
        if not self.redis_url:
            self.redis = RedisServer(data_dir=self.run_dir / "redis").start()
            self.redis_url = self.redis.url
        self._write_tokens()
        if self.tls:
            self.pki = make_local_pki(self.run_dir / "pki", ("mesh", "client"))
        for name in SERVICES:
            wanted = self.base_port + PORT_OFFSETS[name] if self.base_port else 0
            # A busy port (another program, or a lingering connection that took it as its ephemeral
            # source port) falls back to a free one; .run/env always has the real addresses.
            self.ports[name] = wanted if wanted and port_is_free(wanted) else free_port()
        for name in SERVICES:
            self.start_service(name)
        return self

    def _write_tokens(self) -> None:
        """tokens.yaml (what the services read) holds only salted hashes; the plaintext tokens the
        launcher hands to its clients live in secrets.yaml (0600), so restarts keep them."""
        path, secrets_path = self.run_dir / "tokens.yaml", self.run_dir / "secrets.yaml"
        known = yaml.safe_load(secrets_path.read_text()) or {} if secrets_path.exists() else {}
        self.admin_token = str(known.get("admin", ""))
        self.service_token = str(known.get("broker", ""))
        self.operator_token = str(known.get("operator", ""))
        if path.exists() and not self.admin_token:
            # A run directory from before hashed tokens: reuse its plaintext identities.
            for token, who in (yaml.safe_load(path.read_text()) or {}).items():
                if who.get("hash"):
                    continue
                if who.get("role") in ("admin", "facility-admin"):
                    self.admin_token = token
                if who.get("role") == "service":
                    self.service_token = token
        if self.admin_token and self.service_token and self.operator_token:
            return
        issued = {
            "admin": issue_token("facility-admin", "facility-admin"),
            # Service identities: the broker (its calls and its relay) and the Kubernetes operator.
            "broker": issue_token("broker", "service"),
            "operator": issue_token("operator", "service"),
        }
        self.admin_token = issued["admin"].token
        self.service_token = issued["broker"].token
        self.operator_token = issued["operator"].token
        path.unlink(missing_ok=True)
        append_entries(path, {t.token_id: t.entry for t in issued.values()})
        secrets_path.write_text(yaml.safe_dump({k: t.token for k, t in issued.items()}))
        secrets_path.chmod(0o600)

    def issue_token(self, name: str, role: str, institution: str = "", projects: tuple[str, ...] = ()) -> str:
        """Adds a hashed token to the running mesh's token file; the services accept it within a
        second (they re-read the file when it changes). Returns the plaintext token."""
        issued = issue_token(name, role, institution, projects)
        append_entries(self.run_dir / "tokens.yaml", {issued.token_id: issued.entry})
        return issued.token

    def revoke_token(self, token: str) -> None:
        token_id = token.removeprefix("sb_").partition(".")[0]
        path = self.run_dir / "tokens.yaml"
        entry = (yaml.safe_load(path.read_text()) or {})[token_id]
        append_entries(path, {token_id: {**entry, "revoked": True}})

    def env_for(self, name: str) -> dict[str, str]:
        prefix = f"SLICEBROKER_{name.upper()}_"
        env = {
            **os.environ,
            prefix + "LISTEN": f"127.0.0.1:{self.ports[name]}",
            prefix + "REDIS_URL": self.redis_url,
            prefix + "LOG_JSON": "true" if self.log_json else "false",
            prefix + "AUTH_TOKENS_FILE": str(self.run_dir / "tokens.yaml"),
        }
        if self.tls:
            mesh = self.pki["mesh"]
            env.update(
                {
                    prefix + "TLS_CA_FILE": str(mesh.ca),
                    prefix + "TLS_CERT_FILE": str(mesh.cert),
                    prefix + "TLS_KEY_FILE": str(mesh.key),
                }
            )
        else:
            env[prefix + "ALLOW_PLAINTEXT"] = "true"
        if name == "accounting":
            env.update({prefix + "QUOTA_ADDR": self.addresses["quota"], prefix + "SERVICE_TOKEN": self.service_token})
        if name == "quota":
            env.update(
                {prefix + "INVENTORY_ADDR": self.addresses["inventory"], prefix + "SERVICE_TOKEN": self.service_token}
            )
        if name == "broker":
            env.update(
                {
                    prefix + "INVENTORY_ADDR": self.addresses["inventory"],
                    prefix + "QUOTA_ADDR": self.addresses["quota"],
                    prefix + "ACCOUNTING_ADDR": self.addresses["accounting"],
                    prefix + "SERVICE_TOKEN": self.service_token,
                }
            )
        env.update(self.extra_env.get(name, {}))
        return env

    def start_service(self, name: str, env: dict[str, str] | None = None) -> None:
        log = (self.run_dir / "logs" / f"{name}.log").open("ab")
        code = f"from slicebroker.{name}.main import main; main()"
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-c", code], env={**self.env_for(name), **(env or {})}, stdout=log, stderr=log
        )

    def wait_serving(self, names: tuple[str, ...] = SERVICES, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        for name in names:
            while not self._serving(name):
                process = self.processes[name]
                if process.poll() is not None:
                    tail = (self.run_dir / "logs" / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} not serving after {timeout_s}s; see {self.run_dir}/logs/{name}.log")
                time.sleep(0.1)

    @property
    def client_tls(self) -> TlsFiles | None:
        """The certificate clients (slicectl, the SDK, tests) present to the mesh."""
        return self.pki.get("client")

    def channel(self, name: str) -> grpc.Channel:
        """A blocking channel to one service, with the client certificate when TLS is on."""
        tls = self.client_tls
        if tls is None:
            return grpc.insecure_channel(self.addresses[name])
        return grpc.secure_channel(self.addresses[name], channel_credentials(tls))

    def aio_channel(self, name: str) -> grpc.aio.Channel:
        tls = self.client_tls
        if tls is None:
            return grpc.aio.insecure_channel(self.addresses[name])
        return grpc.aio.secure_channel(self.addresses[name], channel_credentials(tls))

    @property
    def metadata(self) -> list[tuple[str, str]]:
        """Call metadata carrying the facility admin's token."""
        return [("authorization", f"Bearer {self.admin_token}")]

    def _serving(self, name: str) -> bool:
        with self.channel(name) as channel:
            try:
                response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
            except grpc.RpcError:
                return False
            return bool(response.status == health_pb2.HealthCheckResponse.SERVING)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        process = self.processes[name]
        if process.poll() is None:
            process.send_signal(sig)
        return process.wait(timeout=30)

    def stop(self) -> None:
        for name in reversed(SERVICES):
            process = self.processes.get(name)
            if process and process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.redis is not None:
            self.redis.stop()

    def env_file(self) -> str:
        lines = [f"export SLICEBROKER_{name.upper()}_ADDR={addr}" for name, addr in self.addresses.items()]
        lines.append(f"export SLICEBROKER_TOKEN={self.admin_token}")
        if self.client_tls is not None:
            lines.append(f"export SLICEBROKER_TLS_CA_FILE={self.client_tls.ca}")
            lines.append(f"export SLICEBROKER_TLS_CERT_FILE={self.client_tls.cert}")
            lines.append(f"export SLICEBROKER_TLS_KEY_FILE={self.client_tls.key}")
        lines.append(f"export SLICEBROKER_REDIS_URL={self.redis_url}")
        return "\n".join(lines) + "\n"
