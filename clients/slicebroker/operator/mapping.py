"""What a pod asks for, read from its resources and annotations through the SKU catalogue.

Pure functions over plain dicts (the JSON form of a pod), so the webhook and the controller read a
pod the same way and the rules are testable without an API server.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Any

import yaml

from slicebroker.client import Placement, Shape
from slicebroker.core import catalogue
from slicebroker.core.catalogue import catalogue_text

GATE = "slicebroker.io/grant"
FINALIZER = "slicebroker.io/release"
ANNOTATION_PREFIX = "slicebroker.io/"
ANN_SKU = "slicebroker.io/sku"
ANN_COUNT = "slicebroker.io/count"
ANN_LEASE = "slicebroker.io/lease"
ANN_TOPOLOGY = "slicebroker.io/topology"
ANN_TOPOLOGY_REQUIRED = "slicebroker.io/topology-required"
ANN_PRIORITY = "slicebroker.io/priority"
PRIORITIES = ("guaranteed", "standard", "preemptible")
ANN_COMPUTE_MILLI = "slicebroker.io/compute-milli"
ANN_MEMORY_MILLI = "slicebroker.io/memory-milli"
ANN_GRANT = "slicebroker.io/grant-id"
ANN_SLICES = "slicebroker.io/slices"
ANN_NODE = "slicebroker.io/node"
ANN_SLICE_KIND = "slicebroker.io/slice-kind"
ANN_SLICE_PROFILE = "slicebroker.io/slice-profile"
LABEL_GANG = "slicebroker.io/gang"
"""Pods with the same value of this label in one namespace are one gang: granted all together."""
ANN_GANG_SIZE = "slicebroker.io/gang-size"
"""How many members the gang has; it is requested once all of them exist."""
LABEL_INSTITUTION = "slicebroker.io/institution"
LABEL_PROJECT = "slicebroker.io/project"
CONDITION = "slicebroker.io/Granted"

# Extended-resource names the facility's device plugins use; anything under these is an
# accelerator request, known to the catalogue or not (an unknown one is refused, never let through).
ACCELERATOR_PREFIXES = ("nvidia.com/gpu", "nvidia.com/mig-", "furiosa.ai/", "rebellions.ai/")
# Annotations that ask for a grant by themselves (a pod with no extended resource, e.g. a DRA claim).
REQUEST_ANNOTATIONS = (ANN_SKU, ANN_COUNT, ANN_LEASE, ANN_TOPOLOGY, ANN_COMPUTE_MILLI)
TOPOLOGIES = tuple(p.value for p in Placement)


@dataclass(frozen=True, slots=True)
class ResourceName:
    """One Kubernetes resource name of the catalogue: the SKUs it can stand for and the slice kind."""

    name: str
    skus: tuple[str, ...]
    slice: str
    profile: str


@cache
def resource_names() -> Mapping[str, ResourceName]:
    """Catalogue resource names (aliases included) → the SKUs that publish them, in catalogue order."""
    skus: dict[str, list[str]] = {}
    kinds: dict[str, tuple[str, str]] = {}
    for sku in yaml.safe_load(catalogue_text())["skus"]:
        for entry in sku.get("resource_names", ()):
            name = str(entry["name"])
            skus.setdefault(name, [])
            if sku["name"] not in skus[name]:
                skus[name].append(str(sku["name"]))
            kinds[name] = (str(entry.get("slice", "whole")), str(entry.get("profile", "")))
    return {n: ResourceName(n, tuple(s), *kinds[n]) for n, s in skus.items()}


def devices_for(sku: str, amounts: Mapping[str, int]) -> int:
    """The fewest devices of `sku` that can carry `amounts` (profile → instances), by what the
    instances take of devices' compute and memory together."""
    size = catalogue.instances_size(sku, amounts)
    return math.ceil(max(size.compute, size.memory))


def is_accelerator_resource(name: str) -> bool:
    return name in resource_names() or name.startswith(ACCELERATOR_PREFIXES)


