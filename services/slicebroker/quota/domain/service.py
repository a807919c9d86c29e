"""`QuotaService`: the quota service's application logic over a `QuotaStore`.

Every method validates all of its input before the store is touched, so a refused call changes
nothing. Batch verbs hand the whole batch to the store, which applies it in one atomic Lua call
against the whole tenant tree; each item then gets its own answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from slicebroker.core.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound, SlicebrokerError
from slicebroker.core.ids import check_name
from slicebroker.core.reasons import Reason
from slicebroker.quota.domain import budget as budgets
from slicebroker.quota.domain import fairshare
from slicebroker.quota.domain.amount import SCALE
from slicebroker.quota.domain.capacity import CapacitySource, Commitment, class_capacity, commitments, warnings_for
from slicebroker.quota.domain.model import (
    GrantIdResult,
    HeldReservation,
    Institution,
    InstitutionSpec,
    NodeKind,
    NodeSpec,
    Project,
    ProjectSpec,
    ReservationRequest,
    ReserveResult,
    TenantNode,
)
from slicebroker.quota.domain.refusals import refusal
from slicebroker.quota.domain.resources import ACCEL, resources_of, shared_charges, skus
from slicebroker.quota.domain.store import (
    BurnEvent,
    CommitStatus,
    QuotaStore,
    ReserveStatus,
    WriteOutcome,
    WriteStatus,
)
from slicebroker.quota.domain.tree import QuotaEntry, device_cap_entry
from slicebroker.quota.domain.validation import (
    check_node_id,
    validate_budget,
    validate_burn,
    validate_entries,
    validate_grant_ids,
    validate_institution,
    validate_node,
    validate_project,
    validate_reservations,
)

# How many expired reservations one sweep call releases; larger backlogs take several calls.
SWEEP_BATCH = 1000
DAY_MS = 86_400_000


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Warned(Generic[T]):
    """A write's result with what the caller should know but that did not stop it."""

    value: T
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FairShareSettings:
    half_life_ms: int = 7 * DAY_MS
    history_weight: float = 1.0


@dataclass(frozen=True, slots=True)
class Standing:
    """What `slicectl quota` shows for one node: entitlement, use, borrowed (per resource, units),
    budget left and when it runs out at the current rate, and the fair-share number."""

    node: TenantNode
    fair_share: float
    budget_left_mh: int | None
    exhaustion_ms: int | None


