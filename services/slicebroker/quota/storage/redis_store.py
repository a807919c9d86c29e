"""`RedisQuotaStore`: the `QuotaStore` port over Redis.

Every write is one call of `lua/tree.lua` (atomic in Redis); batch verbs send the whole batch in
that one call, so the cost per item is a few Redis commands and no extra round trip. Reading some
nodes gathers their fields with one HMGET per node in one MULTI pipeline; reading them all (fair
share, standings) is one HGETALL of the tree hash, which holds only the fields that are set, so
the reply is as big as the tree's contents rather than nodes x every field a node could have.
Either way: one round trip, one snapshot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import redis.asyncio as aioredis

from slicebroker.quota.domain import budget as budgets
from slicebroker.quota.domain.amount import Amount
from slicebroker.quota.domain.model import HeldReservation, NodeKind, NodeSpec, NodeState, TenantNode, user_node_id
from slicebroker.quota.domain.resources import MEMORY_SUFFIX, resource_classes, resources_of, skus
from slicebroker.quota.domain.store import (
    BurnEvent,
    ChargedRequest,
    CommitStatus,
    ReserveOutcome,
    ReserveStatus,
    WriteOutcome,
    WriteStatus,
)
from slicebroker.quota.domain.tree import QuotaEntry
from slicebroker.quota.domain.validation import MAX_BATCH
from slicebroker.quota.storage.coalesce import Coalescer
from slicebroker.quota.storage.keys import QuotaKeys, field
from slicebroker.quota.storage.records import decode_reservation
from slicebroker.runtime.redis import Scripts

SCRIPTS = ("tree",)
# Lapsed marks outlive the longest TTL, so a Commit that comes as late as a reservation could ever
# have lived still learns that it expired rather than that it never existed.
LAPSED_RETENTION_MS = 3_600_000
# Burn event ids are remembered this long; accounting redelivers within minutes, not days.
BURN_RETENTION_MS = 7 * 24 * 3_600_000

CLASSES: tuple[str, ...] = resource_classes()
SKU_NAMES = frozenset(skus())
RESOURCES: tuple[str, ...] = tuple(r for c in CLASSES for r in resources_of(c))
_SCALARS = ("kind", "parent", "state", "name", "gen", "weight", "budget", "burned", "hist")
# The per-class and per-resource fields a node may have, as (what, class or resource).
_PER_NODE: tuple[tuple[str, str], ...] = (
    *((w, c) for w in ("cfg", "q") for c in CLASSES),
    *((w, r) for w in ("u", "k") for r in RESOURCES),
)

T = TypeVar("T")
R = TypeVar("R")
_Batch = Callable[[Sequence[T], int], Awaitable[list[R]]]


def _limit(a: Amount) -> str:
    return "" if a.units is None else str(a.units)


def encode_entry(e: QuotaEntry) -> str:
    return ",".join((str(e.nominal.finite()), _limit(e.borrowing_limit), _limit(e.lending_limit), _limit(e.hard_cap)))


def decode_entry(text: str) -> QuotaEntry:
    n, b, l, h = text.split(",")  # noqa: E741 - the four limits by their initials, as in tree.lua

    def amount(v: str) -> Amount:
        return Amount(int(v) if v else None)

    return QuotaEntry(Amount(int(n)), amount(b), amount(l), amount(h))


class RedisQuotaStore:
    """`calls_in_flight` bounds the concurrent Lua calls of each batch verb (reserve, commit,
    cancel); concurrent callers beyond it are merged into the next call (see `coalesce`). 0 sends
    every call on its own."""

    def __init__(self, client: aioredis.Redis, key_prefix: str, *, calls_in_flight: int = 4) -> None:
        self._client = client
        self._keys = QuotaKeys(key_prefix)
        self.scripts = Scripts(client, "slicebroker.quota.storage.lua", SCRIPTS)
        self._reserve_calls: _Batch[ChargedRequest, ReserveOutcome] = _merged(self._reserve, calls_in_flight)
        self._commit_calls: _Batch[str, CommitStatus] = _merged(self._commit, calls_in_flight)
        self._cancel_calls: _Batch[str, int] = _merged(self._cancel, calls_in_flight)
        self._share_sweeps = calls_in_flight > 0
        self._sweeping: asyncio.Future[list[str]] | None = None

    async def _tree(self, verb: str, now_ms: int, args: Sequence[Any]) -> Any:
        return await self.scripts("tree", self._keys.all, [verb, now_ms, *args])

    # -- tenants ---------------------------------------------------------------------------------

    async def upsert_node(
        self,
        spec: NodeSpec,
        *,
        keep_parent: bool = False,
        keep_state: bool = False,
        entries: Mapping[str, QuotaEntry | None] | None = None,
    ) -> WriteOutcome:
        args: list[Any] = [
            spec.id,
            spec.kind,
            "*" if keep_parent else spec.parent,
            "*" if keep_state else spec.state,
            spec.display_name,
            format(spec.weight, "g"),
            _expected(spec.expected_generation),
            len(CLASSES),
            *CLASSES,
            len(RESOURCES),
            *RESOURCES,
            *_entry_args(entries or {}),
        ]
        return _write_outcome(await self._tree("upsert_node", 0, args))

    async def set_entries(
        self, node: str, entries: Mapping[str, QuotaEntry | None], expected_generation: int | None
    ) -> WriteOutcome:
        args: list[Any] = [node, _expected(expected_generation), *_entry_args(entries)]
        return _write_outcome(await self._tree("set_entries", 0, args))

    async def set_budget(
        self, node: str, budget: budgets.Budget | None, new_period: bool, expected_generation: int | None
    ) -> WriteOutcome:
        text = "" if budget is None else budgets.encode(budget)
        row = await self._tree(
            "set_budget", 0, [node, _expected(expected_generation), text, "1" if new_period else "0"]
        )
        return _write_outcome(row)

    async def roll_budget(
        self, node: str, current: budgets.Budget, burned_mh: int, following: budgets.Budget
    ) -> WriteOutcome:
        args = [node, budgets.encode(current), burned_mh, budgets.encode(following)]
        return _write_outcome(await self._tree("roll_budget", 0, args))

    async def get_nodes(self, node_ids: Sequence[str]) -> list[TenantNode | None]:
        if not node_ids:
            return []
        async with self._client.pipeline(transaction=True) as pipe:
            for nid in node_ids:
                fields = [field(w, nid) for w in _SCALARS] + [field(what, nid, item) for what, item in _PER_NODE]
                pipe.hmget(self._keys.tree, fields)
            rows: list[list[str | None]] = await pipe.execute()
        out: list[TenantNode | None] = []
        for nid, row in zip(node_ids, rows, strict=True):
            scalars = {w: v for w, v in zip(_SCALARS, row, strict=False) if v is not None}
            per_item = [(w, x, v) for (w, x), v in zip(_PER_NODE, row[len(_SCALARS) :], strict=True) if v is not None]
            out.append(_node(nid, scalars, per_item))
        return out

    async def list_nodes(self) -> list[TenantNode]:
        """Every node, in id order, from one snapshot of the tree hash."""
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.zrange(self._keys.nodes, 0, -1)
            pipe.hgetall(self._keys.tree)
            ids, tree = await pipe.execute()
        # "<what>|<node>" → scalars[node][what]; "<what>|<node>|<item>" → per_item[node]
        scalars: dict[str, dict[str, str]] = {nid: {} for nid in ids}
        per_item: dict[str, list[tuple[str, str, str]]] = {nid: [] for nid in ids}
        for name, value in tree.items():
            parts = name.split("|")
            if len(parts) == 2:
                if parts[1] in scalars:
                    scalars[parts[1]][parts[0]] = value
            elif parts[1] in per_item:
                per_item[parts[1]].append((parts[0], parts[2], value))
        return [n for n in (_node(nid, scalars[nid], per_item[nid]) for nid in ids) if n is not None]

    # -- reservations ----------------------------------------------------------------------------

    async def reserve(self, items: Sequence[ChargedRequest], now_ms: int) -> list[ReserveOutcome]:
        return await self._reserve_calls(items, now_ms)

    async def commit(self, grant_ids: Sequence[str], now_ms: int) -> list[CommitStatus]:
        return await self._commit_calls(grant_ids, now_ms)

    async def cancel(self, grant_ids: Sequence[str], now_ms: int) -> list[int]:
        return await self._cancel_calls(grant_ids, now_ms)

    async def check(self, items: Sequence[ChargedRequest], now_ms: int) -> list[ReserveOutcome]:
        """What `reserve` would answer each item now, each against the tree as it is; writes nothing."""
        rows: list[list[Any]] = await self._tree("check", now_ms, _reserve_args(items))
        return [_reserve_outcome(row) for row in rows]

    async def _reserve(self, items: Sequence[ChargedRequest], now_ms: int) -> list[ReserveOutcome]:
        rows: list[list[Any]] = await self._tree("reserve", now_ms, _reserve_args(items))
        return [_reserve_outcome(row) for row in rows]

    async def _commit(self, grant_ids: Sequence[str], now_ms: int) -> list[CommitStatus]:
        rows: list[str] = await self._tree("commit", now_ms, grant_ids)
        return [CommitStatus(row) for row in rows]

    async def _cancel(self, grant_ids: Sequence[str], now_ms: int) -> list[int]:
        rows: list[int] = await self._tree("cancel", now_ms, grant_ids)
        return rows

    async def sweep(self, now_ms: int, limit: int) -> list[str]:
        """With merging on, callers arriving while a sweep runs share its result instead of each
        starting one: a burst of refused reservations then costs one sweep, not one each."""
        if not self._share_sweeps:
            return await self._sweep(now_ms, limit)
        if self._sweeping is None or self._sweeping.done():
            self._sweeping = asyncio.ensure_future(self._sweep(now_ms, limit))
            # Every waiter may have given up; the outcome is still retrieved, so a failure is not
            # reported as "never retrieved" (the background loop logs sweep failures it sees).
            self._sweeping.add_done_callback(lambda f: f.cancelled() or f.exception())
        # Shielded: a caller that gives up does not cancel the sweep others are waiting for.
        return await asyncio.shield(self._sweeping)

    async def _sweep(self, now_ms: int, limit: int) -> list[str]:
        released: list[str] = await self._tree("sweep", now_ms, [limit, LAPSED_RETENTION_MS])
        return released

    async def list_reservations(self) -> list[HeldReservation]:
        records: Any = await self._client.hgetall(self._keys.reservations)
        held = [decode_reservation(grant_id, record) for grant_id, record in records.items()]
        # Grant ids sort by creation time; a stable order makes reconciler runs comparable.
        held.sort(key=lambda r: r.grant_id)
        return held

    async def burn(self, events: Sequence[BurnEvent], now_ms: int, half_life_ms: int) -> list[int]:
        args: list[Any] = [BURN_RETENTION_MS, half_life_ms]
        for e in events:
            args += [e.event_id, e.project, e.mh]
        rows: list[int] = await self._tree("burn", now_ms, args)
        return rows

    # -- diagnostics (tests) ---------------------------------------------------------------------

    async def usage(self, node: str, resource: str) -> tuple[int, int]:
        """(subtree usage, pool usage) units of `resource` at `node`."""
        u, k = await self._client.hmget(self._keys.tree, [field("u", node, resource), field("k", node, resource)])
        return int(u or 0), int(k or 0)

    async def in_use_all(self) -> dict[tuple[str, str], int]:
        """Whole devices' worth held per (project, SKU), where any is held."""
        return {
            (n.id, sku): -(-units // Amount.of(1).finite())
            for n in await self.list_nodes()
            if n.kind is NodeKind.PROJECT
            for sku, units in n.usage.items()
            if sku in SKU_NAMES and units > 0
        }

    async def in_use(self, project: str, sku: str) -> int:
        """Whole devices' worth of `sku` compute the project holds now (rounded up)."""
        units, _ = await self.usage(project, sku)
        return -(-units // Amount.of(1).finite())


def _entry_args(entries: Mapping[str, QuotaEntry | None]) -> list[Any]:
    args: list[Any] = []
    for cls, entry in entries.items():
        resources = resources_of(cls)
        args += [cls, "" if entry is None else encode_entry(entry), len(resources), *resources]
    return args


def _expected(generation: int | None) -> int:
    return -1 if generation is None else generation


def _merged(run: _Batch[T, R], calls_in_flight: int) -> _Batch[T, R]:
    if calls_in_flight <= 0:
        return run
    return Coalescer(run, max_batch=MAX_BATCH, max_in_flight=calls_in_flight)


def _write_outcome(row: list[Any]) -> WriteOutcome:
    status = WriteStatus(row[0])
    if status in (WriteStatus.OK, WriteStatus.CONFLICT):
        return WriteOutcome(status, generation=int(row[1]))
    if status in (WriteStatus.KIND_MISMATCH, WriteStatus.BAD_PARENT):
        return WriteOutcome(status, detail=str(row[1]))
    return WriteOutcome(status)


def _node(node_id: str, fields: Mapping[str, str], per_item: Sequence[tuple[str, str, str]]) -> TenantNode | None:
    """A node from its fields: `fields` {what: value}, `per_item` (what, class or resource, value);
    None when it does not exist. Fields of classes or resources this build does not know are ignored."""
    kind = fields.get("kind")
    if kind is None:
        return None
    parent = fields.get("parent", "")
    entries: dict[str, QuotaEntry] = {}
    quota: dict[str, int] = {}
    usage: dict[str, int] = {}
    pool: dict[str, int] = {}
    for what, item, value in per_item:
        if what == "cfg" and item in _CLASS_SET and value:
            entries[item] = decode_entry(value)
        elif what == "q" and item in _CLASS_SET and value:
            quota[item] = int(value)
        elif what == "u" and item in _RESOURCE_SET and value and int(value):
            usage[item] = int(value)
        elif what == "k" and item in _RESOURCE_SET and value:
            pool[item] = int(value)
    borrowed: dict[str, int] = {}
    if parent:
        for r, k in pool.items():
            over = k - quota.get(r.removesuffix(MEMORY_SUFFIX), 0)
            if over > 0:
                borrowed[r] = over
    hist_value, _, hist_at = fields.get("hist", "0,0").partition(",")
    budget = fields.get("budget")
    return TenantNode(
        id=node_id,
        kind=NodeKind(kind),
        parent=parent,
        state=NodeState(fields.get("state") or "active"),
        display_name=fields.get("name", ""),
        generation=int(fields.get("gen") or 0),
        weight=float(fields.get("weight") or 1),
        entries=_in_order(entries, CLASSES),
        budget=budgets.decode(budget) if budget else None,
        burned_mh=int(fields.get("burned") or 0),
        history_mh=float(hist_value),
        history_at_ms=int(hist_at or 0),
        usage=_in_order(usage, RESOURCES),
        borrowed=_in_order(borrowed, RESOURCES),
        subtree_quota=_in_order(quota, CLASSES),
    )


_CLASS_SET = frozenset(CLASSES)
_RESOURCE_SET = frozenset(RESOURCES)


def _in_order(values: dict[str, int] | dict[str, QuotaEntry], order: Sequence[str]) -> Any:
    """`values` keyed in catalogue order, whatever order Redis returned the fields in (so that a node
    reads the same through HMGET and HGETALL, and answers list entries in a stable order)."""
    if len(values) < 2:
        return values
    return {k: values[k] for k in order if k in values}


def _reserve_args(items: Sequence[ChargedRequest]) -> list[Any]:
    """Items as tree.lua's `reserve` and `check` read them."""
    args: list[Any] = []
    for item in items:
        r = item.request
        user_node = user_node_id(r.project, r.user) if r.user else ""
        args += [
            r.grant_id,
            r.project,
            r.sku,
            r.count,
            r.shape,
            r.priority,
            r.ttl_seconds * 1000,
            r.user,
            user_node,
        ]
        args.append(len(item.charges))
        for resource, units in item.charges.items():
            args += [resource, units]
    return args


def _reserve_outcome(row: list[Any]) -> ReserveOutcome:
    status = ReserveStatus(row[0])
    match status:
        case ReserveStatus.OK:
            warnings = tuple(w for w in str(row[3]).split(",") if w)
            return ReserveOutcome(status, institution=row[1], preemptible=bool(int(row[2])), warnings=warnings)
        case ReserveStatus.QUOTA_EXCEEDED:
            return ReserveOutcome(
                status,
                limit=row[1],
                node=row[2],
                resource=row[3],
                requested=int(row[4]),
                available=int(row[5]),
                in_use=int(row[6]),
                reclaimable=len(row) > 7 and bool(int(row[7])),
            )
        case ReserveStatus.NOT_ACTIVE:
            return ReserveOutcome(status, node=row[1], state=row[2])
        case ReserveStatus.BUDGET_EXHAUSTED:
            return ReserveOutcome(status, node=row[1], left_mh=int(row[2]))
        case ReserveStatus.MISMATCH:
            return ReserveOutcome(
                status, held_project=row[1], held_sku=row[2], held_count=int(row[3]), held_shape=row[4]
            )
    return ReserveOutcome(status)
