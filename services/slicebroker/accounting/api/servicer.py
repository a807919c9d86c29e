"""The AccountingService gRPC servicer: each method converts, makes one domain call, converts back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from slicebroker.accounting.api import convert
from slicebroker.accounting.domain.service import AccountingService
from slicebroker.runtime.context import principal_var
from slicebroker.runtime.policy import scope_project
from slicebroker.v1 import accounting_pb2_grpc


def _now_ms() -> int:
    return int(time.time() * 1000)


class AccountingServicer(accounting_pb2_grpc.AccountingServiceServicer):
    def __init__(self, service: AccountingService) -> None:
        self._service = service

    async def IngestEvents(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        result = await self._service.ingest(convert.events_from_proto(request))
        return convert.ingest_to_proto(result)

    async def GetUsage(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        principal = principal_var.get()
        caller = convert.caller(principal)
        request.project = scope_project(principal, request.project)
        usage = await self._service.usage(convert.filter_from_proto(request), _now_ms(), caller)
        return convert.usage_to_proto(usage)

    async def PublishPriceBook(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        caller = convert.caller(principal_var.get())
        book = await self._service.publish_book(convert.book_from_proto(request.book), request.expected_version, caller)
        return convert.book_to_proto(book)

    async def GetPriceBook(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return convert.book_to_proto(await self._service.price_book(request.version))

    async def QueryLedger(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        principal = principal_var.get()
        caller = convert.caller(principal)
        request.project = scope_project(principal, request.project)
        result = await self._service.query(convert.query_from_proto(request), _now_ms(), caller)
        return convert.query_to_proto(result)

    async def ClosePeriod(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        caller = convert.caller(principal_var.get())
        return convert.statements_to_proto(await self._service.close_period(request.period, _now_ms(), caller))

    async def GetStatements(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        caller = convert.caller(principal_var.get())
        statements = await self._service.statement(request.period, request.institution, caller)
        return convert.statements_to_proto(statements)

    async def ReratePeriod(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        caller = convert.caller(principal_var.get())
        return convert.rerate_to_proto(await self._service.rerate(request.period, request.book_version, caller))

    async def Rate(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        caller = convert.caller(principal_var.get())
        return convert.rate_to_proto(await self._service.rate(convert.rate_from_proto(request), _now_ms(), caller))

    async def ExportLedger(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        caller = convert.caller(principal_var.get())
        chunks = await self._service.export(request.period, request.institution, request.format, caller)
        async for data, rows in chunks:
            if data or rows:
                yield convert.chunk_to_proto(data, rows)
