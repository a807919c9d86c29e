"""Client options from the environment, and the retry policy's arithmetic."""

from __future__ import annotations

import random

import grpc
import pytest

from slicebroker.client import ClientOptions, RetryPolicy


def test_from_env_reads_every_variable() -> None:
    options = ClientOptions.from_env(
        {
            "SLICEBROKER_BROKER_ADDR": "b:1",
            "SLICEBROKER_INVENTORY_ADDR": "i:2",
            "SLICEBROKER_QUOTA_ADDR": "q:3",
            "SLICEBROKER_ACCOUNTING_ADDR": "a:4",
            "SLICEBROKER_TOKEN": "s3cret",
            "SLICEBROKER_TIMEOUT_S": "2.5",
        }
    )
    assert (options.broker_addr, options.inventory_addr, options.quota_addr, options.accounting_addr) == (
        "b:1",
        "i:2",
        "q:3",
        "a:4",
    )
    assert (options.token, options.timeout) == ("s3cret", 2.5)


def test_unset_or_empty_variables_keep_the_defaults() -> None:
    options = ClientOptions.from_env({"SLICEBROKER_BROKER_ADDR": "", "SLICEBROKER_TOKEN": ""})
    assert options == ClientOptions()
    assert options.timeout == 10.0
    assert options.retries == RetryPolicy(attempts=4)


def test_a_bad_timeout_variable_is_named() -> None:
    with pytest.raises(ValueError, match="SLICEBROKER_TIMEOUT_S"):
        ClientOptions.from_env({"SLICEBROKER_TIMEOUT_S": "soon"})


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan")])
def test_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(ValueError):
        ClientOptions(timeout=timeout)


def test_the_token_stays_out_of_repr() -> None:
    assert "s3cret" not in repr(ClientOptions(broker_addr="b:1", token="s3cret"))


@pytest.mark.parametrize("attempt", range(1, 12))
def test_backoff_grows_exponentially_up_to_the_ceiling_and_keeps_a_random_half(attempt: int) -> None:
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=2.0, multiplier=2.0)
    step = min(2.0, 0.1 * 2 ** (attempt - 1))
    rng = random.Random(attempt)
    delays = [policy.backoff(attempt, rng) for _ in range(200)]
    assert all(step / 2 <= d <= step for d in delays)
    assert max(delays) - min(delays) > step / 4, "jittered, not fixed"


@pytest.mark.parametrize(
    ("code", "attempt", "time_left", "retried"),
    [
        (grpc.StatusCode.UNAVAILABLE, 1, 10.0, True),
        (grpc.StatusCode.ABORTED, 3, 10.0, True),
        (grpc.StatusCode.UNAVAILABLE, 4, 10.0, False),  # the fourth attempt was the last
        (grpc.StatusCode.UNAVAILABLE, 1, 0.01, False),  # the wait would outlast the deadline
        (grpc.StatusCode.DEADLINE_EXCEEDED, 1, 10.0, False),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 1, 10.0, False),
        (grpc.StatusCode.INVALID_ARGUMENT, 1, 10.0, False),
        (grpc.StatusCode.INTERNAL, 1, 10.0, False),
    ],
)
def test_only_unavailable_and_aborted_are_retried_within_bounds(
    code: grpc.StatusCode, attempt: int, time_left: float, retried: bool
) -> None:
    delay = RetryPolicy().next_delay(attempt, code, time_left)
    assert (delay is not None) is retried


@pytest.mark.parametrize(
    "kwargs", [{"attempts": 0}, {"initial_backoff": -1.0}, {"max_backoff": -1.0}, {"multiplier": 0.5}]
)
def test_retry_policy_refuses_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
