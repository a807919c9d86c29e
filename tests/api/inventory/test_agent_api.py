"""The node agent against a real inventory server: it registers what discovery found and its
heartbeat carries device health. Discovery is a stand-in NVML here (this machine has no GPU)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc

from slicebroker.agent.discovery import discover
from slicebroker.agent.main import run
from slicebroker.agent.npu import combine, discover_furiosa
from slicebroker.inventory.main import build
from slicebroker.inventory.settings import InventorySettings
from slicebroker.v1 import inventory_pb2 as pb
from slicebroker.v1 import inventory_pb2_grpc as pb_grpc

from ...unit.agent.test_discovery import FakeNVML
from ...unit.agent.test_npu_discovery import rngd_card


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


async def test_the_agent_registers_rngd_cards_found_in_sysfs(
    start_service: Any, redis_url: str, tmp_path: Path
) -> None:
    running = await start_service(build, InventorySettings(redis_url=redis_url, listen="127.0.0.1:0"))
    for n in range(4):
        rngd_card(tmp_path, n, alive=n != 3)
    lines: list[str] = []
    argv = ["agent", "--node-id", "rngd-r01-n01", "--site", "daejeon", "--rack", "rngd-r01"]
    argv += ["--inventory-addr", running.address, "--once"]
    found = combine(discover(None), discover_furiosa(tmp_path / "sys", tmp_path / "dev"))
    code = await asyncio.to_thread(run, argv, discover_now=lambda: found, out=lines.append)
    assert code == 0, lines
    async with grpc.aio.insecure_channel(running.address) as ch:
        node = await pb_grpc.InventoryServiceStub(ch).GetNode(pb.GetNodeRequest(id="rngd-r01-n01"))
    assert (node.sku, len(node.devices)) == ("RNGD", 4)
    # The heartbeat named the cards as the inventory does ("npu<i>"); the dead one is unhealthy.
    assert [d.healthy for d in node.devices] == [True, True, True, False]
