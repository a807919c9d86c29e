"""The inventory's Redis key layout — the only place its key strings are built.

Every key starts with "{<prefix>}:" so that all of them hash to one Redis Cluster slot, which the
multi-key Lua scripts need. With the default prefix "sb:inventory":

- `{sb:inventory}:node:<node id>` (hash) one node: `site`, `hall`, `pod`, `rack`, `nvl` (NVLink
  domain, "" for the node itself), `leaf`, `spine`, `sku`, `kind`, `n` (device count), `gen`
  (generation), `sched` ("1"/"0"), `state` ("active"/"cordoned"/"draining"), `hb` (last heartbeat,
  epoch ms), `held` (devices held whole), `sliced` (devices carrying slices) and one field per
  device named like the device ("gpu0" … "gpu7"); a device's value is "" when free, the holding
  grant id when held whole, "*" when it carries partitions or shares, prefixed with "!" when the
  device is unhealthy. Slices add `u|<device>` ("<slice kind> <compute used> <memory used>") and
  `s|<device>|<grant id>` (the grant's slices there, "<kind>:<profile>:<compute>:<memory>" joined
  by spaces). Host resources: `cpu` / `mem` (capacity offered to grants, milli-cores / MiB; absent
  or 0: none) and `cpu_used` / `mem_used` (held by grants). `mig`: the node's fixed MIG layout,
  "<profile>:<instances>" joined by spaces, sorted by profile (absent or "": none).
- `{sb:inventory}:nodes_by_leaf` (sorted set, all scores 0) "<leaf>|<node id>", for "nodes under
  the same leaf".
- `{sb:inventory}:rev` (string) the global revision: incremented once per node change.
- `{sb:inventory}:changes` (stream) the bounded change log: entry id "<revision>-0", field `node`.
- `{sb:inventory}:nodes` (sorted set, all scores 0) every node id, for id-ordered pages.
- `{sb:inventory}:nodes_by_sku` (sorted set, all scores 0) "<sku>|<node id>", for pages of one SKU.
- `{sb:inventory}:capacity` (hash) counters "<sku>|nodes", "<sku>|devices", "<sku>|free",
  "<sku>|unhealthy", kept by the scripts so capacity is one read.
- `{sb:inventory}:grant:<grant id>` (hash) what a grant holds: node id -> space-separated device
  names ("gpu0 gpu3"), slice tokens ("gpu1#mig#3g.40gb#3#4") and host tokens ("~<cpu>:<mem>");
  deleted on release.
- `{sb:inventory}:holders` (set) grant ids that hold at least one device.
"""

from __future__ import annotations

# Separates SKU and node id in `nodes_by_sku` members; SKU names and node ids never contain it.
SKU_SEPARATOR = "|"
# Sorts after every character a node id may contain, so "(<sku>|~" bounds one SKU's members.
AFTER_NAMES = "~"


class InventoryKeys:
    def __init__(self, prefix: str) -> None:
        self._p = "{" + prefix + "}:"
        self.nodes = self._p + "nodes"
        self.nodes_by_sku = self._p + "nodes_by_sku"
        self.capacity = self._p + "capacity"
        self.holders = self._p + "holders"
        self.nodes_by_leaf = self._p + "nodes_by_leaf"
        self.revision = self._p + "rev"
        self.changes = self._p + "changes"

    def node(self, node_id: str) -> str:
        return self._p + "node:" + node_id

    def grant(self, grant_id: str) -> str:
        return self._p + "grant:" + grant_id