class QuotaService:
    def __init__(
        self,
        store: QuotaStore,
        *,
        sweep_batch: int = SWEEP_BATCH,
        fair: FairShareSettings | None = None,
        capacity: CapacitySource | None = None,
    ) -> None:
        self._store = store
        self._sweep_batch = sweep_batch
        self._fair = fair or FairShareSettings()
        self._capacity = capacity

    # -- tenant tree -----------------------------------------------------------------------------

    async def upsert_node(self, spec: NodeSpec) -> TenantNode:
        """Creates or changes a cohort, institution or project; with `expected_generation` set, a
        write that lost a race is refused (GENERATION_CONFLICT), not lost."""
        parent_kind = None
        if spec.parent:
            check_name("parent", spec.parent)
            if spec.parent == spec.id:
                raise InvalidArgument("parent", f"{spec.id} cannot be its own parent")
            (parent,) = await self._store.get_nodes([spec.parent])
            if parent is None:
                raise _not_found(spec.parent, "parent")
            parent_kind = parent.kind
        validate_node(spec, parent_kind)
        _check_write(await self._store.upsert_node(spec), spec.id, "parent")
        return await self.get_node(spec.id)

    async def get_node(self, node_id: str, field: str = "id") -> TenantNode:
        check_node_id(field, node_id)
        (node,) = await self._store.get_nodes([node_id])
        if node is None:
            raise _not_found(node_id, field)
        return node

    async def list_nodes(self, kind: NodeKind | None = None, parent: str = "") -> list[TenantNode]:
        return [
            n
            for n in await self._store.list_nodes()
            if (kind is None or n.kind is kind) and (not parent or n.parent == parent)
        ]

    async def set_quota(
        self, node_id: str, entries: Mapping[str, QuotaEntry | None], expected_generation: int | None
    ) -> TenantNode:
        node = await self.get_node(node_id, "node")
        validate_entries(entries, bool(node.parent), cap_only=node.kind is NodeKind.USER)
        _check_write(await self._store.set_entries(node_id, entries, expected_generation), node_id, "node")
        return await self.get_node(node_id, "node")

    async def set_quota_checked(
        self, node_id: str, entries: Mapping[str, QuotaEntry | None], expected_generation: int | None
    ) -> Warned[TenantNode]:
        """`set_quota`, with a warning for each class it guarantees that is now over-committed."""
        node = await self.set_quota(node_id, entries, expected_generation)
        raised = [cls for cls, e in entries.items() if e is not None and e.nominal.finite() > 0]
        return Warned(node, await self.capacity_warnings(raised))

    async def check_capacity(self) -> list[Commitment]:
        """Per class, the nominal guarantees of the whole tree against inventory's healthy devices."""
        if self._capacity is None:
            raise FailedPrecondition(
                "quota has no inventory to ask for capacity (its inventory_addr setting is empty)",
                metadata={"setting": "inventory_addr"},
            )
        devices = await self._capacity.healthy_devices()
        return commitments(await self._store.list_nodes(), class_capacity(devices))

    async def capacity_warnings(self, classes: Iterable[str]) -> tuple[str, ...]:
        """Warnings for `classes` that are over-committed. Never fails the write that asks: without
        an inventory there is nothing to say, and an unreachable one is a warning of its own."""
        wanted = list(classes)
        if self._capacity is None or not wanted:
            return ()
        try:
            rows = await self.check_capacity()
        except SlicebrokerError as err:
            return (f"guarantees not checked against capacity: inventory did not answer ({err})",)
        return warnings_for(rows, wanted)

    async def set_budget(
        self, node_id: str, budget: budgets.Budget | None, expected_generation: int | None, roll_over: bool = False
    ) -> TenantNode:
        """Sets (None: removes) a node's budget. `roll_over` starts a new period: the burn count
        restarts and what the old budget had left is carried, up to its carry-over maximum."""
        node = await self.get_node(node_id, "node")
        if node.kind is NodeKind.USER and budget is not None:
            raise InvalidArgument("node", f"{node_id} is a user; budgets belong to projects and institutions")
        if budget is not None:
            validate_budget(budget)
            if roll_over:
                if node.budget is None:
                    raise InvalidArgument("roll_over", f"{node_id} has no budget to roll over")
                if budget.start_ms < node.budget.end_ms:
                    raise InvalidArgument("budget.start", "a new period starts at or after the old one's end")
                budget = budgets.roll_over(node.budget, node.burned_mh, budget)
        outcome = await self._store.set_budget(node_id, budget, roll_over, expected_generation)
        _check_write(outcome, node_id, "node")
        return await self.get_node(node_id, "node")

    async def roll_budgets(self, now_ms: int) -> list[str]:
        """Starts the next period of every renewing budget whose expiry has passed (the leader's
        loop calls this); the nodes rolled. Idempotent: a roll-over is written only against the
        budget and burn it was computed from, so a burn arriving in between, or a second replica
        rolling the same budget, leaves it for the next round instead of losing or doubling."""
        rolled: list[str] = []
        for node in await self._store.list_nodes():
            b = node.budget
            if b is None or not budgets.due(b, now_ms):
                continue
            following = budgets.catch_up(b, node.burned_mh, now_ms)
            outcome = await self._store.roll_budget(node.id, b, node.burned_mh, following)
            if outcome.status is WriteStatus.OK:
                rolled.append(node.id)
        return rolled

    async def top_up(self, node_id: str, mh: int, expected_generation: int | None) -> TenantNode:
        """Adds hours to a node's budget; a hard-stopped budget re-opens once something is left."""
        if mh <= 0:
            raise InvalidArgument("milli_hours", "a top-up must be positive")
        node = await self.get_node(node_id, "node")
        if node.budget is None:
            raise FailedPrecondition(f"{node_id} has no budget to top up", metadata={"node": node_id})
        generation = node.generation if expected_generation is None else expected_generation
        outcome = await self._store.set_budget(node_id, budgets.top_up(node.budget, mh), False, generation)
        _check_write(outcome, node_id, "node")
        return await self.get_node(node_id, "node")

    # -- legacy institution / project API (the broker, SDK and tenants file use it) --------------

    async def upsert_institution(self, spec: InstitutionSpec) -> Institution:
        validate_institution(spec)
        (current,) = await self._store.get_nodes([spec.id])
        weight = current.weight if current is not None else 1.0
        node = NodeSpec(spec.id, NodeKind.INSTITUTION, display_name=spec.display_name, weight=weight)
        # Keeps the cohort, state and weight an admin gave it: re-applying a tenants file moves nothing.
        _check_write(await self._store.upsert_node(node, keep_parent=True, keep_state=True), spec.id, "id")
        return _institution(await self.get_node(spec.id))

    async def list_institutions(self) -> list[Institution]:
        return [_institution(n) for n in await self.list_nodes(NodeKind.INSTITUTION)]

    async def upsert_project(self, spec: ProjectSpec) -> Project:
        """`device_caps[S] = c` is the entry {nominal c, borrowing 0, lending 0, hard cap c} for
        SKU S: c devices that are the project's alone (neither lent nor drawn from the cohort's
        pool) and never more, as before cohorts existed; ancestors' hard caps still bind. It
        replaces the project's SKU entries of that form; richer entries an admin set stay."""
        spec = validate_project(spec)
        (current,) = await self._store.get_nodes([spec.id])
        if current is not None and current.kind is not NodeKind.PROJECT:
            raise InvalidArgument("id", f"{spec.id} is a {current.kind}, not a project")
        if not await self._is(spec.institution, NodeKind.INSTITUTION):
            raise _institution_not_found(spec.institution)
        node = NodeSpec(spec.id, NodeKind.PROJECT, parent=spec.institution, display_name=spec.display_name)
        entries: dict[str, QuotaEntry | None] = {sku: device_cap_entry(c) for sku, c in spec.device_caps.items()}
        if current is not None:
            for sku, entry in current.entries.items():
                if sku not in entries and sku in skus() and _is_device_cap(entry):
                    entries[sku] = None
        outcome = await self._store.upsert_node(node, keep_state=True, entries=entries)
        _check_write(outcome, spec.id, "institution")
        return await self.get_project(spec.id)

    async def upsert_project_checked(self, spec: ProjectSpec) -> Warned[Project]:
        """`upsert_project`, with a warning for each of its SKUs that is now over-committed."""
        project = await self.upsert_project(spec)
        return Warned(project, await self.capacity_warnings(c for c, n in spec.device_caps.items() if n > 0))

    async def get_project(self, project_id: str) -> Project:
        check_name("id", project_id)
        (node,) = await self._store.get_nodes([project_id])
        if node is None or node.kind is not NodeKind.PROJECT:
            raise NotFound(
                f"no project {project_id!r}", reason=Reason.PROJECT_NOT_FOUND, metadata={"project": project_id}
            )
        return _project(node)

    async def list_projects(self, institution: str = "") -> list[Project]:
        """All projects, or those of one institution (which must exist, so a typo is not an empty list)."""
        if institution:
            check_name("institution", institution)
            if not await self._is(institution, NodeKind.INSTITUTION):
                raise _institution_not_found(institution)
        return [_project(n) for n in await self.list_nodes(NodeKind.PROJECT, institution)]

    async def _is(self, node_id: str, kind: NodeKind) -> bool:
        (node,) = await self._store.get_nodes([node_id])
        return node is not None and node.kind is kind

    # -- reservations ----------------------------------------------------------------------------

    async def reserve(self, items: Sequence[ReservationRequest], now_ms: int) -> list[ReserveResult]:
        """Holds quota for each item against its project's whole path, each item on its own.

        1. Validate every item and compute what it charges (slices by their real size); one bad
           item refuses the whole call before anything is written.
        2. One store call applies the batch atomically (idempotent per grant id).
        3. Reservations whose TTL passed still count until swept, which can refuse an item that
           would fit. Only then is it worth a sweep: if it released anything, the refused items
           are tried once more. Counting unswept reservations is the safe side of the race: a
           project can be refused a moment too early, never let over a limit.
        """
        charged = validate_reservations(items)
        if not charged:
            return []
        outcomes = await self._store.reserve(charged, now_ms)
        refused = [i for i, o in enumerate(outcomes) if o.status is ReserveStatus.QUOTA_EXCEEDED]
        if refused and await self._store.sweep(now_ms, self._sweep_batch):
            retried = await self._store.reserve([charged[i] for i in refused], now_ms)
            for i, outcome in zip(refused, retried, strict=True):
                outcomes[i] = outcome
        return [refusal(item, o) for item, o in zip(items, outcomes, strict=True)]

    async def check_reserve(self, items: Sequence[ReservationRequest], now_ms: int) -> list[ReserveResult]:
        """What `reserve` would answer each item now, nothing written: validated as `reserve`
        validates (grant ids aside, which are ignored and may be empty), answered by the same
        evaluation in the store, refusals and warnings worded by the same function. Each item is
        answered against the tree as it is, not with the items before it held. Lapsed reservations
        are not swept (that is a write): until the sweep loop releases them they still count, so a
        check may refuse a moment early where `reserve` would sweep and admit."""
        charged = validate_reservations(items, grant_ids=False)
        if not charged:
            return []
        outcomes = await self._store.check(charged, now_ms)
        return [refusal(item, o) for item, o in zip(items, outcomes, strict=True)]

    async def commit(self, grant_ids: Sequence[str], now_ms: int) -> list[GrantIdResult]:
        validate_grant_ids(grant_ids)
        if not grant_ids:
            return []
        statuses = await self._store.commit(grant_ids, now_ms)
        return [GrantIdResult(g, _commit_error(g, s)) for g, s in zip(grant_ids, statuses, strict=True)]

    async def cancel(self, grant_ids: Sequence[str], now_ms: int) -> list[GrantIdResult]:
        """Ends reservations in either phase; an unknown or already cancelled grant id is fine."""
        validate_grant_ids(grant_ids)
        if grant_ids:
            await self._store.cancel(grant_ids, now_ms)
        return [GrantIdResult(g, None) for g in grant_ids]

    async def list_reservations(self, now_ms: int) -> list[HeldReservation]:
        """Everything held now. Lapsed reservations are swept first, so the reconciler does not
        act on reservations that are about to vanish anyway."""
        await self.sweep(now_ms)
        return await self._store.list_reservations()

    async def sweep(self, now_ms: int) -> int:
        """Releases every reservation whose TTL passed by `now_ms`; how many were released."""
        released = 0
        while True:
            batch = await self._store.sweep(now_ms, self._sweep_batch)
            released += len(batch)
            if len(batch) < self._sweep_batch:
                return released

    # -- budgets and fair share ------------------------------------------------------------------

    async def record_burn(self, events: Sequence[BurnEvent], now_ms: int) -> list[bool]:
        """Applies accounting's burn (idempotent by event id); per event whether it was new.
        An event for an unknown project is refused as a whole before anything is written."""
        validate_burn(events)
        if not events:
            return []
        projects = sorted({e.project for e in events})
        for pid, node in zip(projects, await self._store.get_nodes(projects), strict=True):
            if node is None or node.kind is not NodeKind.PROJECT:
                index = next(i for i, e in enumerate(events) if e.project == pid)
                raise NotFound(
                    f"events[{index}].project: no project {pid!r}",
                    reason=Reason.PROJECT_NOT_FOUND,
                    metadata={"project": pid, "field": f"events[{index}].project"},
                )
        applied = await self._store.burn(events, now_ms, self._fair.half_life_ms)
        return [a == 1 for a in applied]

    async def standings(self, node_ids: Sequence[str], now_ms: int) -> list[Standing]:
        """Entitlement, use, borrowed, budget and fair share of each node (all nodes when empty)."""
        nodes = await self._store.list_nodes()
        share = self._shares(nodes, now_ms)
        by_id = {n.id: n for n in nodes}
        wanted = list(node_ids) or [n.id for n in nodes]
        out: list[Standing] = []
        for i, nid in enumerate(wanted):
            if nid not in by_id:
                check_node_id(f"nodes[{i}]", nid)
                raise _not_found(nid, f"nodes[{i}]")
            n = by_id[nid]
            left = exhaust = None
            if n.budget is not None:
                left = budgets.left(n.budget, n.burned_mh, now_ms)
                exhaust = budgets.projected_exhaustion_ms(n.budget, n.burned_mh, now_ms)
            out.append(Standing(n, share.get(nid, 0.0), left, exhaust))
        return out

    async def fair_share_order(self, pending: Sequence[fairshare.Pending], now_ms: int) -> list[str]:
        """The order in which the broker should serve pending requests (weighted DRF with history)."""
        if len(pending) > 100_000:
            raise InvalidArgument("requests", "at most 100000 requests per call")
        nodes = await self._store.list_nodes()
        return self.order_on(nodes, pending, now_ms)

    def order_on(self, nodes: Sequence[TenantNode], pending: Sequence[fairshare.Pending], now_ms: int) -> list[str]:
        """`fair_share_order` on a snapshot already read (the benchmark times this part)."""
        share = self._shares(nodes, now_ms)
        institution_of = {n.id: n.parent for n in nodes if n.kind is NodeKind.PROJECT}
        weight = {n.id: n.weight for n in nodes}
        return fairshare.order(pending, institution_of, share, weight, _capacity(nodes))

    def _shares(self, nodes: Sequence[TenantNode], now_ms: int) -> dict[str, float]:
        peers = [
            fairshare.ShareNode(
                n.id,
                n.parent if n.kind is NodeKind.PROJECT else "",
                n.weight,
                n.usage,
                fairshare.decayed(n.history_mh, n.history_at_ms, now_ms, self._fair.half_life_ms),
            )
            for n in nodes
            if n.kind in (NodeKind.INSTITUTION, NodeKind.PROJECT)
        ]
        return fairshare.shares(peers, _capacity(nodes), self._fair.history_weight)


