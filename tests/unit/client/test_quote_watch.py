"""Quote, grant changes and host resources in the SDK: read from protos, sent as protos, and the
watch's resume bookkeeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest

from slicebroker.client import GrantChangeType, HostResources, InvalidArgumentError, UnavailableError
from slicebroker.client import _convert as convert
from slicebroker.client import _ops as ops
from slicebroker.client._errors import SlicebrokerError
from slicebroker.client._models import parse_memory_mib
from slicebroker.client._ops import RequestExtras
from slicebroker.client._watch import Resume
from slicebroker.v1 import broker_pb2


@pytest.mark.parametrize(
    ("text", "mib"), [("512Mi", 512), ("32Gi", 32 * 1024), ("1Ti", 1024 * 1024), ("1.5Gi", 1536), ("100", 100), (7, 7)]
)
def test_memory_amounts(text: str | int, mib: int) -> None:
    assert parse_memory_mib(text) == mib


def test_bad_memory_amount_says_what_is_accepted() -> None:
    with pytest.raises(ValueError, match="32Gi"):
        parse_memory_mib("lots")


def test_host_resources_and_start_after_go_into_the_request() -> None:
    at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    extras = RequestExtras(host=HostResources.of(cpu=2.5, memory="8Gi"), start_after=at)
    request = ops.request_grant("p", "H100-SXM-80GB", 2, "1h", "key", extras=extras).request
    assert isinstance(request, broker_pb2.RequestGrantRequest)
    assert (request.host_per_slice.cpu_milli, request.host_per_slice.memory_mib) == (2500, 8192)
    assert request.start_after.ToDatetime(tzinfo=UTC) == at
    plain = ops.request_grant("p", "H100-SXM-80GB", 2, "1h", "key").request
    assert isinstance(plain, broker_pb2.RequestGrantRequest)
    assert not plain.HasField("host_per_slice") and not plain.HasField("start_after")
    with pytest.raises(InvalidArgumentError) as naive:
        ops.request_grant("p", "H100-SXM-80GB", 1, "1h", None, extras=RequestExtras(start_after=datetime(2026, 1, 1)))
    assert naive.value.field == "start_after"


def test_a_quote_op_sends_the_request_grant_would_send() -> None:
    op = ops.quote("p", "H100-SXM-80GB", 3, timedelta(hours=2), RequestExtras(priority="preemptible"))
    assert op.rpc is ops.QUOTE
    assert isinstance(op.request, broker_pb2.RequestGrantRequest)
    assert (op.request.count, op.request.priority_class, op.request.lease.seconds) == (3, "preemptible", 7200)


def test_quote_and_grant_change_from_protos() -> None:
    msg = broker_pb2.QuoteResponse(
        sku="H100-SXM-80GB",
        count=2,
        currency="KRW",
        cost=10_000,
        cost_per_hour=5_000,
        accelerator_hours=2,
        price_tier="academic",
        price_book_version=3,
        refusal_reason="QUOTA_EXCEEDED",
        refusal_message="over",
        warnings=["w"],
    )
    quote = convert.quote(msg)
    assert quote.refused and quote.estimated_start is None and quote.warnings == ("w",)
    change = convert.grant_change(
        broker_pb2.GrantChange(
            type=broker_pb2.GRANT_CHANGE_TYPE_PREEMPTION_NOTICE,
            revision="17-0",
            grant=broker_pb2.Grant(id="g1", preemption_reason="guaranteed demand", host_per_slice={"cpu_milli": 4000}),
        )
    )
    assert change.type is GrantChangeType.PREEMPTION_NOTICE and not change.snapshot
    assert change.grant is not None and change.grant.preemption_reason == "guaranteed demand"
    assert change.grant.host_per_slice == HostResources(4000, 0)
    assert convert.grant_change(broker_pb2.GrantChange(type=99)).type is GrantChangeType.UNKNOWN


def _unavailable() -> SlicebrokerError:
    return UnavailableError(grpc.StatusCode.UNAVAILABLE, "", "down", {})


def test_resume_keeps_the_last_revision_handed_out_and_backs_off() -> None:
    resume = Resume("p", None, "", reconnect_timeout=60)
    assert resume.request().from_revision == ""
    for revision in ("", "5-0", "", "7-1"):
        resume.seen(
            convert.grant_change(broker_pb2.GrantChange(type=broker_pb2.GRANT_CHANGE_TYPE_SNAPSHOT, revision=revision))
        )
    assert resume.request().from_revision == "7-1" and resume.request().project == "p"
    delays = [resume.next_delay(_unavailable()) for _ in range(6)]
    assert delays == sorted(delays) and delays[-1] <= 2.0
    assert resume.next_delay(None) > 0  # the server ended the stream: reconnect too
    with pytest.raises(InvalidArgumentError):
        resume.next_delay(InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", "bad", {}))


def test_resume_gives_up_after_the_reconnect_timeout() -> None:
    resume = Resume(None, "g1", "3-0", reconnect_timeout=0)
    resume.next_delay(_unavailable())
    import time

    time.sleep(0.01)
    with pytest.raises(UnavailableError):
        resume.next_delay(_unavailable())
