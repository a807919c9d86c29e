"""Every Redis key (and hash field name) the quota service uses; the only place they are built.

All keys share the hash tag "{<prefix>}" so that they live in one Redis Cluster slot, which the
multi-key Lua script needs.

    {p}:tree          hash  the tenant tree, quota entries, derived quota and usage, budgets, burn,
                            fair-share history; fields "<what>|<node>[|<class or resource>]"
                            (see storage/lua/tree.lua)
    {p}:nodes         zset  node ids (score 0: listed in name order)
    {p}:reservations  hash  grant id -> reservation record (see `records`)
    {p}:expiries      zset  grant id -> expiry (epoch ms) of reservations not yet committed
    {p}:lapsed        zset  grant id -> when its reservation lapsed (epoch ms), kept for an hour so
                            a late Commit says RESERVATION_EXPIRED whether or not the sweep got there
    {p}:burns         zset  burn event id -> when applied (epoch ms), to apply each event once
    {p}:leader        string  the leader lock of the budget roll-over loop (runtime.leader)

Everything a write touches lives in these fixed keys, so the script knows its keys before the call
(Lua must not build key names) while walking the tree through hash fields.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QuotaKeys:
    prefix: str

    def _key(self, *parts: str) -> str:
        return ":".join((f"{{{self.prefix}}}", *parts))

    @property
    def tree(self) -> str:
        return self._key("tree")

    @property
    def nodes(self) -> str:
        return self._key("nodes")

    @property
    def reservations(self) -> str:
        return self._key("reservations")

    @property
    def expiries(self) -> str:
        return self._key("expiries")

    @property
    def lapsed(self) -> str:
        return self._key("lapsed")

    @property
    def burns(self) -> str:
        return self._key("burns")

    @property
    def leader(self) -> str:
        return self._key("leader")

    @property
    def all(self) -> list[str]:
        """The keys tree.lua takes, in its KEYS order."""
        return [self.tree, self.reservations, self.expiries, self.lapsed, self.nodes, self.burns]


def field(what: str, node: str, item: str = "") -> str:
    """A tree-hash field: "<what>|<node>" or "<what>|<node>|<class or resource>"."""
    return f"{what}|{node}|{item}" if item else f"{what}|{node}"
