"""How a client reaches the mesh: the four service addresses, the token, the deadline and the retry
policy, in one frozen value that the sync and async clients share."""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

import grpc

ENV_BROKER_ADDR = "SLICEBROKER_BROKER_ADDR"
ENV_INVENTORY_ADDR = "SLICEBROKER_INVENTORY_ADDR"
ENV_QUOTA_ADDR = "SLICEBROKER_QUOTA_ADDR"
ENV_ACCOUNTING_ADDR = "SLICEBROKER_ACCOUNTING_ADDR"
ENV_TOKEN = "SLICEBROKER_TOKEN"
ENV_TIMEOUT = "SLICEBROKER_TIMEOUT_S"
ENV_TLS_CA = "SLICEBROKER_TLS_CA_FILE"
ENV_TLS_CERT = "SLICEBROKER_TLS_CERT_FILE"
ENV_TLS_KEY = "SLICEBROKER_TLS_KEY_FILE"

DEFAULT_TIMEOUT = 10.0

# Retrying these cannot do harm: UNAVAILABLE means the call may not have arrived, ABORTED that it
# lost an optimistic-concurrency race and changed nothing. A replayed RequestGrant carries the same
# idempotency key, so it returns the first grant rather than making a second one.
RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter, for UNAVAILABLE and ABORTED only."""

    attempts: int = 4
    """Most attempts per call, the first included; 1 disables retries."""
    initial_backoff: float = 0.1
    """Seconds before the first retry (before jitter)."""
    max_backoff: float = 2.0
    """Ceiling of one backoff, in seconds."""
    multiplier: float = 2.0
    """Growth of the backoff from one retry to the next."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError("RetryPolicy backoffs must be >= 0 and multiplier >= 1")

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based): the exponential step,
        of which a random half is kept so that clients failing together do not retry together."""
        step = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))
        return step / 2 + (rng or random).uniform(0, step / 2)

    def next_delay(self, attempt: int, code: grpc.StatusCode, time_left: float) -> float | None:
        """Seconds to wait before retrying after failed attempt `attempt` with `code`, or None to give
        up: the code is not retryable, attempts are spent, or the wait would outlast the deadline."""
        if code not in RETRYABLE_CODES or attempt >= self.attempts:
            return None
        delay = self.backoff(attempt)
        return delay if delay < time_left else None


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Where the services are and how to call them. Addresses are "host:port"; a service without
    one can't be called (ConfigurationError), so a client for the broker alone needs only
    `broker_addr`."""

    broker_addr: str | None = None
    inventory_addr: str | None = None
    quota_addr: str | None = None
    accounting_addr: str | None = None
    token: str | None = field(default=None, repr=False)
    """Bearer token, sent as `authorization: Bearer <token>`; None when the mesh needs none."""
    timeout: float = DEFAULT_TIMEOUT
    """Seconds one SDK call may take, retries included: the deadline of every RPC."""
    retries: RetryPolicy = field(default_factory=RetryPolicy)
    tls_ca_file: str | None = None
    """PEM CA the services' certificates are checked against; set it to call over TLS."""
    tls_cert_file: str | None = None
    """PEM client certificate, for meshes that require mutual TLS (make run's does)."""
    tls_key_file: str | None = field(default=None, repr=False)
    """PEM private key of `tls_cert_file`."""

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ValueError("ClientOptions.timeout must be positive")
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("ClientOptions.tls_cert_file and tls_key_file go together")

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        """TLS credentials when a CA is configured; None means a plaintext channel."""
        if not self.tls_ca_file:
            return None

        def read(path: str | None) -> bytes | None:
            if not path:
                return None
            with open(path, "rb") as f:
                return f.read()

        return grpc.ssl_channel_credentials(
            root_certificates=read(self.tls_ca_file),
            private_key=read(self.tls_key_file),
            certificate_chain=read(self.tls_cert_file),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientOptions:
        """Options from SLICEBROKER_{BROKER,INVENTORY,QUOTA,ACCOUNTING}_ADDR, SLICEBROKER_TOKEN,
        SLICEBROKER_TIMEOUT_S (seconds) and SLICEBROKER_TLS_{CA,CERT,KEY}_FILE; unset or empty
        variables keep the defaults."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            return env.get(name) or None

        timeout = get(ENV_TIMEOUT)
        try:
            seconds = float(timeout) if timeout else DEFAULT_TIMEOUT
        except ValueError:
            raise ValueError(f"{ENV_TIMEOUT}={timeout!r} is not a number of seconds") from None
        return cls(
            broker_addr=get(ENV_BROKER_ADDR),
            inventory_addr=get(ENV_INVENTORY_ADDR),
            quota_addr=get(ENV_QUOTA_ADDR),
            accounting_addr=get(ENV_ACCOUNTING_ADDR),
            token=get(ENV_TOKEN),
            timeout=seconds,
            tls_ca_file=get(ENV_TLS_CA),
            tls_cert_file=get(ENV_TLS_CERT),
            tls_key_file=get(ENV_TLS_KEY),
        )
