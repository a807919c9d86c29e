"""Shared helpers of the inventory storage tests: small facilities, claims, and a full
consistency check of the Redis state (counters, indexes, grant records) against the nodes."""

from __future__ import annotations

from collections import Counter

import redis.asyncio as aioredis
import yaml

from slicebroker.core.ids import new_grant_id
from slicebroker.inventory.domain.model import DeviceClaim, Node, NodeClaim
from slicebroker.inventory.storage.store import RedisInventoryStore

PREFIX = "sb:inventory-test"
H100 = "H100-SXM-80GB"


def facility(*racks: tuple[str, str, int, int], site: str = "daejeon") -> str:
    """A one-site facility: one rack per (rack name, sku, nodes, devices per node); node ids
    are "<rack>-n01", ...."""
    doc = {
        "sites": [
            {
                "name": site,
                "racks": [
                    {
                        "name": rack,
                        "node_groups": [{"prefix": f"{rack}-n", "count": count, "sku": sku, "devices": devices}],
                    }
                    for rack, sku, count, devices in racks
                ],
            }
        ]
    }
    return yaml.safe_dump(doc)


def claim(node: Node | str, generation: int, *indexes: int, grant: str = "", kind: str = "gpu") -> DeviceClaim:
    """One grant's claim of devices on one node."""
    node_id = node if isinstance(node, str) else node.id
    return DeviceClaim(
        grant or new_grant_id(),
        (NodeClaim(node_id, generation, tuple(f"{node_id}/{kind}{i}" for i in indexes)),),
    )


async def all_nodes(store: RedisInventoryStore, sku: str = "") -> list[Node]:
    nodes: list[Node] = []
    after = ""
    while True:
        page, after = await store.list_nodes(sku, after, 1000)
        nodes += page
        if not after:
            return nodes


async def assert_consistent(store: RedisInventoryStore, client: aioredis.Redis) -> None:
    """Every counter the scripts keep equals what a full scan of the nodes says."""
    nodes = await all_nodes(store)
    keys = store.keys
    held_by_grant: dict[str, dict[str, list[str]]] = {}
    expected: dict[str, Counter[str]] = {}
    for node in nodes:
        c = expected.setdefault(node.sku, Counter())
        c["nodes"] += 1
        c["devices"] += len(node.devices)
        c["free"] += sum(1 for d in node.devices if d.healthy and not d.holder and not d.slices)
        c["unhealthy"] += sum(1 for d in node.devices if not d.healthy)
        held = [d for d in node.devices if d.holder]
        assert int(await client.hget(keys.node(node.id), "held") or 0) == len(held), node.id
        sliced = [d for d in node.devices if d.slices]
        assert int(await client.hget(keys.node(node.id), "sliced") or 0) == len(sliced), node.id
        for d in held:
            held_by_grant.setdefault(d.holder, {}).setdefault(node.id, []).append(d.id.rpartition("/")[2])
        for d in sliced:
            assert not d.holder
            # The device's usage is the sum of its slices, all of one kind.
            usage = await client.hget(keys.node(node.id), "u|" + d.id.rpartition("/")[2])
            assert usage == f"{d.slices[0].kind} {sum(x.compute for x in d.slices)} {sum(x.memory for x in d.slices)}"
            assert len({x.kind for x in d.slices}) == 1
            for x in d.slices:
                held_by_grant.setdefault(x.grant_id, {}).setdefault(node.id, []).append(
                    f"{d.id.rpartition('/')[2]}#{x.kind}#{x.profile}#{x.compute}#{x.memory}"
                )
    capacity = await store.capacity()
    for sku, counts in expected.items():
        got = capacity[sku]
        assert (got.nodes, got.devices, got.free, got.unhealthy) == (
            counts["nodes"],
            counts["devices"],
            counts["free"],
            counts["unhealthy"],
        ), sku
    assert all(c.nodes == c.devices == c.free == c.unhealthy == 0 for s, c in capacity.items() if s not in expected)
    assert sorted(await store.holders()) == sorted(held_by_grant)
    host_used: Counter[str] = Counter()
    for grant, by_node in held_by_grant.items():
        record = await client.hgetall(keys.grant(grant))
        # Host tokens ("~<cpu>:<mem>") ride along with the devices; they are summed per node below.
        devices = {n: sorted(t for t in v.split() if not t.startswith("~")) for n, v in record.items()}
        assert devices == {n: sorted(v) for n, v in by_node.items()}
        for node_id, value in record.items():
            for token in value.split():
                if token.startswith("~"):
                    cpu, mem = token[1:].split(":")
                    host_used[node_id + "|cpu"] += int(cpu)
                    host_used[node_id + "|mem"] += int(mem)
    for node in nodes:
        assert (node.cpu_milli_used, node.memory_mib_used) == (
            host_used[node.id + "|cpu"],
            host_used[node.id + "|mem"],
        ), node.id
    assert await client.zcard(keys.nodes) == len(nodes)
    assert await client.zcard(keys.nodes_by_sku) == len(nodes)
    grant_keys = [k async for k in client.scan_iter(match=keys.grant("*"))]
    assert len(grant_keys) == len(held_by_grant)
