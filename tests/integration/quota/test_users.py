"""Users, the tree's third level, against real Redis: a user tenant "<project>/<user>" under a
project may carry a hard cap per class and a state; a reservation naming the user counts against
both the user and the project (and everything above), is released from exactly the node it was
charged to, and a user nobody registered is just a name on the grant. Concurrent reservations of
one capped user never pass its cap."""

from __future__ import annotations

import asyncio

import pytest

from slicebroker.core.errors import InvalidArgument, NotFound
from slicebroker.core.ids import new_grant_id
from slicebroker.quota.domain.amount import UNLIMITED, Amount
from slicebroker.quota.domain.budget import Budget, BudgetMode
from slicebroker.quota.domain.model import NodeKind, NodeSpec, NodeState, ReservationRequest
from slicebroker.quota.domain.service import QuotaService
from slicebroker.quota.domain.tree import Priority, QuotaEntry
from slicebroker.quota.storage.redis_store import RedisQuotaStore

from .support import H100, T0

SCALE = Amount.of(1).finite()


def cap(devices: int) -> QuotaEntry:
    return QuotaEntry(hard_cap=Amount.of(devices))


def item(user: str, count: int = 1, sku: str = H100, grant: str = "", shape: str = "") -> ReservationRequest:
    return ReservationRequest(grant or new_grant_id(), "p", sku, count, 30, shape, Priority.STANDARD, user=user)


@pytest.fixture
async def users(service: QuotaService) -> QuotaService:
    """Project p (8 H100, 64 RNGD) with alice capped at 3 H100 and bob without a cap."""
    await service.upsert_node(NodeSpec("p/alice", NodeKind.USER, "p"))
    await service.set_quota("p/alice", {H100: cap(3)}, None)
    await service.upsert_node(NodeSpec("p/bob", NodeKind.USER, "p"))
    return service


async def test_a_user_cap_binds_and_the_project_counts_its_users(users: QuotaService, store: RedisQuotaStore) -> None:
    ok = await users.reserve([item("alice", 2), item("alice", 1)], T0)
    assert [r.error for r in ok] == [None, None]
    (refused,) = await users.reserve([item("alice", 1)], T0)
    assert refused.error is not None and refused.error.metadata["node"] == "p/alice"
    assert refused.error.metadata["limit_kind"] == "hard_cap"
    # The project's own 8 are still there for bob (5 left) and people without a user tenant.
    assert [r.error for r in await users.reserve([item("bob", 4), item("", 1)], T0)] == [None, None]
    (full,) = await users.reserve([item("bob", 1)], T0)
    assert full.error is not None and full.error.metadata["node"] == "p"
    assert await store.usage("p/alice", H100) == (3 * SCALE, 3 * SCALE)
    assert await store.usage("p/bob", H100) == (4 * SCALE, 4 * SCALE)
    assert (await store.usage("p", H100))[0] == 8 * SCALE


async def test_release_returns_units_to_the_node_charged(users: QuotaService, store: RedisQuotaStore) -> None:
    g1, g2 = new_grant_id(), new_grant_id()
    await users.reserve([item("alice", 2, grant=g1), item("carol", 1, grant=g2)], T0)
    held = {r.grant_id: r for r in await store.list_reservations()}
    assert held[g1].user == "alice" and held[g2].user == "carol"
    # carol registers after her grant: the grant was charged to the project and is released there.
    await users.upsert_node(NodeSpec("p/carol", NodeKind.USER, "p"))
    await users.cancel([g1, g2], T0)
    for node in ("p", "p/alice", "p/carol"):
        assert await store.usage(node, H100) == (0, 0)


async def test_a_user_on_hold_takes_nothing_new(users: QuotaService) -> None:
    await users.upsert_node(NodeSpec("p/alice", NodeKind.USER, "p", state=NodeState.ON_HOLD))
    (refused,) = await users.reserve([item("alice")], T0)
    assert refused.error is not None and refused.error.metadata["tenant"] == "p/alice"
    (ok,) = await users.reserve([item("bob")], T0)
    assert ok.error is None


