"""Settings common to every service. Each service subclasses `ServiceSettings` once, with its own
environment prefix (e.g. SLICEBROKER_BROKER_), and builds it once in its composition root."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from slicebroker.runtime.tls import TlsFiles


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SLICEBROKER_", extra="ignore", frozen=True)

    listen: str = Field("127.0.0.1:0", description="host:port the gRPC server binds; port 0 picks a free one.")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis this service keeps its state in.")
    key_prefix: str = Field(
        "sb",
        description="Prefix of every Redis key this service writes; services sharing a Redis differ here.",
    )
    log_level: str = Field("info", description="debug, info, warning or error.")
    log_json: bool = Field(True, description="JSON lines (for collectors) instead of readable text.")
    metrics_port: int = Field(0, description="Port of the Prometheus /metrics endpoint; 0 disables it.")
    shutdown_grace_s: float = Field(5.0, description="Seconds in-flight calls get to finish on SIGTERM.")
    tls_ca_file: Path | None = Field(None, description="PEM CA that signs every peer of the mesh (mTLS).")
    tls_cert_file: Path | None = Field(None, description="PEM certificate this service serves and calls with.")
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file.")
    allow_plaintext: bool = Field(
        False,
        description="Serve and call without TLS when no certificate is configured. Off by default: "
        "plaintext must be asked for (local development, tests).",
    )
    auth_tokens_file: Path | None = Field(
        None,
        description="YAML token file (see slicebroker.runtime.auth): hashed tokens by id, with role, "
        "institution, projects, expiry and revocation; plaintext {token: {name, role, institution}} "
        "entries are still read. Re-read when it changes. Unset: calls are not authenticated "
        "(local development only).",
    )
    rate_limit_per_s: float = Field(
        200.0,
        description="Calls a second each tenant principal may make to this replica on average (token "
        "bucket); 0 disables. Facility admins and the mesh's service identities are not limited.",
    )
    rate_limit_burst: float = Field(400.0, description="Calls a principal may make at once above its rate.")
    admission_max_in_flight: int = Field(
        64,
        description="Tenant calls this replica works on at once; the rest wait (round robin over "
        "principals). 0 disables admission control. The mesh's own calls are never held back.",
    )
    admission_max_queue: int = Field(
        2048, description="Tenant calls that may wait for a slot; one more is refused at once (OVERLOADED)."
    )
    admission_max_wait_s: float = Field(
        1.0,
        description="Longest a tenant call waits for a slot (less if its deadline is nearer) before it "
        "is refused with RESOURCE_EXHAUSTED / OVERLOADED and a retry hint.",
    )
    max_string_chars: int = Field(
        4096, description="Longest string accepted in any request field (whole documents have their own bound)."
    )
    max_batch_items: int = Field(10_000, description="Most items in any repeated request field (batches, lists).")
    max_page_size: int = Field(1000, description="Largest page_size a list call accepts.")
    audit_max_entries: int = Field(
        1_000_000,
        description="Entries the audit stream keeps (oldest trimmed, approximately); 0 keeps all.",
    )
    audit_flush_interval_s: float = Field(
        0.02, description="Audit entries are written in batches this often (a SIGKILL loses at most one batch)."
    )

    def tls(self) -> TlsFiles | None:
        """The mTLS files, or None for plaintext; refuses a half-configured or unconsented setup."""
        files = (self.tls_ca_file, self.tls_cert_file, self.tls_key_file)
        if all(files):
            return TlsFiles(*files)  # type: ignore[arg-type]
        if any(files):
            raise ValueError("set all three of tls_ca_file, tls_cert_file and tls_key_file, or none")
        if not self.allow_plaintext:
            raise ValueError(
                "no TLS certificate configured: set the TLS_CA_FILE, TLS_CERT_FILE and TLS_KEY_FILE settings, "
                "or ALLOW_PLAINTEXT=true to run without TLS"
            )
        return None
