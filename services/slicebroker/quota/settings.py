"""Settings of the quota service (environment prefix SLICEBROKER_QUOTA_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from slicebroker.runtime.settings import ServiceSettings


class QuotaSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SLICEBROKER_QUOTA_", extra="ignore", frozen=True)

    key_prefix: str = Field(
        "sb:quota",
        description="Prefix of every Redis key this service writes; services sharing a Redis differ here.",
    )
    sweep_interval_s: float = Field(
        1.0,
        gt=0,
        description="Seconds between sweeps that release reservations whose TTL passed. Until swept, a "
        "lapsed reservation still counts against its project's cap (the safe side).",
    )
    sweep_batch: int = Field(
        1000,
        ge=1,
        description="Most lapsed reservations one sweep call releases; a backlog takes several calls.",
    )
    script_calls_in_flight: int = Field(
        4,
        ge=0,
        description="Most concurrent Lua calls per batch verb (Reserve, Commit, Cancel); concurrent requests "
        "beyond it are merged into the next call, which also bounds the Redis connections they use. "
        "0 sends every request on its own.",
    )
    fair_share_half_life_s: float = Field(
        7 * 86_400.0,
        gt=0,
        description="Half-life of past burn in fair share: usage this long ago weighs half as much as now.",
    )
    fair_share_history_weight: float = Field(
        1.0,
        ge=0,
        description="Weight of past burn against current use in a fair-share number (0: current use only).",
    )
    budget_roll_interval_s: float = Field(
        30.0,
        gt=0,
        description="Seconds between checks for renewing budgets whose period has lapsed; the leader "
        "replica starts their next period (a roll-over is late by at most this much).",
    )
    leader_ttl_s: float = Field(
        10.0,
        gt=0,
        description="Lease of the leader lock for work done once per mesh (budget roll-over); a crashed "
        "leader is replaced after at most this long.",
    )
    inventory_addr: str = Field(
        "",
        description="host:port of the inventory service, asked for capacity so that quota writes warn (and "
        "CheckCapacity reports) when nominal guarantees exceed it; empty: guarantees are not checked.",
    )
    service_token: str = Field("", description="Bearer token quota presents to inventory.")
    peer_timeout_s: float = Field(5.0, gt=0, description="Deadline of each call to inventory, in seconds.")
    tenants_file: Path | None = Field(
        None,
        description="A tenants YAML file (see examples/tenants.yaml) applied at start-up, idempotently. "
        "Unset: institutions and projects come only through the API.",
    )
