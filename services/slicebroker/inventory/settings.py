"""The inventory service's settings, read once from the environment (SLICEBROKER_INVENTORY_*)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from slicebroker.runtime.settings import ServiceSettings


class InventorySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SLICEBROKER_INVENTORY_", extra="ignore", frozen=True)

    key_prefix: str = Field(
        "sb:inventory", description="Prefix of every Redis key the inventory writes (in a hash tag)."
    )
    register_chunk_nodes: int = Field(
        500,
        ge=1,
        description="Nodes per registration script. One script is atomic but blocks Redis while it "
        "runs (about 15 ms for 500 nodes); a larger facility is checked whole first, then written "
        "chunk by chunk.",
    )
    release_attempts: int = Field(
        8,
        ge=1,
        description="How often Release re-reads a grant that gained devices while being released "
        "before it answers UNAVAILABLE.",
    )
    remembered_grants: int = Field(
        100_000,
        ge=0,
        description="Grants whose nodes this process remembers from their claims, so that releasing "
        "them needs one Redis round trip instead of two (about 200 bytes each; 0 turns it off).",
    )
    change_log_length: int = Field(
        100_000,
        ge=100,
        description="Node changes kept in the change log (a Redis stream, trimmed approximately) for "
        "Watch readers to resume from; a reader further behind gets a full snapshot.",
    )
    watch_block_ms: int = Field(
        1000,
        ge=1,
        description="How long one Watch read waits for changes before it checks the stream again (ms).",
    )
    watch_buffer_events: int = Field(
        4096,
        ge=16,
        description="Recent node changes (whole nodes, a few KB each) kept in memory for Watch streams "
        "to catch up from; a stream further behind reads the change log in Redis instead. Bounds the "
        "watch buffer's memory at about twice this many nodes.",
    )
    redis_max_connections: int = Field(64, ge=1, description="Size of the Redis connection pool.")
