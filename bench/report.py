"""Benchmark results: one JSON file per benchmark under bench/results/, and a table on the terminal."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    return {"cores": os.cpu_count(), "cpu_model": model, "python": platform.python_version()}


def write(name: str, metrics: dict[str, float], details: dict[str, object] | None = None) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    doc = {
        "name": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "metrics": {k: round(v, 3) for k, v in metrics.items()},
        "details": details or {},
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def merge(name: str, metrics: dict[str, float], details: dict[str, object] | None = None) -> Path:
    """Like `write`, but keeps the metrics and details already in the file that these do not replace
    (for results that several runs fill in, e.g. the trace's variants and its end-to-end seed)."""
    path = RESULTS / f"{name}.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    return write(name, {**old.get("metrics", {}), **metrics}, {**old.get("details", {}), **(details or {})})


def print_table(name: str, metrics: dict[str, float], console: Console | None = None) -> None:
    table = Table(title=name)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:,.3f}" if isinstance(value, float) else str(value))
    (console or Console()).print(table)
