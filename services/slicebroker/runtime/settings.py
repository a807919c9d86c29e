"""Settings common to every service. Each service subclasses `ServiceSettings` once, with its own
environment prefix (e.g. SLICEBROKER_BROKER_), and builds it once in its composition root."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    auth_tokens_file: Path | None = Field(
        None,
        description="YAML mapping bearer tokens to principals ({token: {name, role, institution}}). "
        "Unset: calls are not authenticated (local development only).",
    )