def pending_request(request_id: str, project: str, sku: str, shape: str, count: int) -> fairshare.Pending:
    return fairshare.Pending(request_id, project, shared_charges(sku, shape, count))


def _capacity(nodes: Sequence[TenantNode]) -> dict[str, int]:
    """What shares are fractions of, per resource: the larger of the roots' subtree quota and what
    is held now (where nobody has quota, use is all there is to compare), and at least one device
    so that no share divides by zero."""
    quota: dict[str, int] = {}
    held: dict[str, int] = {}
    for n in nodes:
        if n.parent:
            continue
        for resource, units in n.usage.items():
            held[resource] = held.get(resource, 0) + units
        for cls, q in n.subtree_quota.items():
            for resource in resources_of(cls):
                quota[resource] = quota.get(resource, 0) + q
    return {r: max(quota.get(r, 0), held.get(r, 0), SCALE) for r in {*quota, *held, ACCEL}}


def _is_device_cap(e: QuotaEntry) -> bool:
    return e.nominal == e.hard_cap and e.borrowing_limit.units == 0 and e.lending_limit.units == 0


def _institution(node: TenantNode) -> Institution:
    return Institution(id=node.id, display_name=node.display_name, generation=node.generation)


def _project(node: TenantNode) -> Project:
    caps = {
        cls: e.hard_cap.finite() // SCALE
        for cls, e in node.entries.items()
        if cls in skus() and not e.hard_cap.unlimited
    }
    used = {sku: -(-units // SCALE) for sku, units in node.usage.items() if sku in skus() and units > 0}
    return Project(
        id=node.id,
        institution=node.parent,
        display_name=node.display_name,
        device_caps=caps,
        devices_in_use=used,
        generation=node.generation,
    )


def _not_found(node_id: str, field: str) -> NotFound:
    return NotFound(f"no tenant {node_id!r} ({field})", reason=Reason.TENANT_NOT_FOUND, metadata={"tenant": node_id})


def _institution_not_found(institution: str) -> NotFound:
    return NotFound(
        f"no institution {institution!r}",
        reason=Reason.INSTITUTION_NOT_FOUND,
        metadata={"institution": institution},
    )


def _check_write(outcome: WriteOutcome, node_id: str, parent_field: str) -> None:
    match outcome.status:
        case WriteStatus.OK:
            return
        case WriteStatus.CONFLICT:
            raise Conflict(
                f"{node_id} changed since it was read (now at generation {outcome.generation}); re-read and retry",
                metadata={"tenant": node_id, "generation": outcome.generation},
            )
        case WriteStatus.NOT_FOUND | WriteStatus.PARENT_NOT_FOUND:
            raise _not_found(node_id, parent_field)
        case WriteStatus.KIND_MISMATCH:
            raise InvalidArgument("kind", f"{node_id} exists as a {outcome.detail}")
        case WriteStatus.BAD_PARENT:
            raise InvalidArgument(parent_field, f"cannot be a {outcome.detail or 'root'} for {node_id}")
        case WriteStatus.CYCLE:
            raise InvalidArgument(parent_field, f"would make {node_id} its own ancestor (a cycle in the tree)")


def _commit_error(grant_id: str, status: CommitStatus) -> SlicebrokerError | None:
    match status:
        case CommitStatus.OK:
            return None
        case CommitStatus.NOT_FOUND:
            return NotFound(
                f"grant {grant_id} holds no reservation (never reserved, or cancelled)",
                reason=Reason.RESERVATION_NOT_FOUND,
                metadata={"grant_id": grant_id},
            )
        case CommitStatus.EXPIRED:
            return FailedPrecondition(
                f"the reservation of grant {grant_id} lapsed before it was committed; its devices were returned",
                reason=Reason.RESERVATION_EXPIRED,
                metadata={"grant_id": grant_id},
            )
