"""Runs the benchmarks, prints a table per benchmark and writes bench/results/<name>.json."""

from __future__ import annotations

import argparse

from rich.console import Console

from bench import (
    accounting,
    durability,
    inventory_scale,
    k8s_binding,
    mesh_throughput,
    placement_speed,
    placement_trace,
    placement_trace_e2e,
    quota,
    report,
    soak,
)

BENCHMARKS = {
    "mesh_throughput": mesh_throughput.run,
    "accounting": accounting.run,
    "inventory_scale": inventory_scale.run,
    "quota": quota.run,
    "placement_speed": placement_speed.run,
    # About 80 arrival-only runs of the packing engine (8 variants x 10 seeds) on all cores.
    "placement_trace": placement_trace.run,
    # One seed of the trace through the real services, compared grant by grant with the in-process run.
    "placement_trace_e2e": placement_trace_e2e.run,
    # A real control plane (make k8s-bins), 1,000 Nodes and 1,000 gated pods through the operator.
    "k8s_binding": k8s_binding.run,
    # `make soak`: faults, fuzzing, isolation probes, SLICEBROKER_SOAK_MINUTES of load and a burst.
    "soak": soak.run,
    # grant + release cycles with Redis appendfsync always vs everysec.
    "durability": durability.run,
}
# Benchmarks whose figures go into a results file that other runs fill in too (kept, not replaced).
MERGED_INTO = {"placement_trace": "placement_trace", "placement_trace_e2e": "placement_trace"}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {', '.join(BENCHMARKS)})")
    parser.add_argument("--seconds", type=float, default=4.0, help="measuring time per load level")
    args = parser.parse_args()
    console = Console()
    for name in args.names or list(BENCHMARKS):
        console.rule(name)
        metrics, details = BENCHMARKS[name](args.seconds, console)
        report.print_table(name, metrics, console)
        into = MERGED_INTO.get(name)
        path = report.merge(into, metrics, details) if into else report.write(name, metrics, details)
        console.print(f"written: {path}")


if __name__ == "__main__":
    main()
