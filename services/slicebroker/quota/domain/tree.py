"""The quota math: pure recursive functions over a snapshot of the tenant tree (after Kueue's
resource nodes). `storage/lua/quota.lua` keeps the same quantities incrementally and must agree
with these functions; the integration tests replay random sequences through both.

A node (cohort, institution, project) has, per resource class, a `QuotaEntry`:

    nominal          guaranteed amount the node brings to its parent's pool
    borrowing_limit  most it may use beyond its own subtree quota, taken from the parent's pool
    lending_limit    most of its subtree quota it lends to the pool (the rest is kept for itself)
    hard_cap         most its subtree may hold, whatever is idle elsewhere

Derived, per node and class (as in Kueue):

    subtree_quota Q(n) = nominal(n) + Σ_children (Q(c) − G(c))        what n has, lent parts of children included
    guaranteed   G(n) = max(0, Q(n) − lending_limit(n))              never lent (0 without a lending limit)

and per node and resource, the usage seen by the parent's pool:

    pool_usage   K(n) = direct(n) + Σ_children max(0, K(c) − G(c))
    available    A(root) = Q − K;  A(n) = max(0, G − K) + min(A(parent), Q − G − max(0, K − G) + borrowing_limit)

A reservation refused because the root's pool is used up (`Limit.NOMINAL`) is *reclaimable* when
it is within the requester's own quota all along its path: with it added, no node below the root
would use more than its subtree quota (K ≤ Q, so none would borrow). Then the pool is short only
because others borrow what this subtree lends, and that is taken back by preempting borrowers
(Kueue's reclaimWithinCohort with its default `Any`: guaranteed and standard requests reclaim;
preemptible ones never do, since what they could reclaim from may be their equals).

A class is enforced in a tree once any node of that tree (the root and all under it) has an entry
for it; a reservation must then fit A(project) and every hard cap on its path. A SKU class nobody
has an entry for is not allowed at all (a SKU nobody was given is a quota of 0); a family or the
normalised unit nobody has an entry for is not limited.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from slicebroker.quota.domain.amount import UNLIMITED, ZERO, Amount
from slicebroker.quota.domain.resources import class_of, skus


class Limit(StrEnum):
    """Which limit refused a reservation (sent as `limit` in the refusal's metadata)."""

    HARD_CAP = "hard_cap"
    BORROWING_LIMIT = "borrowing_limit"
    # Nothing left to borrow: the pool (nominal quotas and what others lend) is used up.
    NOMINAL = "nominal"
    NO_QUOTA = "no_quota"


class Priority(StrEnum):
    """Priority classes: whether a grant may borrow, and whether it may be preempted."""

    GUARANTEED = "guaranteed"  # within nominal only; never preempted
    STANDARD = "standard"  # may borrow; preemptible while it borrows
    PREEMPTIBLE = "preemptible"  # may borrow; always preemptible

    @property
    def may_borrow(self) -> bool:
        return self is not Priority.GUARANTEED

    @property
    def may_reclaim(self) -> bool:
        """Whether a request of this class, within its own quota, may take back what borrowers hold."""
        return self is not Priority.PREEMPTIBLE

    def preemptible(self, borrowing: bool) -> bool:
        return self is Priority.PREEMPTIBLE or (self is Priority.STANDARD and borrowing)


@dataclass(frozen=True, slots=True)
class QuotaEntry:
    nominal: Amount = ZERO
    borrowing_limit: Amount = UNLIMITED
    lending_limit: Amount = UNLIMITED
    hard_cap: Amount = UNLIMITED


def device_cap_entry(devices: int) -> QuotaEntry:
    """The entry a legacy per-SKU device cap stands for: a private cap, neither lent nor borrowing."""
    cap = Amount.of(devices)
    return QuotaEntry(nominal=cap, borrowing_limit=ZERO, lending_limit=ZERO, hard_cap=cap)


@dataclass(frozen=True, slots=True)
class QuotaNode:
    id: str
    parent: str = ""
    entries: Mapping[str, QuotaEntry] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Refusal:
    limit: Limit
    node: str
    resource: str
    requested: int
    available: int
    # NOMINAL only: the request is within its own quota along its path (see the module docstring);
    # `node` (the root) is the pool whose borrowers may be preempted for it.
    reclaimable: bool = False

    @property
    def short_by(self) -> int:
        return self.requested - self.available


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The tree and its direct usage: (node, resource) → units held by reservations of that node."""

    nodes: Mapping[str, QuotaNode]
    usage: Mapping[tuple[str, str], int] = field(default_factory=dict)

    def children(self, node: str) -> list[str]:
        return [n.id for n in self.nodes.values() if n.parent == node]

    def path(self, node: str) -> list[str]:
        """`node` and its ancestors, up to its root."""
        out = [node]
        while parent := self.nodes[out[-1]].parent:
            out.append(parent)
        return out

    def entry(self, node: str, cls: str) -> QuotaEntry | None:
        return self.nodes[node].entries.get(cls)

    def charged(self, node: str, charges: Mapping[str, int], sign: int = 1) -> Snapshot:
        """The snapshot with `charges` added to (sign 1) or taken from (sign -1) `node`'s usage."""
        usage = dict(self.usage)
        for resource, units in charges.items():
            usage[(node, resource)] = usage.get((node, resource), 0) + sign * units
        return replace(self, usage=usage)


def subtree_quota(s: Snapshot, node: str, cls: str) -> int:
    entry = s.entry(node, cls)
    own = entry.nominal.finite() if entry else 0
    return own + sum(subtree_quota(s, c, cls) - guaranteed(s, c, cls) for c in s.children(node))


def guaranteed(s: Snapshot, node: str, cls: str) -> int:
    entry = s.entry(node, cls)
    if entry is None or entry.lending_limit.units is None:
        return 0
    return max(0, subtree_quota(s, node, cls) - entry.lending_limit.units)


def pool_usage(s: Snapshot, node: str, resource: str) -> int:
    cls = class_of(resource)
    return s.usage.get((node, resource), 0) + sum(
        max(0, pool_usage(s, c, resource) - guaranteed(s, c, cls)) for c in s.children(node)
    )


def subtree_usage(s: Snapshot, node: str, resource: str) -> int:
    return s.usage.get((node, resource), 0) + sum(subtree_usage(s, c, resource) for c in s.children(node))


def entries_in_tree(s: Snapshot, node: str, cls: str) -> int:
    return (cls in s.nodes[node].entries) + sum(entries_in_tree(s, c, cls) for c in s.children(node))


def borrowing_limit(s: Snapshot, node: str, cls: str, may_borrow: bool) -> Amount:
    entry = s.entry(node, cls)
    if entry is None:
        return UNLIMITED
    return entry.borrowing_limit if may_borrow else ZERO


def available(s: Snapshot, node: str, resource: str, may_borrow: bool = True) -> tuple[int, str]:
    """Units `node` may still take of `resource`, and the node whose borrowing limit binds ("" when
    the root's pool binds)."""
    cls = class_of(resource)
    q, g, k = subtree_quota(s, node, cls), guaranteed(s, node, cls), pool_usage(s, node, resource)
    parent = s.nodes[node].parent
    if not parent:
        return q - k, ""
    from_parent, binding = available(s, parent, resource, may_borrow)
    limit = borrowing_limit(s, node, cls, may_borrow)
    if limit.units is not None:
        by_limit = q - g - max(0, k - g) + limit.units
        if by_limit < from_parent:
            from_parent, binding = by_limit, node
    return max(0, g - k) + from_parent, binding


def check(
    s: Snapshot, node: str, charges: Mapping[str, int], may_borrow: bool = True, may_reclaim: bool = False
) -> Refusal | None:
    """Why `charges` may not be added to `node`, or None when they fit. Hard caps first, then the
    borrowing rules, resources in the order given. `may_reclaim`: a pool refusal says whether the
    request is within its own quota (`Refusal.reclaimable`)."""
    path = s.path(node)
    root = path[-1]
    for resource, units in charges.items():
        cls = class_of(resource)
        if not entries_in_tree(s, root, cls):
            if cls in skus():
                return Refusal(Limit.NO_QUOTA, node, resource, units, 0)
            continue
        for n in path:
            entry = s.entry(n, cls)
            if entry is not None and entry.hard_cap.units is not None:
                left = entry.hard_cap.units - subtree_usage(s, n, resource)
                if units > left:
                    return Refusal(Limit.HARD_CAP, n, resource, units, max(0, left))
        left, binding = available(s, node, resource, may_borrow)
        if units > left:
            if binding:
                return Refusal(Limit.BORROWING_LIMIT, binding, resource, units, max(0, left))
            reclaim = may_reclaim and within_own_quota(s, node, resource, units)
            return Refusal(Limit.NOMINAL, root, resource, units, max(0, left), reclaim)
    return None


def borrowing(s: Snapshot, node: str, resource: str) -> bool:
    """True when `node` (or an ancestor) uses more than its own subtree quota of `resource`: some
    of what it holds is lent by others, and may be reclaimed."""
    cls = class_of(resource)
    return any(pool_usage(s, n, resource) > subtree_quota(s, n, cls) for n in s.path(node) if s.nodes[n].parent)


def within_own_quota(s: Snapshot, node: str, resource: str, units: int) -> bool:
    """True when `units` more of `resource` at `node` leave every node below the root on its path
    within its subtree quota: nobody on the path would borrow."""
    return not borrowing(s.charged(node, {resource: units}), node, resource)


def borrowed(s: Snapshot, node: str, resource: str) -> int:
    """How much of `resource` `node`'s subtree holds beyond its own subtree quota."""
    return max(0, pool_usage(s, node, resource) - subtree_quota(s, node, class_of(resource)))


def fits_all(s: Snapshot, resources: Sequence[str]) -> bool:
    """The invariants every reachable state keeps (the property tests' oracle): no usage below 0,
    none over a hard cap, no node over its subtree quota plus borrowing limit, no root pool overdrawn."""
    for node in s.nodes:
        for resource in resources:
            cls = class_of(resource)
            if s.usage.get((node, resource), 0) < 0:
                return False
            entry = s.entry(node, cls)
            used = subtree_usage(s, node, resource)
            if entry and entry.hard_cap.units is not None and used > entry.hard_cap.units:
                return False
            k, q = pool_usage(s, node, resource), subtree_quota(s, node, cls)
            limit = borrowing_limit(s, node, cls, True)
            if s.nodes[node].parent and limit.units is not None and k > q + limit.units:
                return False
            root_enforced = entries_in_tree(s, s.path(node)[-1], cls) > 0
            if not s.nodes[node].parent and root_enforced and k > q:
                return False
    return True
