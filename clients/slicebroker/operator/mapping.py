"""What a pod asks for, read from its resources and annotations through the SKU catalogue.

Pure functions over plain dicts (the JSON form of a pod), so the webhook and the controller read a
pod the same way and the rules are testable without an API server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

import yaml

from slicebroker.core.catalogue import catalogue_text

GATE = "slicebroker.io/grant"
FINALIZER = "slicebroker.io/release"
ANNOTATION_PREFIX = "slicebroker.io/"
ANN_SKU = "slicebroker.io/sku"
ANN_COUNT = "slicebroker.io/count"
ANN_LEASE = "slicebroker.io/lease"
ANN_TOPOLOGY = "slicebroker.io/topology"
ANN_GRANT = "slicebroker.io/grant-id"
ANN_SLICES = "slicebroker.io/slices"
ANN_NODE = "slicebroker.io/node"
LABEL_INSTITUTION = "slicebroker.io/institution"
LABEL_PROJECT = "slicebroker.io/project"
CONDITION = "slicebroker.io/Granted"

# Extended-resource names the facility's device plugins use; anything under these is an
# accelerator request, known to the catalogue or not (an unknown one is refused, never let through).
ACCELERATOR_PREFIXES = ("nvidia.com/gpu", "nvidia.com/mig-", "furiosa.ai/", "rebellions.ai/")
# Annotations that ask for a grant by themselves (a pod with no extended resource, e.g. a DRA claim).
REQUEST_ANNOTATIONS = (ANN_SKU, ANN_COUNT, ANN_LEASE, ANN_TOPOLOGY)


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


@cache
def sku_names() -> tuple[str, ...]:
    return tuple(str(s["name"]) for s in yaml.safe_load(catalogue_text())["skus"])


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
    if sku_hint and sku_hint not in sku_names():
        raise PodRequestError("UnknownSku", f"{ANN_SKU}={sku_hint!r} is not a SKU; known: {', '.join(sku_names())}")
    lease = parse_lease(annotations[ANN_LEASE]) if ANN_LEASE in annotations else None
    topology = annotations.get(ANN_TOPOLOGY, "same-node")
    if totals:
        ((resource, count),) = totals.items()
        entry = known[resource]
        if entry.slice != "whole":
            raise PodRequestError(
                "UnsupportedSlice",
                f"{resource} is a {entry.slice} slice; the broker grants whole devices to pods for now "
                f"(ask for {'nvidia.com/gpu' if resource.startswith('nvidia') else 'a whole-device resource'})",
            )
        skus = entry.skus
        if sku_hint:
            if sku_hint not in skus:
                raise PodRequestError(
                    "SkuMismatch", f"{ANN_SKU}={sku_hint} does not publish {resource} (it fits {', '.join(skus)})"
                )
            skus = (sku_hint,)
        return PodRequest(skus=skus, count=count, resource=resource, lease=lease, topology=topology)
    if not sku_hint:
        raise PodRequestError("MissingSku", f"a pod without accelerator resources must name the SKU in {ANN_SKU}")
    count = _quantity(annotations.get(ANN_COUNT, "1"))
    if count < 1:
        raise PodRequestError("InvalidQuantity", f"{ANN_COUNT} must be at least 1")
    return PodRequest(skus=(sku_hint,), count=count, resource="", lease=lease, topology=topology)


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
