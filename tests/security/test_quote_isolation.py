"""Quote is scoped like RequestGrant: a tenant quotes for its own projects only, and a project
member for its own project; admins quote for anyone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from slicebroker.core.errors import PermissionDenied
from slicebroker.runtime.status import from_rpc_error
from slicebroker.v1 import broker_pb2, broker_pb2_grpc
from tests.security.secure_mesh import SecureMesh, start_secure_mesh


@pytest.fixture
async def mesh(start_service: Any, redis_url: str, tmp_path: Path) -> SecureMesh:
    return await start_secure_mesh(start_service, redis_url, tmp_path)


def ask(project: str) -> broker_pb2.RequestGrantRequest:
    return broker_pb2.RequestGrantRequest(project=project, sku="H100-SXM-80GB", count=1, lease=Duration(seconds=600))


async def test_quotes_only_for_the_caller_s_own_projects(mesh: SecureMesh) -> None:
    async with mesh.channel("broker") as ch:
        broker = broker_pb2_grpc.BrokerServiceStub(ch)
        own = await broker.Quote(ask("uni-a-llm"), metadata=mesh.md("uni-a"))
        assert own.sku == "H100-SXM-80GB" and not own.refusal_reason
        assert (await broker.Quote(ask("uni-a-llm"), metadata=mesh.md("uni-a-llm"))).count == 1
        for who, project in (("uni-a", "lab-b-bio"), ("uni-a-llm", "uni-a-vision")):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await broker.Quote(ask(project), metadata=mesh.md(who))
            assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert isinstance(from_rpc_error(info.value), PermissionDenied)
        assert (await broker.Quote(ask("lab-b-bio"), metadata=mesh.md("admin"))).count == 1


async def test_a_member_s_quote_counts_against_their_user_cap_as_their_grant_does(mesh: SecureMesh) -> None:
    """ana (a member of uni-a-llm) may hold 1 H100: her quote for 2 is refused by that cap with the
    words her RequestGrant gets; a quote for 1 is fine; an admin, who is no user, quotes 2."""
    admin = mesh.md("admin")
    await mesh.cap_user("uni-a-llm", "ana", "H100-SXM-80GB", "1")
    async with mesh.channel("broker") as bch:
        broker = broker_pb2_grpc.BrokerServiceStub(bch)
        two = broker_pb2.RequestGrantRequest(
            project="uni-a-llm", sku="H100-SXM-80GB", count=2, lease=Duration(seconds=600)
        )
        ana = mesh.md("uni-a-llm")
        quote = await broker.Quote(two, metadata=ana)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await broker.RequestGrant(two, metadata=ana)
        refusal = from_rpc_error(info.value)
        assert refusal.metadata["node"] == "uni-a-llm/ana" and refusal.metadata["limit_kind"] == "hard_cap"
        assert (quote.refusal_reason, quote.refusal_message) == (str(refusal.reason), refusal.message)
        assert not (await broker.Quote(ask("uni-a-llm"), metadata=ana)).refusal_reason
        assert not (await broker.Quote(two, metadata=admin)).refusal_reason
