"""`slicebroker-mesh` (what `make run` runs): Redis, the four services and a demo facility, in the
foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from rich.console import Console
from rich.table import Table

from slicebroker.mesh.demo import Loaded, load_demo, publish_price_book
from slicebroker.mesh.launcher import SERVICES, Mesh


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="slicebroker-mesh", description=__doc__)
    parser.add_argument("--run-dir", type=Path, default=Path(".run"), help="state, logs and env (default .run)")
    parser.add_argument("--base-port", type=int, default=50051, help="first of four service ports (default 50051)")
    parser.add_argument("--redis-url", default="", help="use this Redis instead of starting one")
    parser.add_argument("--facility", type=Path, help="facility YAML to load")
    parser.add_argument("--tenants", type=Path, help="tenants YAML to load")
    parser.add_argument("--price-book", type=Path, help="price book YAML to publish (unless one is published)")
    parser.add_argument(
        "--plaintext", action="store_true", help="run without TLS (default: mTLS with a local CA in RUN_DIR/pki)"
    )
    args = parser.parse_args(argv)

    console = Console(stderr=True)
    mesh = Mesh(
        run_dir=args.run_dir, base_port=args.base_port, redis_url=args.redis_url, log_json=False, tls=not args.plaintext
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        with console.status("starting Redis and the four services…"):
            mesh.start()
            mesh.wait_serving()
        loaded = None
        if args.facility and args.tenants:
            with console.status(f"loading {args.facility} and {args.tenants}…"):
                loaded = load_demo(mesh, args.facility, args.tenants)
        if args.price_book:
            with console.status(f"publishing {args.price_book}…"):
                version = publish_price_book(mesh, args.price_book)
            console.print(f"price book: version {version} (`slicectl quote …` prices requests with it)")
        env_path = args.run_dir / "env"
        env_path.write_text(mesh.env_file())
        env_path.chmod(0o600)
        _print_summary(console, mesh, loaded, env_path)
        while not stop.is_set():
            for name in SERVICES:
                code = mesh.processes[name].poll()
                if code is not None:
                    console.print(f"[red]{name} exited with {code}[/]; see {args.run_dir}/logs/{name}.log")
                    stop.set()
            stop.wait(0.5)
    finally:
        console.print("stopping…")
        mesh.stop()
        console.print("stopped.")
    sys.exit(0)


def _print_summary(console: Console, mesh: Mesh, loaded: Loaded | None, env_path: Path) -> None:
    table = Table(title="slicebroker mesh", show_header=True)
    table.add_column("service")
    table.add_column("address")
    table.add_column("log")
    table.add_row("redis", mesh.redis_url, str(mesh.run_dir / "redis"))
    for name, addr in mesh.addresses.items():
        table.add_row(name, addr, str(mesh.run_dir / "logs" / f"{name}.log"))
    console.print(table)
    if loaded is not None:
        console.print(
            f"loaded: {loaded.nodes:,} nodes with {loaded.devices:,} devices; "
            f"{loaded.institutions} institutions with {loaded.projects} projects"
        )
    console.print(f"in another shell:  [bold]source {env_path}[/]  then  [bold]slicectl inventory[/]")
    console.print("Ctrl-C stops everything.")
