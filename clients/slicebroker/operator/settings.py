"""The operator's settings, read from SLICEBROKER_OPERATOR_* (the mesh addresses, token and TLS files
come from the SDK's own SLICEBROKER_* variables)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SLICEBROKER_OPERATOR_", extra="ignore", frozen=True)

    kubeconfig: str = Field("", description="Kubeconfig file; empty: the in-cluster service account.")
    workers: int = Field(4, description="Threads reconciling pods and claims concurrently.")
    default_lease_s: float = Field(3600.0, description="Lease of a grant when the pod names none (seconds).")
    renew_fraction: float = Field(
        0.33, description="Renew a grant when this fraction of its lease has passed since the last renewal."
    )
    renew_check_s: float = Field(5.0, description="How often the renewer looks for leases due (seconds).")
    retry_s: float = Field(5.0, description="Seconds before a refused or failed grant request is tried again.")
    resync_s: float = Field(30.0, description="Seconds between full re-lists of pods, claims and nodes.")
    watch_timeout_s: int = Field(60, description="Server-side timeout of one watch request (seconds).")
    node_sync: bool = Field(True, description="Register Nodes with accelerator capacity in inventory.")
    default_site: str = Field("k8s", description="Inventory site of Nodes without a slicebroker.io/site label.")
    default_rack: str = Field("k8s", description="Inventory rack of Nodes without a slicebroker.io/rack label.")
    webhook_listen: str = Field(
        "", description="host:port of the admission webhook's HTTPS server; empty: no webhook (gate by manifest)."
    )
    webhook_cert_file: str = Field("", description="PEM serving certificate of the webhook.")
    webhook_key_file: str = Field("", description="PEM private key of webhook_cert_file.")
    excluded_namespaces: tuple[str, ...] = Field(
        ("kube-system", "kube-public", "kube-node-lease"),
        description="Namespaces whose pods are never gated or reconciled.",
    )
    log_level: str = Field("info", description="debug, info, warning or error.")
