"""A preemption notice from the broker reaches the pod: a Warning event with the deadline and the
reason at once, an eviction (policy/v1) at the deadline, and the grant's release with the pod —
real kube-apiserver, real broker (WatchGrants), nothing faked."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from slicebroker.client import GrantState
from slicebroker.operator import mapping
from tests.k8s.conftest import GPU_NODES, PREEMPTION_NOTICE_S, Namespace, OperatorHandle, eventually

call = asyncio.to_thread
H100 = "H100-SXM-80GB"


def _granted(ns: Namespace, name: str) -> dict[str, Any] | None:
    pod = ns.pod(name)
    gates = ((pod or {}).get("spec") or {}).get("schedulingGates")
    return pod if pod and not gates and mapping.ANN_GRANT in pod["metadata"].get("annotations", {}) else None


def _events(ns: Namespace, name: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in ns.events(name) if e["reason"] == reason]


async def test_preemption_notice_becomes_a_pod_event_then_an_eviction_at_the_deadline(
    namespace: Namespace, operator: OperatorHandle
) -> None:
    # The facility is full: a preemptible pod on one node, a standard one on the other.
    namespace.create_pod("scavenger", {"nvidia.com/gpu": "8"}, {mapping.ANN_PRIORITY: "preemptible"})
    namespace.create_pod("steady", {"nvidia.com/gpu": "8"})
    victim = await eventually(lambda: _granted(namespace, "scavenger"))
    await eventually(lambda: _granted(namespace, "steady"))
    victim_grant = victim["metadata"]["annotations"][mapping.ANN_GRANT]
    assert {victim["metadata"]["annotations"][mapping.ANN_NODE]} < set(GPU_NODES)
    assert (await call(operator.sb.get_grant, victim_grant)).preemptible

    # Guaranteed demand waits in the broker's queue and takes the preemptible grant back.
    asked = time.time()
    wanted = await call(
        lambda: operator.sb.request_grant("uni-a-llm", H100, 4, "1h", queue=True, priority="guaranteed")
    )
    assert wanted.state is GrantState.QUEUED

    notice = (await eventually(lambda: _events(namespace, "scavenger", "PreemptionNotice")))[0]
    assert notice["type"] == "Warning"
    grant = await call(operator.sb.get_grant, victim_grant)
    assert grant.preemption_deadline is not None
    deadline = grant.preemption_deadline
    assert deadline.strftime("%Y-%m-%dT%H:%M:%SZ") in notice["message"]
    assert grant.preemption_reason and grant.preemption_reason in notice["message"]
    assert deadline.timestamp() >= asked + PREEMPTION_NOTICE_S - 1
    # Warned, not yet evicted: the pod runs until the deadline.
    pod = namespace.pod("scavenger")
    assert pod is not None and not pod["metadata"].get("deletionTimestamp")

    # At the deadline: evicted (the Eviction deletes it), its grant ended, the waiting demand served.
    await eventually(lambda: namespace.pod("scavenger") is None, timeout_s=PREEMPTION_NOTICE_S + 20)
    evicted_at = datetime.now(UTC)
    assert evicted_at >= deadline
    assert _events(namespace, "scavenger", "Preempted")
    assert (await call(operator.sb.get_grant, victim_grant)).state is GrantState.ENDED
    served = await eventually(lambda: g if (g := operator.sb.get_grant(wanted.id)).state is GrantState.ACTIVE else None)
    assert len(served.slices) == 4
    # The standard pod was never touched.
    assert _granted(namespace, "steady") and not _events(namespace, "steady", "PreemptionNotice")