async def test_a_user_cap_binds_on_a_class_nobody_else_limits(users: QuotaService) -> None:
    # No one has a "gpu" entry: the class is not enforced for the tree, but alice's cap is hers.
    await users.set_quota("p/alice", {"gpu": cap(1)}, None)
    (ok,) = await users.reserve([item("alice", 1)], T0)
    (refused,) = await users.reserve([item("alice", 1)], T0)
    assert ok.error is None and refused.error is not None and refused.error.metadata["resource"] == "gpu"
    # ... and it did not start enforcing "gpu" for everyone else.
    (bob,) = await users.reserve([item("bob", 2)], T0)
    assert bob.error is None


async def test_user_caps_do_not_change_the_projects_quota(users: QuotaService) -> None:
    before = await users.get_node("p")
    await users.set_quota("p/bob", {H100: cap(100), "RNGD": cap(1)}, None)
    after = await users.get_node("p")
    assert after.subtree_quota == before.subtree_quota
    assert (await users.get_node("p/bob")).subtree_quota == {}


async def test_a_guaranteed_grant_of_a_capped_user_uses_the_projects_guarantee(users: QuotaService) -> None:
    guaranteed = ReservationRequest(new_grant_id(), "p", H100, 3, 30, "", Priority.GUARANTEED, user="alice")
    (ok,) = await users.reserve([guaranteed], T0)
    assert ok.error is None and not ok.preemptible


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (NodeSpec("alice", NodeKind.USER, "p"), "id"),
        (NodeSpec("q/alice", NodeKind.USER, "p"), "parent"),
        (NodeSpec("p/alice", NodeKind.PROJECT, "snu"), "id"),
        (NodeSpec("p/Alice", NodeKind.USER, "p"), "id"),
        (NodeSpec("snu/alice", NodeKind.USER, "snu"), "parent"),
    ],
)
async def test_bad_users_are_refused_naming_the_field(service: QuotaService, spec: NodeSpec, field: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        await service.upsert_node(spec)
    assert exc.value.field == field
    assert [n.id for n in await service.list_nodes(NodeKind.USER)] == []


async def test_a_user_takes_a_cap_only_and_no_budget(users: QuotaService) -> None:
    before = await users.get_node("p/alice")
    for entry, field in (
        (QuotaEntry(nominal=Amount.of(1)), "nominal"),
        (QuotaEntry(borrowing_limit=Amount.of(1), hard_cap=UNLIMITED), "borrowing_limit"),
    ):
        with pytest.raises(InvalidArgument) as exc:
            await users.set_quota("p/alice", {H100: entry}, None)
        assert exc.value.field == f"entries[{H100}].{field}"
    budget = Budget(BudgetMode.HARD, T0, T0 + 1000, T0 + 1000, 1000)
    with pytest.raises(InvalidArgument):
        await users.set_budget("p/alice", budget, None)
    assert await users.get_node("p/alice") == before
    with pytest.raises(NotFound):
        await users.get_node("p/nobody")


async def test_a_bad_user_name_on_a_reservation_is_refused(users: QuotaService, store: RedisQuotaStore) -> None:
    with pytest.raises(InvalidArgument) as exc:
        await users.reserve([item("alice"), item("Not A Name")], T0)
    assert exc.value.field == "reservations[1].user"
    assert await store.list_reservations() == []


async def test_concurrent_reserves_of_one_user_get_exactly_its_cap(users: QuotaService, store: RedisQuotaStore) -> None:
    await users.set_quota("p/alice", {"RNGD": cap(10)}, None)
    results = await asyncio.gather(*(users.reserve([item("alice", sku="RNGD")], T0) for _ in range(100)))
    assert sum(r.error is None for (r,) in results) == 10
    assert await store.usage("p/alice", "RNGD") == (10 * SCALE, 10 * SCALE)
    assert (await store.usage("p", "RNGD"))[0] == 10 * SCALE


async def test_records_from_before_users_still_release(
    users: QuotaService, store: RedisQuotaStore, client: object
) -> None:
    # A record as written before users existed: nine fields, no user and no charged node.
    grant = new_grant_id()
    (ok,) = await users.reserve([item("", 2, grant=grant)], T0)
    assert ok.error is None
    keys = store._keys
    raw = await store._client.hget(keys.reservations, grant)
    old = "|".join(str(raw if isinstance(raw, str) else raw.decode()).split("|")[:9])
    await store._client.hset(keys.reservations, grant, old)
    (held,) = await store.list_reservations()
    assert held.user == "" and held.count == 2
    await users.cancel([grant], T0)
    assert await store.usage("p", H100) == (0, 0)