class PodRequestError(ValueError):
    """A pod asks for accelerators in a way the operator cannot grant; `reason` becomes the event's."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class PodRequest:
    """What to ask the broker for on behalf of one pod."""

    skus: tuple[str, ...]
    """Acceptable SKUs in order of preference (a resource name such as nvidia.com/gpu fits several)."""
    count: int
    resource: str
    lease: timedelta | None
    topology: str
    required: bool = True
    """The topology is a requirement (refuse rather than place elsewhere), else a preference."""
    shape: Shape = field(default_factory=Shape)
    """Whole devices, a MIG / NPU partition profile, or a share of one device."""
    priority: str = ""
    """Priority class: guaranteed, standard or preemptible ("": the broker's default)."""


def wants_accelerators(pod: Mapping[str, Any]) -> bool:
    """Whether the webhook gates this pod: an accelerator resource or a request annotation."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    if any(key in annotations for key in REQUEST_ANNOTATIONS):
        return True
    return any(is_accelerator_resource(name) for name in _resource_totals(pod))


def _quantity(value: Any) -> int:
    text = str(value)
    if not re.fullmatch(r"\d+", text):
        raise PodRequestError("InvalidQuantity", f"accelerator quantities must be whole numbers, got {text!r}")
    return int(text)


def _container_amounts(container: Mapping[str, Any]) -> dict[str, Any]:
    resources = container.get("resources") or {}
    # Extended resources must have requests == limits; either one names the amount.
    amounts = dict(resources.get("requests") or {})
    amounts.update(resources.get("limits") or {})
    return amounts


def _resource_totals(pod: Mapping[str, Any]) -> dict[str, int]:
    """Per resource name, what the pod needs at once: the sum over its containers, or the largest
    init container if that is more (init containers run one at a time, before the others)."""
    spec = pod.get("spec") or {}
    totals: dict[str, int] = {}
    for container in spec.get("containers") or ():
        for name, value in _container_amounts(container).items():
            if is_accelerator_resource(name):
                totals[name] = totals.get(name, 0) + _quantity(value)
    for container in spec.get("initContainers") or ():
        for name, value in _container_amounts(container).items():
            if is_accelerator_resource(name):
                totals[name] = max(totals.get(name, 0), _quantity(value))
    return totals


def parse_lease(text: str) -> timedelta:
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text)
    if not match:
        raise PodRequestError("InvalidLease", f"{ANN_LEASE} must look like 90s, 30m, 2h or 1d, got {text!r}")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


def _milli(annotations: Mapping[str, str], key: str, low: int) -> int:
    text = annotations.get(key, "")
    if not text:
        return 0
    if not re.fullmatch(r"\d+", text.strip()) or not low <= int(text) <= 999:
        raise PodRequestError(
            "InvalidShare", f"{key} must be {low}-999 thousandths of one device (e.g. 250), got {text!r}"
        )
    return int(text)


def _share(annotations: Mapping[str, str]) -> Shape | None:
    """The share of one device the annotations ask for, or None when they ask for none."""
    compute = _milli(annotations, ANN_COMPUTE_MILLI, 1)
    memory = _milli(annotations, ANN_MEMORY_MILLI, 0)
    if not compute:
        if memory:
            raise PodRequestError("InvalidShare", f"{ANN_MEMORY_MILLI} goes with {ANN_COMPUTE_MILLI}")
        return None
    return Shape("share", "", compute, memory)


def _shape_of(entry: ResourceName, share: Shape | None) -> Shape:
    """The slice shape a catalogue resource name stands for (with the pod's share annotations)."""
    if entry.slice == "share":
        if share is None:
            raise PodRequestError(
                "MissingShare",
                f"{entry.name} is a share of a device; say how much with {ANN_COMPUTE_MILLI} "
                "(thousandths of one device, e.g. 250)",
            )
        return share
    if share is not None:
        shared = sorted(n for n, r in resource_names().items() if r.slice == "share" and "/" in n)
        raise PodRequestError(
            "ShareNeedsSharedResource",
            f"{ANN_COMPUTE_MILLI} asks for a share of a device, but {entry.name} is a {entry.slice} "
            f"{'device' if entry.slice == 'whole' else 'slice'}; ask for {', '.join(shared)} instead "
            f"(or for no resource, with {ANN_SKU})",
        )
    if entry.slice == "whole":
        return Shape()
    if not entry.profile:
        examples = sorted(n for n, r in resource_names().items() if r.slice == entry.slice and r.profile)[:2]
        raise PodRequestError(
            "UnsupportedSlice",
            f"{entry.name} names no {entry.slice} profile; ask for a profile's resource such as "
            f"{' or '.join(examples)}",
        )
    return Shape(entry.slice, entry.profile)


def read_request(pod: Mapping[str, Any]) -> PodRequest:
    """The grant request a pod stands for, or `PodRequestError` saying what is wrong with it."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    totals = {name: n for name, n in _resource_totals(pod).items() if n > 0}
    known = resource_names()
    unknown = sorted(name for name in totals if name not in known)
    if unknown:
        names = ", ".join(sorted(n for n, r in known.items() if r.slice == "whole" and "/" in n))
        raise PodRequestError(
            "UnknownResource",
            f"resource {', '.join(unknown)} is not in the SKU catalogue; use one of {names}",
        )
    if len(totals) > 1:
        raise PodRequestError(
            "MixedAccelerators", f"a pod may ask for one accelerator resource, got {', '.join(sorted(totals))}"
        )
    sku_hint = annotations.get(ANN_SKU, "")
    skus = catalogue.sku_names()
    if sku_hint and sku_hint not in skus:
        raise PodRequestError("UnknownSku", f"{ANN_SKU}={sku_hint!r} is not a SKU; known: {', '.join(skus)}")
    lease = parse_lease(annotations[ANN_LEASE]) if ANN_LEASE in annotations else None
    gang = gang_of(pod)
    topology = annotations.get(ANN_TOPOLOGY, "anywhere" if gang else "same-node")
    if topology not in TOPOLOGIES:
        raise PodRequestError("InvalidTopology", f"{ANN_TOPOLOGY} must be one of {', '.join(TOPOLOGIES)}")
    required_text = annotations.get(ANN_TOPOLOGY_REQUIRED, "true").strip().lower()
    if required_text not in ("true", "false"):
        raise PodRequestError("InvalidTopology", f"{ANN_TOPOLOGY_REQUIRED} must be true or false")
    required = required_text == "true"
    priority = annotations.get(ANN_PRIORITY, "")
    if priority and priority not in PRIORITIES:
        raise PodRequestError("InvalidPriority", f"{ANN_PRIORITY} must be one of {', '.join(PRIORITIES)}")
    share = _share(annotations)
    if totals:
        ((resource, count),) = totals.items()
        entry = known[resource]
        shape = _shape_of(entry, share)
        skus = entry.skus
        if sku_hint:
            if sku_hint not in skus:
                raise PodRequestError(
                    "SkuMismatch", f"{ANN_SKU}={sku_hint} does not publish {resource} (it fits {', '.join(skus)})"
                )
            skus = (sku_hint,)
        return PodRequest(skus, count, resource, lease, topology, required, shape, priority)
    if not sku_hint:
        raise PodRequestError("MissingSku", f"a pod without accelerator resources must name the SKU in {ANN_SKU}")
    count = _quantity(annotations.get(ANN_COUNT, "1"))
    if count < 1:
        raise PodRequestError("InvalidQuantity", f"{ANN_COUNT} must be at least 1")
    return PodRequest((sku_hint,), count, "", lease, topology, required, share or Shape(), priority)


def gang_of(pod: Mapping[str, Any]) -> str:
    """The pod's gang (its slicebroker.io/gang label), or "" when it is not in one."""
    return str(((pod.get("metadata") or {}).get("labels") or {}).get(LABEL_GANG, ""))


def gang_size(pod: Mapping[str, Any]) -> int:
    """How many members the pod's gang has (its slicebroker.io/gang-size annotation)."""
    text = str(((pod.get("metadata") or {}).get("annotations") or {}).get(ANN_GANG_SIZE, ""))
    if not re.fullmatch(r"\d+", text) or int(text) < 1:
        raise PodRequestError(
            "InvalidGang", f"a pod labelled {LABEL_GANG} needs {ANN_GANG_SIZE}: the number of members, got {text!r}"
        )
    return int(text)


def assign_members(
    members: Sequence[str], slices: Sequence[tuple[str, str]], per_member: int, pinned: Mapping[str, str]
) -> dict[str, list[int]] | None:
    """Splits a gang's slices (node, device) among its members, `per_member` on one node each.

    Deterministic: members in name order take the slices in (node, device) order, node by node, so
    a replay after a restart gives every member the same slices. A member already pinned to a node
    (`pinned`: member → node; affinity can only narrow) gets slices on that node first. Returns the
    indices into `slices` per member, or None when the slices do not divide into whole members.
    """
    by_node: dict[str, list[int]] = {}
    for index in sorted(range(len(slices)), key=lambda i: (slices[i][0], _natural(slices[i][1]), i)):
        by_node.setdefault(slices[index][0], []).append(index)
    chunks: dict[str, list[list[int]]] = {
        node: [ids[i : i + per_member] for i in range(0, len(ids) - per_member + 1, per_member)]
        for node, ids in by_node.items()
    }
    if len(slices) != per_member * len(members):
        return None
    assigned: dict[str, list[int]] = {}
    for member in sorted(members):
        node = pinned.get(member, "")
        if node:
            if not chunks.get(node):
                return None
            assigned[member] = chunks[node].pop(0)
    for member in sorted(members):
        if member in assigned:
            continue
        free = next((n for n in sorted(chunks) if chunks[n]), None)
        if free is None:
            return None
        assigned[member] = chunks[free].pop(0)
    return assigned


def _natural(text: str) -> tuple[str | int, ...]:
    """Sort key that puts gpu2 before gpu10."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def gate_patch(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The JSON patch the admission webhook returns: our scheduling gate and release finalizer."""
    spec = pod.get("spec") or {}
    meta = pod.get("metadata") or {}
    ops: list[dict[str, Any]] = []
    gates = spec.get("schedulingGates")
    if not gates:
        ops.append({"op": "add", "path": "/spec/schedulingGates", "value": [{"name": GATE}]})
    elif not any(g.get("name") == GATE for g in gates):
        ops.append({"op": "add", "path": "/spec/schedulingGates/-", "value": {"name": GATE}})
    finalizers = meta.get("finalizers")
    if not finalizers:
        ops.append({"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]})
    elif FINALIZER not in finalizers:
        ops.append({"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER})
    return ops


def pin_to_node(spec: dict[str, Any], node: str) -> None:
    """Narrows a gated pod's spec to `node` the only way a gated pod may be changed: adding a
    required node-affinity requirement to every term (terms are ORed, so each must be narrowed),
    or setting the affinity when there is none (KEP-3838)."""
    requirement = {"key": "metadata.name", "operator": "In", "values": [node]}
    affinity = spec.setdefault("affinity", None) or {}
    spec["affinity"] = affinity
    node_affinity = affinity.setdefault("nodeAffinity", None) or {}
    affinity["nodeAffinity"] = node_affinity
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = required
    terms: list[dict[str, Any]] = required.get("nodeSelectorTerms") or []
    if not terms:
        required["nodeSelectorTerms"] = [{"matchFields": [requirement]}]
        return
    for term in terms:
        fields = term.get("matchFields") or []
        if requirement not in fields:
            fields.append(dict(requirement))
        term["matchFields"] = fields


def without_gate(gates: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    return [dict(g) for g in gates or () if g.get("name") != GATE]
