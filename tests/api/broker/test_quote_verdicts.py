"""Quote and RequestGrant agree on quota through the real services: the quote asks quota's
CheckReserve, the grant its Reserve, so a quote refuses exactly when the grant is refused, with the
same reason and the same words — for limits on a family ("gpu") that the quote used to skip, a hard
cap, a borrowing limit, a guaranteed request beyond nominal — and warns when the grant would borrow
(and so be preemptible). The user-cap case needs a caller who is a user: tests/security/test_quote_isolation.py."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration

from slicebroker.core.errors import SlicebrokerError
from slicebroker.runtime.status import from_rpc_error
from slicebroker.v1 import broker_pb2 as T
from slicebroker.v1 import quota_pb2 as Q
from tests.api.mesh.conftest import Stubs

H100 = "H100-SXM-80GB"
BORROWS = "would borrow beyond its quota: preemptible"


def ask(project: str, count: int, priority: str = "standard", **extra: Any) -> T.RequestGrantRequest:
    return T.RequestGrantRequest(
        project=project, sku=H100, count=count, lease=Duration(seconds=600), priority_class=priority, **extra
    )


async def set_quota(stubs: Stubs, tenant: str, cls: str, **limits: str) -> None:
    entry = Q.QuotaEntry(resource_class=cls, **limits)
    await stubs.quota.SetQuota(Q.SetQuotaRequest(tenant=tenant, entries=[entry]))


async def lending_institution(stubs: Stubs, lent: str) -> None:
    """uni: p1 (nominal 8, may borrow 8), p2 (nominal `lent`, lends all of it)."""
    await stubs.quota.UpsertTenant(Q.UpsertTenantRequest(id="uni", kind=Q.TENANT_KIND_INSTITUTION))
    for p in ("p1", "p2"):
        await stubs.quota.UpsertTenant(Q.UpsertTenantRequest(id=p, kind=Q.TENANT_KIND_PROJECT, parent="uni"))
    await set_quota(stubs, "p1", H100, nominal="8", borrowing_limit="8")
    await set_quota(stubs, "p2", H100, nominal=lent, lending_limit=lent)


async def quote_then_grant(stubs: Stubs, request: T.RequestGrantRequest) -> tuple[T.QuoteResponse, Any]:
    """The quote, then what RequestGrant does with the same request on the same state: a grant or
    its refusal. Whatever the quote says, it must say the same as the grant."""
    quote = await stubs.broker.Quote(request)
    try:
        outcome: Any = await stubs.broker.RequestGrant(request)
    except grpc.aio.AioRpcError as err:
        outcome = from_rpc_error(err)
    if isinstance(outcome, SlicebrokerError):
        assert (quote.refusal_reason, quote.refusal_message) == (str(outcome.reason), outcome.message)
        assert not quote.available_now
    else:
        assert not quote.refusal_reason, quote.refusal_message
        assert outcome.state == T.GRANT_STATE_ACTIVE
    return quote, outcome


async def test_a_cap_on_the_family_refuses_the_quote_as_it_refuses_the_grant(stubs: Stubs) -> None:
    # uni-a-llm may hold 20 H100 of its own, but its institution has 6 "gpu" in all.
    await set_quota(stubs, "uni-a", "gpu", nominal="6")
    quote, refusal = await quote_then_grant(stubs, ask("uni-a-llm", 7))
    assert quote.refusal_reason == "QUOTA_EXCEEDED" and "of uni-a on gpu" in quote.refusal_message
    assert refusal.metadata["resource"] == "gpu"
    _, grant = await quote_then_grant(stubs, ask("uni-a-llm", 6))
    # The family is used up for the institution's other project too.
    quote, _ = await quote_then_grant(stubs, ask("uni-a-vision", 1))
    assert "of uni-a on gpu leaves 0, 1 short" in quote.refusal_message
    await stubs.broker.ReleaseGrant(T.ReleaseGrantRequest(id=grant.id))


async def test_a_hard_cap_on_the_family_refuses_the_quote_as_it_refuses_the_grant(stubs: Stubs) -> None:
    await set_quota(stubs, "lab-b", "gpu", nominal="64", hard_cap="5")
    quote, _ = await quote_then_grant(stubs, ask("lab-b-bio", 6))
    assert "the hard cap of lab-b on gpu leaves 5, 1 short" in quote.refusal_message
    await quote_then_grant(stubs, ask("lab-b-bio", 5))
    quote, _ = await quote_then_grant(stubs, ask("lab-b-chem", 1))
    assert quote.refusal_reason == "QUOTA_EXCEEDED" and "hard cap of lab-b" in quote.refusal_message


async def test_borrowing_is_a_warning_and_beyond_the_borrowing_limit_a_refusal(stubs: Stubs) -> None:
    await lending_institution(stubs, lent="16")

    quote, grant = await quote_then_grant(stubs, ask("p1", 6))
    assert not [w for w in quote.warnings if BORROWS in w] and not grant.preemptible
    # A guaranteed request never borrows: refused by both beyond nominal.
    quote, _ = await quote_then_grant(stubs, ask("p1", 4, "guaranteed"))
    assert quote.refusal_reason == "QUOTA_EXCEEDED"
    quote, grant = await quote_then_grant(stubs, ask("p1", 4))
    assert f"p1 {BORROWS}" in quote.warnings and grant.preemptible
    quote, refusal = await quote_then_grant(stubs, ask("p1", 7))
    assert refusal.metadata["limit_kind"] == "borrowing_limit"
    assert "borrowing limit of p1" in quote.refusal_message


async def test_quota_lent_to_borrowers_is_a_wait_for_a_request_that_queues(stubs: Stubs) -> None:
    """Within its own quota but lent out: RequestGrant queues it (to reclaim), so the quote waits."""
    await lending_institution(stubs, lent="8")
    await stubs.broker.RequestGrant(ask("p1", 16))
    quote = await stubs.broker.Quote(ask("p2", 8, "guaranteed", queue=True))
    assert not quote.refusal_reason and not quote.available_now
    assert quote.waiting_reason.startswith("waiting for its quota lent to borrowers: ")
    queued = await stubs.broker.RequestGrant(ask("p2", 8, "guaranteed", queue=True))
    assert queued.state == T.GRANT_STATE_QUEUED
    # Without queueing, both refuse.
    await quote_then_grant(stubs, ask("p2", 8, "guaranteed"))
