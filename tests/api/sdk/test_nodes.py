"""Node lifecycle through the public SDK (what the node agent and the operator's node sync use):
registration with the whole topology and host resources, reading a node's generation, and
conditional cordon / drain / uncordon."""

from __future__ import annotations

import pytest

from slicebroker.client import (
    AsyncClient,
    Client,
    ClientOptions,
    ConflictError,
    InvalidArgumentError,
    NodeTopology,
    NotFoundError,
)


def test_register_read_cordon_and_uncordon_a_node(options: ClientOptions) -> None:
    where = NodeTopology(
        site="sdk-site",
        hall="h1",
        pod="p1",
        rack="sdk-r1",
        leaf="sdk-leaf-1",
        spine="sdk-spine",
        nvlink_domain="sdk-r1",
    )
    with Client(options) as sb:
        node = sb.register_node("sdk-node-1", "H100-SXM-80GB", 8, where, cpu_milli=64_000, memory_mib=512 * 1024)
        assert (node.id, node.devices, node.state) == ("sdk-node-1", 8, "active")
        # Idempotent: the same description again changes nothing.
        assert (
            sb.register_node("sdk-node-1", "H100-SXM-80GB", 8, where, cpu_milli=64_000, memory_mib=512 * 1024) == node
        )
        # The topology reached inventory: the node counts under its leaf.
        [row] = sb.capacity_by(leaf="sdk-leaf-1")
        assert (row.sku, row.nodes, row.devices) == ("H100-SXM-80GB", 1, 8)

        read = sb.get_node("sdk-node-1")
        assert read.generation == node.generation
        cordoned = sb.set_node_state("sdk-node-1", "cordoned", expected_generation=read.generation)
        assert cordoned.node.state == "cordoned" and cordoned.grant_ids == ()
        assert cordoned.node.generation > read.generation
        # A change made against a generation that is no longer current is refused, not lost.
        with pytest.raises(ConflictError):
            sb.set_node_state("sdk-node-1", "active", expected_generation=read.generation)
        assert sb.get_node("sdk-node-1").state == "cordoned"
        back = sb.set_node_state("sdk-node-1", "active", expected_generation=cordoned.node.generation)
        assert back.node.state == "active"


def test_an_unknown_node_is_not_found(options: ClientOptions) -> None:
    with Client(options) as sb, pytest.raises(NotFoundError):
        sb.get_node("no-such-node")


async def test_register_a_node_with_a_mig_layout_and_clear_it(options: ClientOptions) -> None:
    where = NodeTopology(site="sdk-site", rack="sdk-r2")
    async with AsyncClient(options) as sb:
        node = await sb.register_node("sdk-mig-1", "H100-SXM-80GB", 1, where, mig_layout={"1g.10gb": 7})
        # Cordoned first, so that no other test of this mesh is placed on it.
        await sb.set_node_state("sdk-mig-1", "cordoned", expected_generation=node.generation)
        assert node.mig_layout == {"1g.10gb": 7}
        assert (await sb.get_node("sdk-mig-1")).mig_layout == {"1g.10gb": 7}
        listed = [n async for n in sb.nodes("H100-SXM-80GB") if n.id == "sdk-mig-1"]
        assert [n.mig_layout for n in listed] == [{"1g.10gb": 7}]
    with Client(options) as sync:
        # Every registration says the whole node: one without a layout clears it.
        assert sync.register_node("sdk-mig-1", "H100-SXM-80GB", 1, where).mig_layout == {}
        assert sync.get_node("sdk-mig-1").mig_layout == {}
        with pytest.raises(InvalidArgumentError) as refused:
            sync.register_node("sdk-mig-1", "H100-SXM-80GB", 1, where, mig_layout={"1g.18gb": 7})
        assert refused.value.field == 'mig_layout["1g.18gb"]'
