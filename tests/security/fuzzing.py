"""Property-based fuzzing of every RPC of every service: requests drawn from the proto descriptors
(empty, huge, negative, NaN, unicode, unknown enum values, unknown and known ids), sent as an admin,
a tenant or nobody. Every call must end in a clear status (never UNKNOWN or INTERNAL), the servers
must keep serving, and a refused call must leave the services' Redis state exactly as it was.

Runs synchronously (hypothesis drives sync code), so callers with servers on an event loop run it
in a thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import redis
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from slicebroker.v1 import (
    accounting_pb2,
    accounting_pb2_grpc,
    audit_pb2,
    audit_pb2_grpc,
    broker_pb2,
    broker_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
    quota_pb2,
    quota_pb2_grpc,
)

SERVICES: dict[str, tuple[Any, Any, str]] = {
    "inventory": (inventory_pb2, inventory_pb2_grpc.InventoryServiceStub, "InventoryService"),
    "quota": (quota_pb2, quota_pb2_grpc.QuotaServiceStub, "QuotaService"),
    "accounting": (accounting_pb2, accounting_pb2_grpc.AccountingServiceStub, "AccountingService"),
    "broker": (broker_pb2, broker_pb2_grpc.BrokerServiceStub, "BrokerService"),
}
# Streams that never end by themselves: a deadline is their normal end here.
ENDLESS = {"Watch", "WatchGrants"}
KNOWN_IDS = [
    "uni-a",
    "lab-b",
    "uni-a-llm",
    "lab-b-bio",
    "H100-SXM-80GB",
    "RNGD",
    "h100-r01-n01",
    "h100-r01-n01/gpu0",
    "gr_00000000000000000000000000",
    "2025-11",
]
WEIRD = ["", " ", "x" * 5000, "é\u200b😀\u202e", "../../etc/passwd", "\x00", "-1", "NaN", "*", "{sb:quota}:x"]


def _scalar(f: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = f.type
    if t == FieldDescriptor.TYPE_STRING:
        return st.one_of(st.sampled_from(KNOWN_IDS), st.sampled_from(WEIRD), st.text(max_size=40))
    if t == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        width = 32 if t == FieldDescriptor.TYPE_FLOAT else 64
        return st.one_of(st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, 1e308]), st.floats(width=width))
    if t == FieldDescriptor.TYPE_ENUM:
        return st.integers(-3, 12)
    bits = 64 if t in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64) else 32
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return st.integers(0, 2**32 - 1)
    if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return st.integers(0, 2**64 - 1)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return st.one_of(st.sampled_from([lo, -1, 0, 1, 2, 8, 1000, 10**6, hi]), st.integers(lo, hi))


def _repeated(f: FieldDescriptor) -> bool:
    flag = getattr(f, "is_repeated", None)
    return bool(flag) if isinstance(flag, bool) else f.label == FieldDescriptor.LABEL_REPEATED


def messages(descriptor: Any, cls: type[Message], depth: int = 0) -> st.SearchStrategy[Message]:
    """Requests of one type: each field unset or drawn, nested messages to a few levels."""
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for f in descriptor.fields:
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            key, value = f.message_type.fields_by_name["key"], f.message_type.fields_by_name["value"]
            if value.message_type is not None:
                continue
            parts[f.name] = st.dictionaries(_scalar(key), _scalar(value), max_size=3)
            continue
        if f.message_type is not None:
            if depth >= 3:
                continue
            inner = _sub(f)
            parts[f.name] = st.lists(inner, max_size=3) if _repeated(f) else inner
            continue
        parts[f.name] = st.lists(_scalar(f), max_size=4) if _repeated(f) else _scalar(f)

    def build(values: dict[str, Any]) -> Message:
        msg = cls()
        for name, value in values.items():
            if value is None:
                continue
            target = getattr(msg, name, None)
            try:
                if isinstance(value, dict):
                    target.update(value)
                elif isinstance(value, list):
                    if value and isinstance(value[0], Message):
                        for item in value:
                            target.add().CopyFrom(item)
                    else:
                        target.extend(value)
                elif isinstance(value, Message):
                    target.CopyFrom(value)
                else:
                    setattr(msg, name, value)
            except (ValueError, TypeError):  # e.g. a value protobuf itself refuses to hold
                continue
        return msg

    optional = {name: st.one_of(st.none(), s) for name, s in parts.items()}
    return st.fixed_dictionaries(optional).map(build)


def _sub(f: FieldDescriptor) -> st.SearchStrategy[Message]:
    from google.protobuf import message_factory

    cls = message_factory.GetMessageClass(f.message_type)
    return st.deferred(lambda: messages(f.message_type, cls, 3))


@dataclass
class FuzzReport:
    inputs: int = 0
    by_code: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def state_digest(client: redis.Redis) -> str:
    """A digest of every key's value except the audit streams (refusals are audited on purpose)."""
    h = hashlib.sha256()
    keys = sorted(k for k in client.scan_iter(count=1000) if not k.endswith(b":audit"))
    values = client.pipeline(transaction=False)
    for key in keys:
        values.dump(key)
    for key, value in zip(keys, values.execute(), strict=True):
        h.update(key)
        h.update(value or b"")
    return h.hexdigest()


