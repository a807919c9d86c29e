"""Users over gRPC and slicectl: an admin adds "<project>/<user>" tenants with a cap; a Reserve
naming the user counts against the cap and the project, ListReservations shows whose grant it is."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
from typer.testing import CliRunner

from slicebroker.cli.main import app
from slicebroker.core.ids import new_grant_id
from slicebroker.quota.main import build
from slicebroker.quota.settings import QuotaSettings
from slicebroker.runtime.status import from_status
from slicebroker.v1 import quota_pb2 as pb
from slicebroker.v1 import quota_pb2_grpc

H100 = "H100-SXM-80GB"


async def test_a_user_cap_over_grpc_and_slicectl(start_service: Any, redis_url: str) -> None:
    running = await start_service(build, QuotaSettings(redis_url=redis_url, listen="127.0.0.1:0"))
    address = str(running.address)

    def slicectl(*args: str) -> Any:
        result = CliRunner().invoke(app, ["--quota-addr", address, "admin", *args, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    async with grpc.aio.insecure_channel(address) as channel:
        stub = quota_pb2_grpc.QuotaServiceStub(channel)
        await stub.UpsertInstitution(pb.UpsertInstitutionRequest(id="snu"))
        await stub.UpsertProject(pb.UpsertProjectRequest(id="llm", institution="snu", device_caps={H100: 8}))
        user = await asyncio.to_thread(slicectl, "tenant", "set", "llm/alice", "--kind", "user", "--parent", "llm")
        assert user["kind"] == "user" and user["parent"] == "llm"
        await asyncio.to_thread(slicectl, "quota", "set", "llm/alice", H100, "--hard-cap", "2")

        def reservation(count: int) -> Any:
            return pb.Reservation(
                grant_id=new_grant_id(), project="llm", sku=H100, count=count, ttl_seconds=30, user="alice"
            )

        (ok,) = (await stub.Reserve(pb.ReserveRequest(reservations=[reservation(2)]))).results
        assert ok.status.code == 0
        (refused,) = (await stub.Reserve(pb.ReserveRequest(reservations=[reservation(1)]))).results
        err = from_status(refused.status)
        assert err is not None and err.metadata["node"] == "llm/alice" and err.metadata["limit_kind"] == "hard_cap"
        (held,) = (await stub.ListReservations(pb.ListReservationsRequest())).reservations
        assert held.user == "alice" and held.project == "llm"
        standings = await stub.GetStandings(pb.GetStandingsRequest(tenants=["llm/alice", "llm"]))
        assert [s.in_use[H100] for s in standings.standings] == ["2", "2"]
        users = await stub.ListTenants(pb.ListTenantsRequest(kind=pb.TENANT_KIND_USER))
        assert [t.id for t in users.tenants] == ["llm/alice"]
