"""The two ways nodes are read agree: `get_nodes` (HMGET of every field a node may have) and
`list_nodes` (one HGETALL of the tree), on a tree with cohorts, entries, lending and borrowing,
usage, budgets, burn history and users; and fair-share orders read through either are the same."""

from __future__ import annotations

from slicebroker.quota.domain.amount import Amount
from slicebroker.quota.domain.budget import Budget, BudgetMode
from slicebroker.quota.domain.model import NodeKind, NodeSpec, ReservationRequest
from slicebroker.quota.domain.service import QuotaService, pending_request
from slicebroker.quota.domain.store import BurnEvent
from slicebroker.quota.domain.tree import Priority, QuotaEntry
from slicebroker.quota.storage.redis_store import RedisQuotaStore

from .support import H100, T0


async def test_list_nodes_reads_what_get_nodes_reads(service: QuotaService, store: RedisQuotaStore) -> None:
    await service.upsert_node(NodeSpec("unis", NodeKind.COHORT))
    await service.upsert_node(NodeSpec("kaist", NodeKind.INSTITUTION, "unis", weight=2))
    await service.set_quota(
        "kaist", {H100: QuotaEntry(Amount.of(4), lending_limit=Amount.of(2)), "gpu": QuotaEntry(Amount.of(6))}, None
    )
    await service.upsert_node(NodeSpec("snu", NodeKind.INSTITUTION, "unis"))
    await service.upsert_node(NodeSpec("p/alice", NodeKind.USER, "p"))
    await service.set_quota("p/alice", {"RNGD": QuotaEntry(hard_cap=Amount.of(3))}, None)
    await service.upsert_node(NodeSpec("kv", NodeKind.PROJECT, "kaist"))
    await service.set_budget("snu", Budget(BudgetMode.SOFT, T0, T0 + 10_000, T0 + 20_000, 5000, renews=True), None)
    reservations = [
        ReservationRequest("gr_" + "0" * 25 + "1", "p", H100, 2, 30, "1g.10gb", Priority.STANDARD, user="alice"),
        ReservationRequest("gr_" + "0" * 25 + "2", "kv", H100, 3, 30),
        ReservationRequest("gr_" + "0" * 25 + "3", "p", "RNGD", 2, 30, user="alice"),
    ]
    assert [r.error for r in await service.reserve(reservations, T0)] == [None, None, None]
    await service.record_burn([BurnEvent("ev-1", "p", 1500), BurnEvent("ev-2", "kv", 700)], T0 + 1000)
    listed = await store.list_nodes()
    ids = [n.id for n in listed]
    assert ids == sorted(ids) and {"unis", "kaist", "snu", "p", "p/alice", "kv"} <= set(ids)
    assert listed == await store.get_nodes(ids)
    borrowing = next(n for n in listed if n.id == "kv")
    assert borrowing.usage and borrowing.subtree_quota == {}
    pending = [pending_request(f"r{i}", ("p", "kv")[i % 2], H100, "", 1) for i in range(20)]
    assert service.order_on(listed, pending, T0 + 2000) == service.order_on(
        await store.get_nodes(ids), pending, T0 + 2000
    )
