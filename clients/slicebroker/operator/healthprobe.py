"""A gRPC health probe for the chart's exec probes: checks grpc.health.v1 on a local service over
the mesh's mTLS (the kubelet's built-in gRPC probe cannot present a client certificate).

    python -m slicebroker.operator.healthprobe 127.0.0.1:50051 --prefix SLICEBROKER_INVENTORY_

Exit 0 when SERVING (or, with --live, when the server answers at all), 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="healthprobe")
    parser.add_argument("address")
    parser.add_argument("--prefix", default="SLICEBROKER_", help="settings prefix of the TLS_*_FILE variables")
    parser.add_argument("--live", action="store_true", help="any answer counts (liveness, not readiness)")
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)

    def read(name: str) -> bytes | None:
        path = os.environ.get(args.prefix + name)
        if not path:
            return None
        with open(path, "rb") as f:
            return f.read()

    ca = read("TLS_CA_FILE")
    if ca:
        credentials = grpc.ssl_channel_credentials(ca, read("TLS_KEY_FILE"), read("TLS_CERT_FILE"))
        # The certificate names the Service, not 127.0.0.1; "localhost" is among its names.
        channel = grpc.secure_channel(
            args.address, credentials, options=[("grpc.ssl_target_name_override", "localhost")]
        )
    else:
        channel = grpc.insecure_channel(args.address)
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=args.timeout)
        except grpc.RpcError as err:
            print(f"health check failed: {err.code().name}", file=sys.stderr)
            return 1
    return 0 if args.live or reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main())
