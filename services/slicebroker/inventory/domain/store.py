"""What the inventory's domain needs from storage. The Redis adapter implements it; every write
method is one atomic step (one Lua script per call or per chunk), so the domain never sees a
half-done write."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from slicebroker.inventory.domain.model import (
    Change,
    ClaimOutcome,
    DeviceClaim,
    LifecycleOutcome,
    Node,
    NodeSpec,
    RegisterOutcome,
    ReleaseOutcome,
    SkuCapacity,
)


class InventoryStore(Protocol):
    async def register(self, nodes: Sequence[NodeSpec]) -> RegisterOutcome:
        """Creates or updates `nodes`. Refuses (writes nothing, reports the node) when one would
        change its SKU or device count while it has held devices."""
        ...

    async def get_node(self, node_id: str) -> Node | None: ...

    async def list_nodes(self, sku: str, after: str, limit: int) -> tuple[list[Node], str]:
        """Up to `limit` nodes with ids after `after` (all of them for ""), in id order, only those
        of `sku` unless it is ""; and the id the next page starts after ("" when none follows)."""
        ...

    async def capacity(self) -> dict[str, SkuCapacity]:
        """The counters per SKU that has ever had a node."""
        ...

    async def claim(self, claims: Sequence[DeviceClaim]) -> list[ClaimOutcome]:
        """Applies the claims in order, each all-or-nothing; one outcome per claim."""
        ...

    async def release(self, grant_ids: Sequence[str]) -> ReleaseOutcome:
        """Frees every device the grants hold; unknown grants are no-ops."""
        ...

    async def holders(self) -> list[str]:
        """Grant ids that hold at least one device, sorted."""
        ...

    async def get_nodes(self, node_ids: Sequence[str]) -> dict[str, Node | None]:
        """Each node as it is now; None for one that does not exist (any more)."""
        ...

    async def leaf_members(self, leaf: str) -> list[str]:
        """Ids of the nodes under `leaf`, sorted."""
        ...

    async def revision(self) -> int:
        """The global revision: the number of node changes ever logged."""
        ...

    async def oldest_revision(self) -> int:
        """The first revision still in the bounded change log (revision + 1 when it is empty)."""
        ...

    async def changes_after(self, revision: int, block_ms: int, limit: int) -> list[Change]:
        """Up to `limit` logged changes after `revision`, in order, waiting up to `block_ms` for one."""
        ...

    async def lifecycle(
        self, op: str, node_id: str, expected_generation: int, now_ms: int, args: Sequence[str] = ()
    ) -> LifecycleOutcome:
        """One atomic lifecycle write ("state", "health", "heartbeat", "remove") on one node,
        compare-and-increment on its generation (0: unchecked)."""
        ...
