"""The inventory's gRPC servicer: each method converts the request, makes one domain call and
converts the answer. Errors are raised as domain errors and mapped by the shared interceptor."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from slicebroker.core.facility_generator import dump
from slicebroker.inventory.api import convert
from slicebroker.inventory.api.watch_wire import WatchEncoder
from slicebroker.inventory.domain.service import InventoryService
from slicebroker.v1 import inventory_pb2 as pb
from slicebroker.v1 import inventory_pb2_grpc as pb_grpc

SERVICE_NAME = "slicebroker.v1.InventoryService"


class InventoryServicer(pb_grpc.InventoryServiceServicer):
    def __init__(self, service: InventoryService) -> None:
        self._service = service
        self._encode_watch_event = WatchEncoder()

    async def ListSkus(self, request: Any, context: Any) -> Any:
        return convert.skus_to_pb(self._service.list_skus(list(request.names)), self._service.catalogue.unit)

    async def LoadFacility(self, request: Any, context: Any) -> Any:
        outcome = await self._service.load_facility(request.yaml)
        return pb.LoadFacilityResponse(
            nodes_registered=outcome.nodes_registered,
            nodes_unchanged=outcome.nodes_unchanged,
            devices=outcome.devices,
        )

    async def RegisterNode(self, request: Any, context: Any) -> Any:
        node = await self._service.register_node(
            request.id,
            request.site,
            request.rack,
            request.sku,
            request.device_count,
            hall=request.hall,
            pod=request.pod,
            nvlink_domain=request.nvlink_domain,
            leaf=request.leaf,
            spine=request.spine,
            cpu_milli=request.cpu_milli,
            memory_mib=request.memory_mib,
            mig_layout=dict(request.mig_layout),
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

    async def ExportFacility(self, request: Any, context: Any) -> Any:
        document, nodes, devices = await self._service.export_facility()
        return pb.ExportFacilityResponse(yaml=dump(document), nodes=nodes, devices=devices)

    async def QueryCapacity(self, request: Any, context: Any) -> Any:
        rows = await self._service.query_capacity(convert.subtree_from_pb(request), request.sku, request.group_by)
        return pb.QueryCapacityResponse(rows=[convert.capacity_row_to_pb(row) for row in rows])

    async def ListLeafNeighbours(self, request: Any, context: Any) -> Any:
        leaf, node_ids = await self._service.leaf_neighbours(request.node_id)
        return pb.ListLeafNeighboursResponse(leaf=leaf, node_ids=list(node_ids))

    async def Heartbeat(self, request: Any, context: Any) -> Any:
        node = await self._service.heartbeat(request.node_id, convert.health_from_pb(request.devices), _now_ms())
        return convert.node_to_pb(node)

    async def SetNodeState(self, request: Any, context: Any) -> Any:
        node, grants = await self._service.set_node_state(
            request.node_id, request.expected_generation, request.state, _now_ms()
        )
        return pb.SetNodeStateResponse(node=convert.node_to_pb(node), grant_ids=list(grants))

    async def SetDeviceHealth(self, request: Any, context: Any) -> Any:
        node = await self._service.set_device_health(
            request.node_id, request.expected_generation, convert.health_from_pb(request.devices), _now_ms()
        )
        return convert.node_to_pb(node)

    async def RemoveNode(self, request: Any, context: Any) -> Any:
        await self._service.remove_node(request.node_id, request.expected_generation, _now_ms())
        return pb.RemoveNodeResponse()

    async def Watch(self, request: Any, context: Any) -> AsyncIterator[bytes]:
        # Serialized once for all streams (watch_wire); registered to send bytes as they are.
        encode, max_batch = self._encode_watch_event, request.max_batch or 1
        async for events in self._service.watch_batches(request.from_revision, max_batch):
            if max_batch == 1:
                for event in events:
                    yield encode(event)
            else:
                yield encode.batch(events)


def _now_ms() -> int:
    return int(time.time() * 1000)
