"""Accounting's port to quota over gRPC: budget burn, applied once per event id."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from slicebroker.accounting.domain.budget import BudgetBurn
from slicebroker.runtime.channels import call_metadata, open_channel
from slicebroker.runtime.status import from_rpc_error
from slicebroker.runtime.tls import TlsFiles
from slicebroker.v1 import quota_pb2, quota_pb2_grpc


class GrpcBudgetSink:
    """Pushes burn to quota's RecordBurn. Each row's event id is derived from the batch id, so a
    batch sent again after a crash is recognised by quota and counted once."""

    def __init__(self, target: str, token: str, tls: TlsFiles | None, timeout_s: float = 10.0) -> None:
        self._channel = open_channel(target, tls)
        self._stub = quota_pb2_grpc.QuotaServiceStub(self._channel)
        self._token = token
        self._timeout_s = timeout_s

    async def burn(self, batch_id: str, burns: Sequence[BudgetBurn]) -> None:
        request = quota_pb2.RecordBurnRequest(
            events=[
                quota_pb2.BurnEvent(
                    event_id=f"burn:{batch_id}:{b.project}:{b.sku}",
                    project=b.project,
                    accelerator_hours=b.units_micros / 1_000_000,
                )
                for b in burns
            ]
        )
        try:
            await self._stub.RecordBurn(request, timeout=self._timeout_s, metadata=call_metadata(self._token))
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None

    async def close(self) -> None:
        await self._channel.close()
