"""Grants and events as Redis values (hash fields and JSON strings)."""

from __future__ import annotations

import json

from slicebroker.broker.domain.model import (
    WHOLE,
    ChangeType,
    Choice,
    EventType,
    Grant,
    GrantChange,
    GrantEvent,
    GrantState,
    PriorityClass,
    Shape,
    Slice,
    SliceKind,
)
from slicebroker.broker.domain.snapshot import ANYWHERE, NO_HOST, Constraint, HostResources, Topology


def grant_fields(grant: Grant) -> dict[str, str]:
    return {
        "id": grant.id,
        "project": grant.project,
        "sku": grant.sku,
        "count": str(grant.count),
        "lease_ms": str(grant.lease_ms),
        "idem": grant.idempotency_key,
        "state": grant.state.value,
        "created_ms": str(grant.created_ms),
        "institution": grant.institution,
        "slices": slices_json(grant.slices),
        "expires_ms": str(grant.expires_ms),
        "ended_ms": str(grant.ended_ms),
        "end_reason": grant.end_reason,
        "topology": _topology_text(grant.topology),
        "priority": grant.priority.value,
        "preemptible": "1" if grant.preemptible else "0",
        "warnings": json.dumps(list(grant.warnings)),
        "choices": json.dumps([[c.sku, c.count] for c in grant.choices], separators=(",", ":")),
        "queue": "1" if grant.queue else "0",
        "shape": json.dumps([grant.shape.kind.value, grant.shape.profile, grant.shape.compute, grant.shape.memory]),
        "host": f"{grant.host.cpu_milli}:{grant.host.memory_mib}",
        "waiting_reason": grant.waiting_reason,
        "started_ms": str(grant.started_ms),
        "start_after_ms": str(grant.start_after_ms),
        "preemption_deadline_ms": str(grant.preemption_deadline_ms),
        "preemption_reason": grant.preemption_reason,
        "user": grant.user,
    }


def activation_fields(grant: Grant) -> dict[str, str]:
    """What activation writes: the state and all that became known while granting."""
    fields = grant_fields(grant)
    return {
        k: fields[k]
        for k in (
            "state",
            "institution",
            "slices",
            "expires_ms",
            "sku",
            "count",
            "preemptible",
            "warnings",
            "started_ms",
        )
    }


def grant_from_fields(fields: dict[str, str]) -> Grant:
    return Grant(
        id=fields["id"],
        project=fields["project"],
        sku=fields["sku"],
        count=int(fields["count"]),
        lease_ms=int(fields["lease_ms"]),
        idempotency_key=fields.get("idem", ""),
        state=GrantState(fields["state"]),
        created_ms=int(fields["created_ms"]),
        institution=fields.get("institution", ""),
        slices=_slices(fields.get("slices") or "[]"),
        expires_ms=int(fields.get("expires_ms") or 0),
        ended_ms=int(fields.get("ended_ms") or 0),
        end_reason=fields.get("end_reason", ""),
        topology=_topology(fields.get("topology", "")),
        priority=PriorityClass(fields.get("priority") or PriorityClass.STANDARD),
        preemptible=fields.get("preemptible") == "1",
        warnings=tuple(json.loads(fields.get("warnings") or "[]")),
        choices=tuple(Choice(s, int(n)) for s, n in json.loads(fields.get("choices") or "[]")),
        queue=fields.get("queue") == "1",
        shape=_shape(fields.get("shape", "")),
        host=_host(fields.get("host", "")),
        waiting_reason=fields.get("waiting_reason", ""),
        started_ms=int(fields.get("started_ms") or 0),
        start_after_ms=int(fields.get("start_after_ms") or 0),
        preemption_deadline_ms=int(fields.get("preemption_deadline_ms") or 0),
        preemption_reason=fields.get("preemption_reason", ""),
        revision=fields.get("rev", ""),
        user=fields.get("user", ""),
    )


def change_from_entry(entry_id: str, fields: dict[str, str]) -> GrantChange:
    """A change-stream entry: its type and instant, and the grant hash as it was right after."""
    grant = grant_from_fields(fields).with_(revision=entry_id)
    return GrantChange(ChangeType(fields["_t"]), entry_id, grant, int(fields["_at"]))


def _host(text: str) -> HostResources:
    if not text or text == "0:0":
        return NO_HOST
    cpu, memory = text.split(":")
    return HostResources(int(cpu), int(memory))


def _topology_text(topology: Topology) -> str:
    """constraint:required, and :devices_per_member when there is one (records written before it
    existed have two fields, and read back with none)."""
    text = f"{topology.constraint.value}:{int(topology.required)}"
    return f"{text}:{topology.devices_per_member}" if topology.devices_per_member else text


def _topology(text: str) -> Topology:
    if not text:
        return ANYWHERE
    constraint, required, *per_member = text.split(":")
    return Topology(Constraint(constraint), required == "1", int(per_member[0]) if per_member else 0)


def slices_json(slices: tuple[Slice, ...]) -> str:
    """[node, device] for whole devices, [node, device, kind, profile] for slices of them."""
    return json.dumps(
        [[s.node_id, s.device_id, s.kind, s.profile] if s.kind else [s.node_id, s.device_id] for s in slices],
        separators=(",", ":"),
    )


def _slices(text: str) -> tuple[Slice, ...]:
    return tuple(Slice(*item) for item in json.loads(text))


def event_json(event: GrantEvent) -> str:
    return json.dumps(
        {
            "event_id": event.event_id,
            "grant_id": event.grant_id,
            "type": event.type.value,
            "institution": event.institution,
            "project": event.project,
            "sku": event.sku,
            "count": event.count,
            "at_ms": event.at_ms,
            "reason": event.reason,
            "slices": json.loads(slices_json(event.slices)),
            "slice_kind": event.slice_kind,
            "priority_class": event.priority_class,
            "user": event.user,
        },
        separators=(",", ":"),
    )


def event_from_json(text: str) -> GrantEvent:
    raw = json.loads(text)
    return GrantEvent(
        event_id=raw["event_id"],
        grant_id=raw["grant_id"],
        type=EventType(raw["type"]),
        institution=raw["institution"],
        project=raw["project"],
        sku=raw["sku"],
        count=int(raw["count"]),
        at_ms=int(raw["at_ms"]),
        reason=raw.get("reason", ""),
        slices=tuple(Slice(*item) for item in raw.get("slices", [])),
        slice_kind=raw.get("slice_kind", ""),
        priority_class=raw.get("priority_class", ""),
        user=raw.get("user", ""),
    )


def _shape(text: str) -> Shape:
    if not text:
        return WHOLE
    kind, profile, compute, memory = json.loads(text)
    return Shape(SliceKind(kind), profile, int(compute), int(memory))
