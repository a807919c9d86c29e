"""Quota's port to inventory over gRPC: the facility's capacity, to check guarantees against it."""

from __future__ import annotations

from collections.abc import Mapping

import grpc

from slicebroker.runtime.channels import call_metadata, open_channel
from slicebroker.runtime.status import from_rpc_error
from slicebroker.runtime.tls import TlsFiles
from slicebroker.v1 import inventory_pb2, inventory_pb2_grpc


class GrpcCapacity:
    """`CapacitySource` over inventory's GetCapacity (one call, every SKU)."""

    def __init__(self, target: str, token: str, tls: TlsFiles | None, timeout_s: float = 5.0) -> None:
        self._channel = open_channel(target, tls)
        self._stub = inventory_pb2_grpc.InventoryServiceStub(self._channel)
        self._token = token
        self._timeout_s = timeout_s

    async def healthy_devices(self) -> Mapping[str, int]:
        try:
            reply = await self._stub.GetCapacity(
                inventory_pb2.GetCapacityRequest(), timeout=self._timeout_s, metadata=call_metadata(self._token)
            )
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None
        return {row.sku: max(0, row.devices - row.unhealthy) for row in reply.skus}

    async def close(self) -> None:
        await self._channel.close()
