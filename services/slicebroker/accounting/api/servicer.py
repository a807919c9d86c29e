"""The AccountingService gRPC servicer: each method converts, makes one domain call, converts back."""

from __future__ import annotations

import time
from typing import Any

import grpc

from slicebroker.accounting.api import convert
from slicebroker.accounting.domain.service import AccountingService
from slicebroker.v1 import accounting_pb2_grpc


class AccountingServicer(accounting_pb2_grpc.AccountingServiceServicer):
    def __init__(self, service: AccountingService) -> None:
        self._service = service

    async def IngestEvents(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        result = await self._service.ingest(convert.events_from_proto(request))
        return convert.ingest_to_proto(result)

    async def GetUsage(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        usage = await self._service.usage(convert.filter_from_proto(request), int(time.time() * 1000))
        return convert.usage_to_proto(usage)