def methods_of(service: str) -> list[tuple[str, Any, Any, bool]]:
    module, _, name = SERVICES[service]
    desc = module.DESCRIPTOR.services_by_name[name]
    from google.protobuf import message_factory

    return [
        (m.name, m.input_type, message_factory.GetMessageClass(m.input_type), m.server_streaming) for m in desc.methods
    ]


# Methods whose refusals may rightly leave a mark: a replayed RequestGrant must return the same
# refusal, so the broker remembers the answer under the idempotency key.
REMEMBERS_REFUSALS = {"RequestGrant"}


def run_fuzz(
    channel_for: Callable[[str], grpc.Channel],
    metadata_for: dict[str, Sequence[tuple[str, str]]],
    redis_url: str,
    examples_per_rpc: int,
    services: Sequence[str] = ("inventory", "quota", "accounting", "broker"),
    seed_derandomize: bool = True,
) -> FuzzReport:
    report = FuzzReport()
    client = redis.Redis.from_url(redis_url)
    callers = sorted(metadata_for)
    try:
        for service in services:
            channel = channel_for(service)
            stub = SERVICES[service][1](channel)
            audit = audit_pb2_grpc.AuditServiceStub(channel)
            targets = [(m, d, c, s, getattr(stub, m)) for m, d, c, s in methods_of(service)]
            in_type = audit_pb2.DESCRIPTOR.message_types_by_name["ListAuditRequest"]
            targets.append(("ListAudit", in_type, audit_pb2.ListAuditRequest, False, audit.ListAudit))
            for name, descriptor, cls, streaming, call in targets:
                _fuzz_method(report, service, name, descriptor, cls, streaming, call, callers, metadata_for, client,
                             examples_per_rpc, seed_derandomize)  # fmt: skip
            channel.close()
    finally:
        client.close()
    return report


def _fuzz_method(
    report: FuzzReport,
    service: str,
    name: str,
    descriptor: Any,
    cls: type[Message],
    streaming: bool,
    call: Any,
    callers: list[str],
    metadata_for: dict[str, Sequence[tuple[str, str]]],
    client: redis.Redis,
    examples: int,
    derandomize: bool,
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=derandomize,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(request=messages(descriptor, cls), who=st.sampled_from(callers))
    def one(request: Message, who: str) -> None:
        before = state_digest(client)
        metadata = metadata_for[who]
        code = grpc.StatusCode.OK
        try:
            if streaming:
                for _ in call(request, metadata=metadata, timeout=0.5 if name in ENDLESS else 10):
                    pass
            else:
                call(request, metadata=metadata, timeout=10)
        except grpc.RpcError as err:
            code = err.code()
            detail = err.details()
        report.inputs += 1
        report.by_code[code.name] = report.by_code.get(code.name, 0) + 1
        where = f"{service}.{name} as {who}"
        if code in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL):
            report.failures.append(f"{where}: {code.name} {detail!r} for {request!r}"[:600])
        elif code == grpc.StatusCode.DEADLINE_EXCEEDED and name not in ENDLESS:
            report.failures.append(f"{where}: deadline exceeded for {request!r}"[:600])
        elif code == grpc.StatusCode.UNAVAILABLE:
            report.failures.append(f"{where}: server unavailable after {request!r}"[:600])
        elif (
            code not in (grpc.StatusCode.OK, grpc.StatusCode.DEADLINE_EXCEEDED)
            and name not in REMEMBERS_REFUSALS
            and state_digest(client) != before
        ):
            report.failures.append(f"{where}: refused with {code.name} but state changed: {request!r}"[:600])

    one()
