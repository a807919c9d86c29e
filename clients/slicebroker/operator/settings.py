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
    watch_grants: bool = Field(
        True, description="Follow the broker's grant changes: preemption notices become pod events and evictions."
    )
    node_sync: bool = Field(True, description="Register Nodes with accelerator capacity in inventory.")
    default_site: str = Field("k8s", description="Inventory site of Nodes without a slicebroker.io/site label.")
    default_rack: str = Field("k8s", description="Inventory rack of Nodes without a slicebroker.io/rack label.")
    webhook_listen: str = Field(
        "", description="host:port of the admission webhook's HTTPS server; empty: no webhook (gate by manifest)."
    )
    webhook_cert_file: str = Field(
        "",
        description="PEM serving certificate of the webhook, when webhook_secret is empty (e.g. cert-manager's); "
        "reloaded when the file changes.",
    )
    webhook_key_file: str = Field("", description="PEM private key of webhook_cert_file.")
    webhook_secret: str = Field(
        "",
        description="Secret (in `namespace`) where the operator keeps its own webhook CA and serving certificate, "
        "renewed before expiry; empty: serve webhook_cert_file.",
    )
    webhook_configuration: str = Field(
        "", description="MutatingWebhookConfiguration whose caBundle the operator keeps equal to its CA bundle."
    )
    webhook_hosts: tuple[str, ...] = Field(
        (), description="DNS names (or IPs) of the webhook's serving certificate, e.g. the Service's names."
    )
    webhook_cert_dir: str = Field(
        "/tmp/slicebroker-webhook", description="Where the served certificate and key are written for TLS."
    )
    webhook_ca_validity_s: float = Field(10 * 365 * 86400.0, description="Validity of the webhook CA (seconds).")
    webhook_cert_validity_s: float = Field(
        90 * 86400.0, description="Validity of the webhook serving certificate (seconds)."
    )
    webhook_cert_renew_before_s: float = Field(
        30 * 86400.0, description="Renew the certificate or CA this long before it expires (seconds)."
    )
    webhook_cert_check_s: float = Field(
        60.0, description="How often certificates are checked for renewal and reloaded (seconds)."
    )
    namespace: str = Field(
        "", description="Namespace of the leader Lease and the webhook Secret; empty: the pod's own namespace."
    )
    leader_election: bool = Field(
        True, description="Run the controllers only while holding the Lease (replicas > 1: one leads, others stand by)."
    )
    lease_name: str = Field("slicebroker-operator", description="Name of the coordination.k8s.io Lease.")
    lease_duration_s: float = Field(
        15.0, description="A standby takes the Lease over after the leader has not renewed it this long (seconds)."
    )
    renew_deadline_s: float = Field(
        10.0, description="The leader stops leading when it could not renew the Lease this long (seconds)."
    )
    retry_period_s: float = Field(2.0, description="How often the Lease is renewed or tried (seconds).")
    excluded_namespaces: tuple[str, ...] = Field(
        ("kube-system", "kube-public", "kube-node-lease"),
        description="Namespaces whose pods are never gated or reconciled.",
    )
    log_level: str = Field("info", description="debug, info, warning or error.")
