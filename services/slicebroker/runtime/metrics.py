"""Prometheus metrics shared by all services (RPC counts and latencies by method and code)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

RPC_TOTAL = Counter("slicebroker_rpc_total", "RPCs handled", ["service", "method", "code"])
RPC_SECONDS = Histogram(
    "slicebroker_rpc_seconds",
    "RPC handling time",
    ["service", "method"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


def serve_metrics(port: int) -> None:
    if port:
        start_http_server(port, addr="127.0.0.1")
