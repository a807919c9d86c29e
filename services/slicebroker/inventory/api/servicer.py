"""The inventory's gRPC servicer: each method converts the request, makes one domain call and
converts the answer. Errors are raised as domain errors and mapped by the shared interceptor."""

from __future__ import annotations

from typing import Any

from slicebroker.inventory.api import convert
from slicebroker.inventory.domain.service import InventoryService
from slicebroker.v1 import inventory_pb2 as pb
from slicebroker.v1 import inventory_pb2_grpc as pb_grpc

SERVICE_NAME = "slicebroker.v1.InventoryService"


class InventoryServicer(pb_grpc.InventoryServiceServicer):
    def __init__(self, service: InventoryService) -> None:
        self._service = service

    async def ListSkus(self, request: Any, context: Any) -> Any:
        return pb.ListSkusResponse(skus=[convert.sku_to_pb(sku) for sku in self._service.list_skus()])

    async def LoadFacility(self, request: Any, context: Any) -> Any:
        outcome = await self._service.load_facility(request.yaml)
        return pb.LoadFacilityResponse(
            nodes_registered=outcome.nodes_registered,
            nodes_unchanged=outcome.nodes_unchanged,
            devices=outcome.devices,
        )

    async def RegisterNode(self, request: Any, context: Any) -> Any:
        node = await self._service.register_node(
            request.id, request.site, request.rack, request.sku, request.device_count
        )
        return convert.node_to_pb(node)

    async def GetNode(self, request: Any, context: Any) -> Any:
        return convert.node_to_pb(await self._service.get_node(request.id))

    async def ListNodes(self, request: Any, context: Any) -> Any:
        page = await self._service.list_nodes(request.sku, request.page_size, request.page_token)
        return pb.ListNodesResponse(
            nodes=[convert.node_to_pb(node) for node in page.nodes], next_page_token=page.next_page_token
        )

    async def GetCapacity(self, request: Any, context: Any) -> Any:
        return pb.GetCapacityResponse(skus=[convert.capacity_to_pb(c) for c in await self._service.capacity()])

    async def Claim(self, request: Any, context: Any) -> Any:
        results = await self._service.claim(convert.claims_from_pb(request))
        return pb.ClaimResponse(results=[convert.claim_result_to_pb(r) for r in results])

    async def Release(self, request: Any, context: Any) -> Any:
        outcome = await self._service.release(list(request.grant_ids))
        return pb.ReleaseResponse(
            devices_released=outcome.devices_released,
            generations=convert.generations_to_pb(outcome.generations),
        )

    async def ListHolders(self, request: Any, context: Any) -> Any:
        return pb.ListHoldersResponse(grant_ids=list(await self._service.holders()))
