"""Protobuf answers become the SDK's frozen dataclasses; requests are built once, as the server expects."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from slicebroker.client import (
    Grant,
    GrantState,
    InvalidArgumentError,
    Node,
    Project,
    SkuCapacity,
    Slice,
    UsageRow,
)
from slicebroker.client import _convert as convert
from slicebroker.client import _ops as ops
from slicebroker.v1 import accounting_pb2, broker_pb2, common_pb2, inventory_pb2, quota_pb2

T0 = datetime(2026, 3, 1, 9, 0, 0, 250_000, tzinfo=UTC)


def _grant_msg(**overrides: object) -> broker_pb2.Grant:
    fields: dict[str, object] = {
        "id": "gr_01jd5x8k2m9q4r7t3v6w0y1z2a",
        "project": "snu-llm",
        "institution": "snu",
        "sku": "H100-SXM-80GB",
        "count": 2,
        "slices": [
            common_pb2.Slice(node_id="h100-r001-n01", device_id="h100-r001-n01/gpu3"),
            common_pb2.Slice(node_id="h100-r001-n02", device_id="h100-r001-n02/gpu0"),
        ],
        "state": broker_pb2.GRANT_STATE_ACTIVE,
        "created_at": T0,
        "expires_at": T0 + timedelta(hours=2),
        "idempotency_key": "job-42",
    }
    fields.update(overrides)
    return broker_pb2.Grant(**fields)  # type: ignore[arg-type]


def test_a_grant_converts_field_for_field_with_aware_utc_times() -> None:
    grant = convert.grant(_grant_msg())
    assert grant == Grant(
        id="gr_01jd5x8k2m9q4r7t3v6w0y1z2a",
        project="snu-llm",
        institution="snu",
        sku="H100-SXM-80GB",
        count=2,
        slices=(Slice("h100-r001-n01", "h100-r001-n01/gpu3"), Slice("h100-r001-n02", "h100-r001-n02/gpu0")),
        state=GrantState.ACTIVE,
        created_at=T0,
        expires_at=T0 + timedelta(hours=2),
        ended_at=None,
        end_reason="",
        idempotency_key="job-42",
    )
    assert grant.created_at.tzinfo is UTC
    assert grant.live


def test_an_ended_grant_has_its_end() -> None:
    grant = convert.grant(
        _grant_msg(state=broker_pb2.GRANT_STATE_ENDED, ended_at=T0 + timedelta(minutes=5), end_reason="released")
    )
    assert (grant.state, grant.ended_at, grant.end_reason) == (GrantState.ENDED, T0 + timedelta(minutes=5), "released")
    assert not grant.live


@pytest.mark.parametrize(
    ("proto_state", "state"),
    [
        (broker_pb2.GRANT_STATE_PENDING, GrantState.PENDING),
        (broker_pb2.GRANT_STATE_ACTIVE, GrantState.ACTIVE),
        (broker_pb2.GRANT_STATE_ENDED, GrantState.ENDED),
        (broker_pb2.GRANT_STATE_FAILED, GrantState.FAILED),
        (broker_pb2.GRANT_STATE_UNSPECIFIED, GrantState.UNKNOWN),
        (99, GrantState.UNKNOWN),  # a state added by a newer server
    ],
)
def test_grant_states_map_and_unknown_ones_do_not_break_reading(proto_state: int, state: GrantState) -> None:
    assert convert.grant(_grant_msg(state=proto_state)).state is state


def test_every_proto_grant_state_has_an_sdk_state_of_the_same_name() -> None:
    for name, number in broker_pb2.GrantState.items():
        if number != broker_pb2.GRANT_STATE_UNSPECIFIED:
            sdk_state = GrantState(name.removeprefix("GRANT_STATE_").lower())
            assert convert.state_to_proto(sdk_state) == number


def test_results_are_frozen_and_slotted() -> None:
    grant = convert.grant(_grant_msg())
    with pytest.raises(dataclasses.FrozenInstanceError):
        grant.state = GrantState.ENDED  # type: ignore[misc]
    assert not hasattr(grant, "__dict__")


def test_a_node_reads_free_held_and_unhealthy_devices() -> None:
    msg = inventory_pb2.Node(
        id="rngd-r040-n02",
        site="daejeon",
        rack="r040",
        generation=12,
        schedulable=False,
        devices=[
            inventory_pb2.Device(id="rngd-r040-n02/npu0", sku="RNGD", index=0, healthy=True, holder="gr_x"),
            inventory_pb2.Device(id="rngd-r040-n02/npu1", sku="RNGD", index=1, healthy=True),
            inventory_pb2.Device(id="rngd-r040-n02/npu2", sku="RNGD", index=2, healthy=False),
        ],
    )
    node = convert.node(msg)
    assert isinstance(node, Node)
    assert [d.holder for d in node.devices] == ["gr_x", None, None]
    assert (node.free, node.unhealthy, node.skus, node.generation, node.schedulable) == (1, 1, ("RNGD",), 12, False)


@pytest.mark.parametrize(
    ("devices", "free", "unhealthy", "used", "utilization"),
    [
        (8, 5, 1, 2, 2 / 7),
        (8, 8, 0, 0, 0.0),
        (4, 0, 4, 0, 0.0),  # nothing healthy: no division by zero
        (0, 0, 0, 0, 0.0),
    ],
)
def test_capacity_used_and_utilization(devices: int, free: int, unhealthy: int, used: int, utilization: float) -> None:
    msg = inventory_pb2.SkuCapacity(sku="RNGD", nodes=1, devices=devices, free=free, unhealthy=unhealthy)
    capacity = convert.capacity(msg)
    assert capacity == SkuCapacity("RNGD", 1, devices, free, unhealthy)
    assert capacity.used == used
    assert capacity.utilization == pytest.approx(utilization)


def test_usage_rows_and_hours() -> None:
    msg = accounting_pb2.GetUsageResponse(
        rows=[
            accounting_pb2.UsageRow(
                institution="snu",
                project="snu-llm",
                sku="H100-SXM-80GB",
                device_seconds=7200.0,
                running_device_seconds=900.0,
                grants=2,
                running_grants=1,
            )
        ],
        as_of=T0,
    )
    usage = convert.usage(msg)
    assert usage.as_of == T0
    assert usage.rows == (UsageRow("snu", "snu-llm", "H100-SXM-80GB", 7200.0, 900.0, 2, 1),)
    assert (usage.rows[0].device_hours, usage.rows[0].running_device_hours) == (2.0, 0.25)


def test_project_maps_are_sorted_and_read_only() -> None:
    msg = quota_pb2.Project(
        id="snu-llm",
        institution="snu",
        display_name="Korean LLM pre-training",
        device_caps={"RNGD": 8, "H100-SXM-80GB": 64},
        devices_in_use={"H100-SXM-80GB": 8},
        generation=4,
    )
    project = convert.project(msg)
    assert project == Project(
        "snu-llm", "snu", "Korean LLM pre-training", {"H100-SXM-80GB": 64, "RNGD": 8}, {"H100-SXM-80GB": 8}, 4
    )
    assert list(project.device_caps) == ["H100-SXM-80GB", "RNGD"]
    with pytest.raises(TypeError):
        project.device_caps["RNGD"] = 99  # type: ignore[index]


def test_institution() -> None:
    institution = convert.institution(quota_pb2.Institution(id="kaist", display_name="KAIST", generation=3))
    assert (institution.id, institution.display_name, institution.generation) == ("kaist", "KAIST", 3)


def test_request_grant_builds_the_request_once_with_a_fresh_key() -> None:
    op = ops.request_grant("snu-llm", "RNGD", 4, "90m", None)
    request = op.request
    assert isinstance(request, broker_pb2.RequestGrantRequest)
    assert (request.project, request.sku, request.count, request.lease.seconds) == ("snu-llm", "RNGD", 4, 5400)
    assert len(request.idempotency_key) == 32
    again = ops.request_grant("snu-llm", "RNGD", 4, "90m", None).request
    mine = ops.request_grant("snu-llm", "RNGD", 4, 60, "mine").request
    assert isinstance(again, broker_pb2.RequestGrantRequest) and isinstance(mine, broker_pb2.RequestGrantRequest)
    assert again.idempotency_key != request.idempotency_key
    assert mine.idempotency_key == "mine"


@pytest.mark.parametrize("lease", ["soon", 0, timedelta(seconds=-1)])
def test_a_bad_lease_is_refused_before_any_call_as_the_server_would(lease: object) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        ops.request_grant("snu-llm", "RNGD", 1, lease, None)  # type: ignore[arg-type]
    err = caught.value
    assert (err.code, err.reason, err.field) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", "lease")


def test_list_filters_go_into_the_request() -> None:
    request = ops.list_grants_page("snu-llm", "active", 50, "tok").request
    assert isinstance(request, broker_pb2.ListGrantsRequest)
    assert (request.project, request.state, request.page_size, request.page_token) == (
        "snu-llm",
        broker_pb2.GRANT_STATE_ACTIVE,
        50,
        "tok",
    )
    assert ops.list_grants_page(None, None, 0, "").request == broker_pb2.ListGrantsRequest()


@pytest.mark.parametrize("state", ["bogus", GrantState.UNKNOWN])
def test_a_state_filter_must_be_a_real_state(state: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        ops.list_grants_page(None, state, 0, "")
    assert caught.value.field == "state"
    assert "pending, active, ended, failed" in caught.value.message


def test_every_rpc_names_a_method_of_its_service() -> None:
    rpcs = [value for value in vars(ops).values() if isinstance(value, ops.Rpc)]
    assert len(rpcs) == 13
    for rpc in rpcs:
        service = rpc.path.split("/")[1]
        assert service.lower() == f"slicebroker.v1.{rpc.service.value}service"
