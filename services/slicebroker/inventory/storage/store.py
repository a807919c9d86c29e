"""The inventory store on Redis: node hashes, the id indexes, capacity counters and grant records
(layout in `keys.py`), written only by the Lua scripts in `lua/` so that every write is atomic."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from slicebroker.core.errors import Unavailable
from slicebroker.inventory.domain.model import (
    Change,
    ClaimFailure,
    ClaimOutcome,
    Device,
    DeviceClaim,
    LifecycleFailure,
    LifecycleOutcome,
    Node,
    NodeGeneration,
    NodeSpec,
    NodeState,
    RegisterOutcome,
    ReleaseOutcome,
    SkuCapacity,
    SliceAllocation,
    SliceKind,
)
from slicebroker.inventory.storage.keys import AFTER_NAMES, SKU_SEPARATOR, InventoryKeys
from slicebroker.runtime.redis import Scripts

SCRIPTS = ("register", "claim", "release", "lifecycle")


class RedisInventoryStore:
    def __init__(
        self,
        client: aioredis.Redis,
        key_prefix: str,
        *,
        register_chunk_nodes: int = 500,
        release_attempts: int = 8,
        remembered_grants: int = 100_000,
        change_log_length: int = 100_000,
    ) -> None:
        self._client = client
        self.keys = InventoryKeys(key_prefix)
        self.scripts = Scripts(client, "slicebroker.inventory.storage.lua", SCRIPTS)
        self._chunk = register_chunk_nodes
        self._release_attempts = release_attempts
        # Grant id -> node ids it holds devices on, as claimed through this process (oldest first).
        # Only a guess that spares Release a read: release.lua checks it against the grant's record.
        self._holdings: dict[str, tuple[str, ...]] = {}
        self._holdings_max = remembered_grants
        self._log_len = change_log_length

    async def load_scripts(self) -> None:
        await self.scripts.load()

    # -- registration ---------------------------------------------------------------------------

    async def register(self, nodes: Sequence[NodeSpec]) -> RegisterOutcome:
        if not nodes:
            return RegisterOutcome(0, 0)
        chunks = [nodes[i : i + self._chunk] for i in range(0, len(nodes), self._chunk)]
        if len(chunks) > 1:
            # Each chunk's script is atomic, the whole load is not: check every chunk first (one
            # round trip) so that a refusal normally writes nothing. Only a claim landing on a node
            # that is being reshaped, between the check and the apply, can still stop a load midway.
            checked = await self._run_chunks("check", chunks)
            if checked.refused is not None:
                return checked
        return await self._run_chunks("apply", chunks)

    async def _run_chunks(self, mode: str, chunks: Sequence[Sequence[NodeSpec]]) -> RegisterOutcome:
        calls = []
        for chunk in chunks:
            keys = [
                self.keys.nodes,
                self.keys.nodes_by_sku,
                self.keys.capacity,
                self.keys.nodes_by_leaf,
                self.keys.revision,
                self.keys.changes,
            ]
            args: list[Any] = [mode, self._log_len]
            for node in chunk:
                keys.append(self.keys.node(node.id))
                args += (node.id, node.site, node.rack, node.sku, str(node.kind), node.device_count)
                args += (
                    node.hall,
                    node.pod,
                    node.nvlink_domain,
                    node.leaf,
                    node.spine,
                    node.cpu_milli,
                    node.memory_mib,
                    " ".join(f"{profile}:{count}" for profile, count in node.mig_layout),
                )
            calls.append(("register", keys, args))
        replies = await self.scripts.many(calls)
        registered = unchanged = offset = 0
        for chunk, reply in zip(chunks, replies, strict=True):
            if reply[0] == "HELD":
                refused = offset + int(reply[1]) - 1
                return RegisterOutcome(registered, unchanged, refused=refused, refused_held=int(reply[2]))
            registered += int(reply[1])
            unchanged += int(reply[2])
            offset += len(chunk)
        return RegisterOutcome(registered, unchanged)

    # -- reads ----------------------------------------------------------------------------------

    async def get_node(self, node_id: str) -> Node | None:
        fields: dict[str, str] = await self._client.hgetall(self.keys.node(node_id))
        return _node(node_id, fields) if fields else None

    async def list_nodes(self, sku: str, after: str, limit: int) -> tuple[list[Node], str]:
        if sku:
            prefix = sku + SKU_SEPARATOR
            low = "(" + prefix + after if after else "(" + prefix
            members = await self._client.zrangebylex(
                self.keys.nodes_by_sku, low, "(" + prefix + AFTER_NAMES, start=0, num=limit + 1
            )
            ids = [member[len(prefix) :] for member in members]
        else:
            ids = await self._client.zrangebylex(
                self.keys.nodes, "(" + after if after else "-", "+", start=0, num=limit + 1
            )
        ids, next_after = ids[:limit], ids[limit - 1] if len(ids) > limit else ""
        async with self._client.pipeline(transaction=False) as pipe:
            for node_id in ids:
                pipe.hgetall(self.keys.node(node_id))
            hashes = await pipe.execute()
        # A node reshaped between the two reads is shown as it is now; ids are never deleted.
        nodes = [_node(node_id, fields) for node_id, fields in zip(ids, hashes, strict=True) if fields]
        return nodes, next_after

    async def capacity(self) -> dict[str, SkuCapacity]:
        raw: dict[str, str] = await self._client.hgetall(self.keys.capacity)
        counters: dict[str, dict[str, int]] = {}
        for field, value in raw.items():
            sku, _, metric = field.rpartition(SKU_SEPARATOR)
            counters.setdefault(sku, {})[metric] = int(value)
        return {
            sku: SkuCapacity(
                sku=sku,
                nodes=c.get("nodes", 0),
                devices=c.get("devices", 0),
                free=c.get("free", 0),
                unhealthy=c.get("unhealthy", 0),
            )
            for sku, c in counters.items()
        }

    async def holders(self) -> list[str]:
        return sorted(await self._client.smembers(self.keys.holders))

    async def get_nodes(self, node_ids: Sequence[str]) -> dict[str, Node | None]:
        async with self._client.pipeline(transaction=False) as pipe:
            for node_id in node_ids:
                pipe.hgetall(self.keys.node(node_id))
            hashes = await pipe.execute()
        return {node_id: _node(node_id, h) if h else None for node_id, h in zip(node_ids, hashes, strict=True)}

    async def leaf_members(self, leaf: str) -> list[str]:
        prefix = leaf + SKU_SEPARATOR
        members = await self._client.zrangebylex(self.keys.nodes_by_leaf, "[" + prefix, "(" + prefix + AFTER_NAMES)
        return [m[len(prefix) :] for m in members]

    # -- the change log -------------------------------------------------------------------------

    async def revision(self) -> int:
        return int(await self._client.get(self.keys.revision) or 0)

    async def oldest_revision(self) -> int:
        """The first revision still in the change log; revision + 1 when the log is empty."""
        first = await self._client.xrange(self.keys.changes, "-", "+", count=1)
        if not first:
            return await self.revision() + 1
        return int(first[0][0].split("-")[0])

    async def changes_after(self, revision: int, block_ms: int, limit: int) -> list[Change]:
        """Up to `limit` changes after `revision`, waiting up to `block_ms` for the first one."""
        reply = await self._client.xread({self.keys.changes: f"{revision}-0"}, count=limit, block=block_ms or None)
        if not reply:
            return []
        return [Change(int(entry_id.split("-")[0]), fields["node"]) for entry_id, fields in reply[0][1]]

    # -- lifecycle ------------------------------------------------------------------------------

    async def lifecycle(
        self, op: str, node_id: str, expected_generation: int, now_ms: int, args: Sequence[str] = ()
    ) -> LifecycleOutcome:
        keys = [
            self.keys.node(node_id),
            self.keys.nodes,
            self.keys.nodes_by_sku,
            self.keys.nodes_by_leaf,
            self.keys.capacity,
            self.keys.revision,
            self.keys.changes,
        ]
        reply = await self.scripts("lifecycle", keys, [op, node_id, expected_generation, now_ms, self._log_len, *args])
        status = reply[0]
        return LifecycleOutcome(
            failure=None if status == "OK" else LifecycleFailure(status),
            generation=int(reply[1]),
            detail=tuple(reply[2:]),
        )

    # -- claim and release ----------------------------------------------------------------------

    async def claim(self, claims: Sequence[DeviceClaim]) -> list[ClaimOutcome]:
        keys = [self.keys.holders, self.keys.capacity, self.keys.revision, self.keys.changes]
        args: list[Any] = [len(claims), self._log_len]
        for claim in claims:
            keys.append(self.keys.grant(claim.grant_id))
            args += (claim.grant_id, len(claim.nodes))
            for node in claim.nodes:
                keys.append(self.keys.node(node.node_id))
                names = node.device_names
                args += (node.node_id, node.expected_generation, node.cpu_milli, node.memory_mib)
                args += (len(names), *names, len(node.slices))
                if node.slices:
                    args.append(node.sku)
                    for piece in node.slices:
                        args += (
                            piece.device_name,
                            piece.kind,
                            piece.profile,
                            piece.compute,
                            piece.memory,
                            piece.capacity_compute,
                            piece.capacity_memory,
                        )
        replies = await self.scripts("claim", keys, args)
        outcomes = []
        for claim, reply in zip(claims, replies, strict=True):
            status = reply[0]
            generations = tuple(
                NodeGeneration(node.node_id, int(gen)) for node, gen in zip(claim.nodes, reply[3:], strict=True) if gen
            )
            if status == "OK":
                self._remember(claim)
            outcomes.append(
                ClaimOutcome(
                    grant_id=claim.grant_id,
                    failure=None if status == "OK" else ClaimFailure(status),
                    node_index=int(reply[1]) - 1,
                    device_index=int(reply[2]) - 1,
                    generations=generations,
                )
            )
        return outcomes

    async def release(self, grant_ids: Sequence[str]) -> ReleaseOutcome:
        # The script must be given the node keys of every grant, so:
        # 1. Guess them from what this process saw the grant claim; read the grant's record
        #    (one pipelined round trip) for grants it did not see.
        # 2. Run the script. It checks the guess against the record and answers STALE, writing
        #    nothing, if a grant holds devices on a node not passed (claimed through another replica,
        #    or a claim raced this release): then read every grant and run it again.
        guesses: dict[str, tuple[str, ...] | None] = {g: self._holdings.get(g) for g in grant_ids}
        for _ in range(self._release_attempts):
            unknown = [g for g, nodes in guesses.items() if nodes is None]
            if unknown:
                async with self._client.pipeline(transaction=False) as pipe:
                    for grant_id in unknown:
                        pipe.hkeys(self.keys.grant(grant_id))
                    for grant_id, node_ids in zip(unknown, await pipe.execute(), strict=True):
                        guesses[grant_id] = tuple(node_ids)
            keys = [self.keys.holders, self.keys.capacity, self.keys.revision, self.keys.changes]
            args: list[Any] = [0, self._log_len]
            for grant_id, node_ids in guesses.items():
                # A grant holding nothing is released already; leaving it out is the same as
                # releasing it before any later claim.
                if node_ids:
                    args[0] += 1
                    keys.append(self.keys.grant(grant_id))
                    keys += (self.keys.node(node_id) for node_id in node_ids)
                    args += (grant_id, len(node_ids), *node_ids)
            reply: list[Any] = await self.scripts("release", keys, args) if args[0] else ["OK", 0]
            if reply[0] == "OK":
                for grant_id in grant_ids:
                    self._holdings.pop(grant_id, None)
                generations = tuple(NodeGeneration(reply[i], int(reply[i + 1])) for i in range(2, len(reply), 2))
                return ReleaseOutcome(int(reply[1]), generations)
            guesses = dict.fromkeys(grant_ids)
        raise Unavailable(
            f"release kept racing with claims of the same grants ({self._release_attempts} attempts); retry"
        )

    def _remember(self, claim: DeviceClaim) -> None:
        """Notes the nodes a grant holds devices on, so that its release can skip reading them."""
        held = self._holdings.pop(claim.grant_id, ())
        self._holdings[claim.grant_id] = tuple(dict.fromkeys((*held, *(n.node_id for n in claim.nodes))))
        if len(self._holdings) > self._holdings_max:
            # Forget the oldest: a forgotten grant only costs its release one read.
            del self._holdings[next(iter(self._holdings))]


def _node(node_id: str, fields: dict[str, str]) -> Node:
    """A node from its hash (layout in keys.py)."""
    sku, kind, count = fields["sku"], fields["kind"], int(fields["n"])
    slices: dict[str, list[SliceAllocation]] = {}
    if fields.get("sliced", "0") != "0":
        for field, value in fields.items():
            if field.startswith("s|"):
                _, name, grant = field.split("|", 2)
                for token in value.split():
                    slice_kind, profile, compute, memory = token.split(":")
                    slices.setdefault(name, []).append(
                        SliceAllocation(grant, SliceKind(slice_kind), profile, int(compute), int(memory))
                    )
    devices = []
    for index in range(count):
        name = f"{kind}{index}"
        value = fields.get(name, "")
        holder = value.removeprefix("!")
        devices.append(
            Device(
                id=f"{node_id}/{name}",
                sku=sku,
                index=index,
                healthy=not value.startswith("!"),
                holder="" if holder == "*" else holder,
                slices=tuple(sorted(slices.get(name, ()), key=lambda s: (s.grant_id, s.profile))),
            )
        )
    return Node(
        id=node_id,
        site=fields["site"],
        rack=fields["rack"],
        sku=sku,
        devices=tuple(devices),
        generation=int(fields["gen"]),
        schedulable=fields.get("sched", "1") == "1",
        hall=fields.get("hall", ""),
        pod=fields.get("pod", ""),
        nvlink_domain=fields.get("nvl", ""),
        leaf=fields.get("leaf", ""),
        spine=fields.get("spine", ""),
        state=NodeState(fields.get("state", "active")),
        last_heartbeat_ms=int(fields.get("hb", 0)),
        cpu_milli=int(fields.get("cpu") or 0),
        memory_mib=int(fields.get("mem") or 0),
        cpu_milli_used=int(fields.get("cpu_used") or 0),
        memory_mib_used=int(fields.get("mem_used") or 0),
        mig_layout=tuple(
            (profile, int(count)) for profile, _, count in (t.rpartition(":") for t in fields.get("mig", "").split())
        ),
    )
