"""The inventory calls of node sync: the only place the operator reaches below the SDK's public
surface (`slicebroker.client`), because the public `Client` lacks what node sync needs:

- `Client.register_node` takes no `leaf`, `spine` or `nvlink_domain`, so a Node's topology labels
  could not reach inventory and topology gangs would not see leaves;
- there is no `Client.get_node(node_id)` (one node with its generation) nor
  `Client.set_node_state(node_id, state, expected_generation)` for cordon and drain.

When the SDK has them, these three functions become one-line calls of the public client (and
`tests/unit/operator/test_public_sdk.py` tightens to no exception at all).
"""

from __future__ import annotations

from slicebroker.client import Client, NotFoundError
from slicebroker.client import _inventory as inventory_ops
from slicebroker.client import _ops as ops
from slicebroker.v1 import inventory_pb2

_SET_NODE_STATE = ops._rpc(ops.Service.INVENTORY, "SetNodeState", inventory_pb2.SetNodeStateResponse)
_GET_NODE = ops._rpc(ops.Service.INVENTORY, "GetNode", inventory_pb2.Node)


def register_node(sb: Client, node_id: str, sku: str, device_count: int, topology: dict[str, str]) -> None:
    """Registers (or re-registers) a node with its topology fields (site, hall, pod, rack, leaf,
    spine, nvlink_domain)."""
    request = inventory_pb2.RegisterNodeRequest(id=node_id, sku=sku, device_count=device_count)
    for field, value in topology.items():
        setattr(request, field, value)
    sb._run(ops.Op(inventory_ops.REGISTER_NODE, request, inventory_ops._node))


def set_node_state(sb: Client, node_id: str, state: str) -> None:
    """Sets a node's state (active, cordoned, draining), conditional on the generation just read:
    a concurrent change makes it fail and the caller's retry reads again. A node inventory does
    not know is left alone."""
    try:
        node = sb._run(ops.Op(_GET_NODE, inventory_pb2.GetNodeRequest(id=node_id), lambda msg: msg))
    except NotFoundError:
        return
    request = inventory_pb2.SetNodeStateRequest(node_id=node_id, state=state, expected_generation=node.generation)
    try:
        sb._run(ops.Op(_SET_NODE_STATE, request, lambda msg: msg))
    except NotFoundError:
        return
