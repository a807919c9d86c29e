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
    change_stream_max: int = Field(
        100_000,
        ge=1,
        description="Most grant changes the change stream keeps for WatchGrants (trimmed approximately); "
        "a watcher further behind starts over with a snapshot.",
    )
    watch_block_ms: int = Field(
        1000, ge=1, description="Longest wait of one blocking read of the change stream by a watch."
    )
    watch_max_streams: int = Field(256, ge=1, description="Most WatchGrants streams one broker serves at once.")
    preemption_enabled: bool = Field(
        True, description="Whether waiting guaranteed requests may preempt preemptible grants."
    )
    preemption_notice_s: float = Field(
        300.0, ge=0, description="How long a preempted grant keeps its slices after its preemption notice."
    )
    preemption_min_runtime_s: float = Field(
        600.0, ge=0, description="Least time a grant runs, from its start, before preemption takes its slices."
    )
    max_start_after_s: int = Field(30 * 24 * 3600, ge=0, description="How far ahead a request may ask to start.")
    clock_skew_s: float = Field(
        60.0, ge=0, description="How far in the past a request's start_after may be (client clock skew)."
    )
    failpoint: str = Field(
        "",
        description="Testing only: the process exits (as if killed) at this step of the grant path: "
        "'after-begin', 'after-reserve', 'after-claim' (both halves held, before the quota commit), "
        "'after-commit', 'after-activate' or 'during-release' (ended, devices and quota not yet returned).",
    )
