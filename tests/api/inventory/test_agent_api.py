"""The node agent against a real inventory server: it registers what discovery found and its
heartbeat carries device health. Discovery is a stand-in NVML here (this machine has no GPU)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from slicebroker.agent.discovery import discover
from slicebroker.agent.main import run
from slicebroker.inventory.main import build
from slicebroker.inventory.settings import InventorySettings
from slicebroker.v1 import inventory_pb2 as pb
from slicebroker.v1 import inventory_pb2_grpc as pb_grpc

from ...unit.agent.test_discovery import FakeNVML


async def test_the_agent_registers_and_heartbeats(start_service: Any, redis_url: str) -> None:
    running = await start_service(build, InventorySettings(redis_url=redis_url, listen="127.0.0.1:0"))
    nvml = FakeNVML([("NVIDIA H200", f"GPU-{i}", 141, False, []) for i in range(8)])
    lines: list[str] = []
    argv = ["agent", "--node-id", "h200-r01-n01", "--site", "daejeon", "--rack", "h200-r01", "--hall", "hall-2"]
    argv += ["--inventory-addr", running.address, "--once"]
    # The agent is a blocking program: run it off the loop that serves the inventory.
    code = await asyncio.to_thread(run, argv, discover_now=lambda: discover(nvml), out=lines.append)
    assert code == 0, lines
    async with grpc.aio.insecure_channel(running.address) as ch:
        node = await pb_grpc.InventoryServiceStub(ch).GetNode(pb.GetNodeRequest(id="h200-r01-n01"))
    assert (node.sku, len(node.devices), node.hall, node.rack) == ("H200-SXM-141GB", 8, "hall-2", "h200-r01")
    assert node.last_heartbeat_ms > 0
