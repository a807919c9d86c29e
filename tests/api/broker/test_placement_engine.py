"""The live broker places single-node requests exactly as its packing engine does in-process.

A scripted mix of shares, MIG partitions and whole devices, with releases between, goes through the
real mesh; the same script goes through `placer.place` on a snapshot read from the same inventory
(the broker's own inventory adapter). Every grant must land on the same node and devices."""

from __future__ import annotations

from google.protobuf.duration_pb2 import Duration

from slicebroker.broker.domain.model import WHOLE, Shape, SliceKind
from slicebroker.broker.domain.placer import PlaceJob, place
from slicebroker.broker.domain.snapshot import Constraint, NodeClaim, Snapshot, Topology
from slicebroker.broker.peers import GrpcInventory
from slicebroker.v1 import broker_pb2
from tests.api.mesh.conftest import Stubs
from tests.mesh_fixtures import MeshUnderTest

H100 = "H100-SXM-80GB"
MIG = {"1g.10gb": (1, 1), "2g.20gb": (2, 2), "3g.40gb": (3, 4), "7g.80gb": (7, 8)}
# (project, count, kind, profile or share milli, same node) or ("release", step index).
SCRIPT: list[tuple[str, int, str, str, bool]] = [
    ("uni-a-llm", 1, "share", "500", False),
    ("uni-a-llm", 1, "share", "300", False),
    ("uni-a-vision", 1, "mig", "3g.40gb", False),
    ("lab-b-bio", 1, "whole", "", False),
    ("lab-b-bio", 2, "whole", "", True),
    ("uni-a-llm", 1, "share", "700", False),
    ("uni-a-vision", 2, "mig", "1g.10gb", False),
    ("release", 1, "", "", False),
    ("lab-b-chem", 4, "whole", "", True),
    ("uni-a-llm", 1, "share", "250", False),
    ("uni-a-vision", 1, "mig", "3g.40gb", False),
    ("release", 3, "", "", False),
    ("lab-b-chem", 3, "share", "400", False),
    ("lab-b-bio", 1, "whole", "", False),
    ("uni-a-vision", 1, "mig", "7g.80gb", False),
    ("lab-b-chem", 8, "whole", "", True),
    ("uni-a-llm", 2, "share", "600", True),
]


def shape_of(kind: str, size: str) -> Shape:
    if kind == "whole":
        return WHOLE
    if kind == "share":
        return Shape(SliceKind.SHARE, "", int(size), int(size))
    return Shape(SliceKind.MIG, size, *MIG[size])


def landed(claims: list[NodeClaim] | None) -> list[tuple[str, str]]:
    assert claims is not None
    return sorted(
        [(c.node_id, d) for c in claims for d in c.device_ids]
        + [(c.node_id, s.device_id) for c in claims for s in c.slices]
    )


async def test_the_live_broker_and_the_engine_agree_grant_by_grant(mesh: MeshUnderTest, stubs: Stubs) -> None:
    inventory = GrpcInventory(mesh.inventory.address)
    snapshot = Snapshot()
    for name, shapes in (await inventory.skus()).items():
        for kind in shapes.kinds - {"whole", "share"}:
            snapshot.slice_capacity[(name, kind)] = shapes.geometry
    snapshot.replace_sku(H100, await inventory.nodes(H100), 0)
    await inventory.close()

    live_ids: list[str] = []
    for step, (project, count, kind, size, same_node) in enumerate(SCRIPT):
        if project == "release":
            await stubs.broker.ReleaseGrant(broker_pb2.ReleaseGrantRequest(id=live_ids[count]))
            snapshot.release([f"g{count}"])
            live_ids.append("")
            continue
        topology = Topology(Constraint.SAME_NODE if same_node else Constraint.NONE, required=True)
        shape = shape_of(kind, size)
        expected = place(snapshot, PlaceJob(f"g{step}", H100, count, topology, shape))
        assert expected is not None, f"step {step} fits in-process"
        snapshot.take(f"g{step}", expected)
        grant = await stubs.broker.RequestGrant(
            broker_pb2.RequestGrantRequest(
                project=project,
                sku=H100,
                count=count,
                lease=Duration(seconds=600),
                idempotency_key=f"engine-{step}",
                topology=broker_pb2.Topology(
                    constraint=broker_pb2.TOPOLOGY_CONSTRAINT_SAME_NODE
                    if same_node
                    else broker_pb2.TOPOLOGY_CONSTRAINT_UNSPECIFIED,
                    required=True,
                ),
                shape=None
                if shape.whole
                else broker_pb2.SliceShape(
                    kind=kind, profile=shape.profile, compute_milli=shape.compute if kind == "share" else 0
                ),
            )
        )
        live_ids.append(grant.id)
        assert sorted((s.node_id, s.device_id) for s in grant.slices) == landed(expected), f"step {step}"
