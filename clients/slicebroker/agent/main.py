"""`slicebroker agent`: discover, register, heartbeat.

1. Discover this node's accelerators: GPUs through NVML (discovery.py), FuriosaAI and Rebellions
   NPUs through their drivers (npu.py). None found: say why on stderr, exit 3.
2. Register the node (idempotent) under its site / rack (and hall / pod) with its SKU and device
   count. A node with devices of several SKUs is refused: the inventory models one SKU per node.
3. Every --interval seconds, re-read device health and send a heartbeat; --once stops after one.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from slicebroker.agent.discovery import Discovery, discover, load_nvml
from slicebroker.agent.npu import combine, discover_furiosa, discover_rebellions
from slicebroker.client import Client, ClientOptions, NodeTopology, SlicebrokerError

EXIT_NO_ACCELERATORS = 3
EXIT_ERROR = 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slicebroker", description="slicebroker node tools")
    sub = parser.add_subparsers(dest="command", required=True)
    agent = sub.add_parser("agent", help="register this node's accelerators and heartbeat their health")
    agent.add_argument("--node-id", default=socket.gethostname().split(".")[0].lower(), help="default: hostname")
    agent.add_argument("--site", required=True)
    agent.add_argument("--rack", required=True)
    agent.add_argument("--hall", default="")
    agent.add_argument("--pod", default="")
    agent.add_argument("--inventory-addr", default=None, help="HOST:PORT (default: SLICEBROKER_INVENTORY_ADDR)")
    agent.add_argument("--interval", type=float, default=10.0, help="seconds between heartbeats")
    agent.add_argument("--once", action="store_true", help="register, send one heartbeat and exit")
    return parser


def run(
    argv: Sequence[str],
    *,
    discover_now: Callable[[], Discovery] = lambda: discover_everything(),
    out: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> int:
    args = _parser().parse_args(argv)
    found = discover_now()
    for problem in found.problems:
        out(f"agent: {problem}")
    if not found.accelerators:
        out("agent: no accelerators found on this node; nothing to register")
        return EXIT_NO_ACCELERATORS
    if len(found.skus) > 1:
        out(f"agent: devices of several SKUs ({', '.join(sorted(found.skus))}); one SKU per node")
        return EXIT_ERROR
    (sku,) = found.skus
    options = ClientOptions.from_env()
    if args.inventory_addr:
        options = replace(options, inventory_addr=args.inventory_addr)
    try:
        with Client(options) as client:
            where = NodeTopology(site=args.site, rack=args.rack, hall=args.hall, pod=args.pod)
            node = client.register_node(args.node_id, sku, len(found.accelerators), where)
            out(f"agent: registered {node.id} ({node.devices} x {sku}, generation {node.generation})")
            while True:
                health = [(f"{a.kind}{i}", a.healthy) for i, a in enumerate(found.accelerators)]
                node = client.heartbeat(args.node_id, health)
                if args.once:
                    return 0
                time.sleep(args.interval)
                found = discover_now()
                if len(found.accelerators) != node.devices:
                    out("agent: the number of devices changed; restart the agent to re-register")
                    return EXIT_ERROR
    except SlicebrokerError as err:
        out(f"agent: {err.message} (reason: {err.reason})")
        return EXIT_ERROR


def discover_everything() -> Discovery:
    return combine(discover(load_nvml()), discover_furiosa(), discover_rebellions())


def main() -> None:
    sys.exit(run(sys.argv[1:]))
