"""Settings of the accounting service (environment prefix SLICEBROKER_ACCOUNTING_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from slicebroker.runtime.settings import ServiceSettings


class AccountingSettings(ServiceSettings):
    """Accounting's settings.

    Durability is Redis's: the ledger must survive a crash, so the Redis behind `redis_url` must run
    with AOF on (`appendonly yes`); `appendfsync always` makes every acknowledged batch durable,
    `everysec` may lose up to a second of acknowledged events (the relay does not re-send them).
    The service does not call WAIT/WAITAOF itself: the fsync policy is the deployment's decision.
    """

    model_config = SettingsConfigDict(env_prefix="SLICEBROKER_ACCOUNTING_", extra="ignore", frozen=True)

    key_prefix: str = Field(
        "sb:accounting",
        description="Prefix of every Redis key accounting writes (inside a hash tag, so all share one slot).",
    )
    max_ingest_events: int = Field(
        10_000,
        ge=1,
        description="Most events one IngestEvents call may carry; the relay sends batches of a few hundred.",
    )
    currency: str = Field(
        "KRW",
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 currency of price books that name none, and of statements and exports.",
    )
    provider_name: str = Field(
        "slicebroker",
        description="Provider, publisher and invoice issuer named in FOCUS exports (e.g. the centre's name).",
    )
    quota_addr: str = Field(
        "",
        description="host:port of the quota service, to push budget burn (normalised accelerator-hours of "
        "closed grants) to; empty: burn is not pushed.",
    )
    service_token: str = Field("", description="Bearer token accounting presents to quota.")
    budget_feed_interval_s: float = Field(
        5.0, gt=0, description="Pause of the budget feed when it has caught up with the ledger."
    )
