"""Settings of the broker (environment prefix SLICEBROKER_BROKER_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from slicebroker.runtime.settings import ServiceSettings


class BrokerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SLICEBROKER_BROKER_", extra="ignore", frozen=True)

    key_prefix: str = Field("sb:broker", description="Prefix of the broker's Redis keys.")
    inventory_addr: str = Field("127.0.0.1:50051", description="host:port of the inventory service.")
    quota_addr: str = Field("127.0.0.1:50052", description="host:port of the quota service.")
    accounting_addr: str = Field("127.0.0.1:50054", description="host:port of the accounting service.")
    service_token: str = Field("", description="Bearer token the broker presents to the other services.")
    peer_timeout_s: float = Field(5.0, description="Deadline of each call to another service.")
    max_count: int = Field(4096, description="Most devices one request may ask for.")
    max_lease_s: int = Field(30 * 24 * 3600, description="Longest lease a request may ask for.")
    reservation_ttl_s: int = Field(60, description="Life of a quota reservation not yet committed.")
    claim_attempts: int = Field(4, description="Placements tried per request when claims conflict.")
    dispatch_interval_s: float = Field(
        1.0, description="Longest pause between queue passes when no release or inventory change wakes it."
    )
    reaper_interval_s: float = Field(0.5, description="How often expired leases are looked for.")
    relay_interval_s: float = Field(0.05, description="Pause of the outbox relay when it found nothing to send.")
    relay_batch: int = Field(500, description="Most events the relay sends to accounting per call.")
    reconcile_interval_s: float = Field(10.0, description="How often the reconciler compares the services.")
    repair_grace_s: float = Field(
        30.0, description="Age after which a pending grant counts as abandoned by a crashed broker."
    )
    leader_ttl_s: float = Field(5.0, description="Lease of the leader lock for the relay, reaper and reconciler.")
    failpoint: str = Field(
        "",
        description="Testing only: 'after-claim' makes the process exit right after devices are claimed, "
        "before quota is committed, to prove the reconciler repairs it.",
    )
