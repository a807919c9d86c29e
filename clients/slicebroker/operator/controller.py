"""The controller: watches pods, SliceClaims, namespaces and nodes, and turns them into grants.

Threads, not asyncio: the official Kubernetes client and the SDK's `Client` both block, the work
is a few API calls per object, and a small pool of worker threads behind one de-duplicating work
queue (the client-go controller pattern) gives per-object serialisation without an event loop to
share with the caller (the tests run the mesh on their own asyncio loop in the same process).

Per pod, `reconcile_pod` is idempotent and restart-safe: a grant is requested with an idempotency
key made from the pod's uid, so a replay after a crash returns the grant already made; the release
finalizer that the webhook adds means a pod deleted while the operator is down waits for it, and
nothing leaks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from slicebroker.client import (
    Client,
    FailedPreconditionError,
    Grant,
    GrantChange,
    GrantChangeType,
    GrantState,
    NodeTopology,
    NotFoundError,
    Slice,
    SlicebrokerError,
)
from slicebroker.core.catalogue import partition_sizes
from slicebroker.operator import grants, mapping
from slicebroker.operator.kube import JSON, MERGE, STRATEGIC, Gone, Kube, KubeError
from slicebroker.operator.settings import OperatorSettings
from slicebroker.operator.workqueue import WorkQueue

log = logging.getLogger("slicebroker.operator")

GROUP = "slicebroker.io"
CLAIM_VERSION = "v1alpha1"
CLAIMS = f"/apis/{GROUP}/{CLAIM_VERSION}"
COMPONENT = "slicebroker-operator"

Key = tuple[str, str, str]
"""(kind, namespace, name): "pod", "claim", "node" or "namespace"."""


ANN_ATTEMPT = "slicebroker.io/attempt"


def pod_key(pod: JSON) -> str:
    """The idempotency key of a pod's grant: its uid (and the attempt, after a grant lapsed), so a
    replay after a restart returns the grant already made."""
    meta = pod["metadata"]
    attempt = (meta.get("annotations") or {}).get(ANN_ATTEMPT, "")
    return f"k8s-pod-{meta['uid']}" + (f"-{attempt}" if attempt else "")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ending(pod: JSON) -> bool:
    """Deleted, or finished: its grant may go."""
    return bool(pod["metadata"].get("deletionTimestamp")) or (pod.get("status") or {}).get("phase") in (
        "Succeeded",
        "Failed",
    )


def _is_gated(pod: JSON) -> bool:
    return any(g.get("name") == mapping.GATE for g in (pod.get("spec") or {}).get("schedulingGates") or ())


def _key_of(kind: str, obj: JSON) -> Key:
    meta = obj.get("metadata") or {}
    return (kind, str(meta.get("namespace", "")), str(meta.get("name", "")))


@dataclass
class Held:
    """A grant the operator renews: whose it is and when its lease ends."""

    key: Key
    uid: str
    lease: timedelta
    expires: float
    """Epoch seconds."""


class Operator:
    def __init__(self, settings: OperatorSettings, kube: Kube, sb: Client) -> None:
        self.settings = settings
        self.kube = kube
        self.sb = sb
        self.queue: WorkQueue[Key] = WorkQueue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._namespaces: dict[str, dict[str, str]] = {}
        self._interesting: dict[str, set[str]] = {}
        """Namespace → names of pods that carry our gate, finalizer or grant."""
        self._gangs: dict[str, set[str]] = {}
        """Namespace → gangs seen there (re-queued when the namespace's mapping changes)."""
        self._held: dict[str, Held] = {}
        """Grant id → renewal state."""
        self._last_event: dict[str, tuple[str, str]] = {}
        self._nodes: dict[str, SyncedNode] = {}
        """Node name → what was last sent to inventory."""
        self.bound = 0
        self._claims_served = False
        self._notices: dict[str, tuple[float, str]] = {}
        """Grant id → (deadline, epoch seconds; reason) of a preemption notice from the broker."""
        self._identity = os.environ.get("HOSTNAME", "local")

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._claims_served = (
            self.kube.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/sliceclaims.{GROUP}") is not None
        )
        watches: list[tuple[str, str, Callable[[str, JSON], None]]] = [
            ("namespaces", "/api/v1/namespaces", self._on_namespace),
            ("pods", "/api/v1/pods", self._on_pod),
        ]
        if self._claims_served:
            watches.append(("claims", f"{CLAIMS}/sliceclaims", self._on_claim))
        else:
            log.warning("SliceClaim CRD not installed: claims are not served")
        if self.settings.node_sync:
            watches.append(("nodes", "/api/v1/nodes", self._on_node))
        # Namespaces first, so the first pod reconciles find their mapping.
        ns_items, _ = self.kube.list_all("/api/v1/namespaces")
        for item in ns_items:
            self._on_namespace("ADDED", item)
        for name, path, handler in watches:
            self._spawn(f"watch-{name}", self._watch_loop, path, handler)
        for i in range(max(1, self.settings.workers)):
            self._spawn(f"worker-{i}", self._worker)
        self._spawn("renewer", self._renewer)
        if self.settings.watch_grants:
            self._spawn("watch-grants", self._watch_grants)

    @property
    def running(self) -> bool:
        """Started and not stopped (a standby replica's operator is not running)."""
        return bool(self._threads) and not self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()
        self.queue.shutdown()
        for thread in self._threads:
            # Watch threads end at their request's timeout; workers and the renewer right away.
            if "-watch-" not in thread.name:
                thread.join(timeout=10)

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=f"{COMPONENT}-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    # -- watching ------------------------------------------------------------------------------

    def _watch_loop(self, path: str, handler: Callable[[str, JSON], None]) -> None:
        rv = ""
        last_list = 0.0
        while not self._stop.is_set():
            try:
                if not rv or time.monotonic() - last_list > self.settings.resync_s:
                    items, rv = self.kube.list_all(path)
                    last_list = time.monotonic()
                    for item in items:
                        handler("SYNC", item)
                for kind, obj in self.kube.watch(path, rv, self.settings.watch_timeout_s):
                    if self._stop.is_set():
                        return
                    rv = str((obj.get("metadata") or {}).get("resourceVersion", rv))
                    if kind != "BOOKMARK":
                        handler(kind, obj)
            except Gone:
                rv = ""
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("watch of %s failed; listing again", path)
                rv = ""
                self._stop.wait(1.0)

    def _on_namespace(self, kind: str, ns: JSON) -> None:
        name = str(ns["metadata"]["name"])
        labels = dict(ns["metadata"].get("labels") or {})
        with self._lock:
            before = self._namespaces.get(name)
            if kind == "DELETED":
                self._namespaces.pop(name, None)
                return
            self._namespaces[name] = labels
            waiting = list(self._interesting.get(name, ())) if before != labels else []
            waiting_gangs = list(self._gangs.get(name, ())) if before != labels else []
        for pod in waiting:
            self.queue.add(("pod", name, pod))
        for gang in waiting_gangs:
            self.queue.add(("gang", name, gang))

    def _on_pod(self, kind: str, pod: JSON) -> None:
        meta = pod.get("metadata") or {}
        ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        if ns in self.settings.excluded_namespaces:
            return
        ours = (
            any(g.get("name") == mapping.GATE for g in (pod.get("spec") or {}).get("schedulingGates") or ())
            or mapping.FINALIZER in (meta.get("finalizers") or ())
            or mapping.ANN_GRANT in (meta.get("annotations") or {})
        )
        gang_name = mapping.gang_of(pod)
        with self._lock:
            names = self._interesting.setdefault(ns, set())
            if ours and kind != "DELETED":
                names.add(name)
                if gang_name:
                    self._gangs.setdefault(ns, set()).add(gang_name)
            else:
                names.discard(name)
        if ours or kind == "DELETED":
            self.queue.add(("pod", ns, name))
        gang = mapping.gang_of(pod)
        if gang and ours:
            # A gang is granted as one: its members' arrivals, departures and namespace changes
            # all come back to one key, processed by one worker at a time.
            self.queue.add(("gang", ns, gang))

    def _on_claim(self, kind: str, claim: JSON) -> None:
        self.queue.add(_key_of("claim", claim))

    def _on_node(self, kind: str, node: JSON) -> None:
        self.queue.add(("node", "", str(node["metadata"]["name"])))

    # -- workers -------------------------------------------------------------------------------

    def _worker(self) -> None:
        handlers: dict[str, Callable[[str, str], float | None]] = {
            "pod": self.reconcile_pod,
            "claim": self.reconcile_claim,
            "node": self.reconcile_node,
            "gang": self.reconcile_gang,
            "preempt": self.reconcile_preemption,
        }
        while True:
            key = self.queue.get()
            if key is None:
                return
            kind, ns, name = key
            retry: float | None
            try:
                retry = handlers[kind](ns, name)
            except KubeError as err:
                # 409: someone (often our own previous update) changed the object; read it again.
                retry = 0.05 if err.status == 409 else self.settings.retry_s
                if err.status != 409:
                    log.warning("reconcile %s/%s/%s: %s", kind, ns, name, err)
            except Exception:
                log.exception("reconcile %s/%s/%s failed", kind, ns, name)
                retry = self.settings.retry_s
            finally:
                self.queue.done(key)
            if retry is not None and not self._stop.is_set():
                self.queue.add_after(key, retry)

    # -- pods ----------------------------------------------------------------------------------

    def _project_of(self, namespace: str) -> tuple[str, str] | None:
        with self._lock:
            labels = self._namespaces.get(namespace)
        if labels is None:
            ns = self.kube.get(f"/api/v1/namespaces/{namespace}")
            labels = dict(((ns or {}).get("metadata") or {}).get("labels") or {})
        project = labels.get(mapping.LABEL_PROJECT, "")
        if not project:
            return None
        return labels.get(mapping.LABEL_INSTITUTION, ""), project

    def _unmapped_message(self, namespace: str) -> str:
        return (
            f"namespace {namespace} is not mapped to a slicebroker project: "
            f"kubectl label namespace {namespace} {mapping.LABEL_INSTITUTION}=<institution> "
            f"{mapping.LABEL_PROJECT}=<project> (the pod stays gated until then)"
        )

    def reconcile_pod(self, ns: str, name: str) -> float | None:
        path = f"/api/v1/namespaces/{ns}/pods/{name}"
        pod = self.kube.get(path)
        if pod is None:
            return None
        meta = pod["metadata"]
        spec = pod.get("spec") or {}
        annotations = meta.get("annotations") or {}
        gated = any(g.get("name") == mapping.GATE for g in spec.get("schedulingGates") or ())
        finalized = mapping.FINALIZER in (meta.get("finalizers") or ())
        grant_id = annotations.get(mapping.ANN_GRANT, "")
        if not (gated or finalized or grant_id):
            return None
        uid = str(meta["uid"])
        phase = (pod.get("status") or {}).get("phase", "")
        gang = mapping.gang_of(pod)
        if meta.get("deletionTimestamp") or phase in ("Succeeded", "Failed"):
            why = "pod deleted" if meta.get("deletionTimestamp") else f"pod {phase}"
            if not gang:
                self._release(pod, grant_id, f"k8s-pod-{uid}", why)
            elif grant_id and not self._gang_holders(ns, gang, grant_id, exclude=name):
                # The gang's one grant goes with its last member.
                self._release(pod, grant_id, "", f"{why}, the last of gang {gang}")
            if finalized:
                self._drop_finalizer(path, meta)
            if gang and gated:
                self.queue.add(("gang", ns, gang))
            return None
        if not gated:
            if grant_id:
                self._hold(grant_id, ("pod", ns, name), uid, annotations)
            return None
        if gang:
            self.queue.add(("gang", ns, gang))
            return None
        return self._grant_pod(path, pod)

    def _gang_holders(self, ns: str, gang: str, grant_id: str, exclude: str = "") -> list[str]:
        """Members of the gang still alive (not ending) that carry `grant_id`."""
        pods, _ = self.kube.list_all(
            f"/api/v1/namespaces/{ns}/pods", query={"labelSelector": f"{mapping.LABEL_GANG}={gang}"}
        )
        return sorted(
            p["metadata"]["name"]
            for p in pods
            if p["metadata"]["name"] != exclude
            and not _ending(p)
            and (p["metadata"].get("annotations") or {}).get(mapping.ANN_GRANT) == grant_id
        )

    # -- gangs ---------------------------------------------------------------------------------

    def reconcile_gang(self, ns: str, gang: str) -> float | None:
        """Grants a gang (pods labelled slicebroker.io/gang=<gang>) as one request, all or nothing.

        Once every member exists, one grant of members x per-member devices is requested, each
        member's devices on one node (the broker's `devices_per_member`), with the members'
        topology (same leaf, NVLink domain, node, spread; required or preferred) and an
        idempotency key made from the members' uids. The slices are split among the members
        deterministically (`mapping.assign_members`). Then, in two passes, every member is first
        narrowed to its node and annotated while still gated, and only then are the gates removed:
        no member is released to the scheduler before all of them are pinned, and a restart
        between the passes replays the same grant and the same split."""
        pods, _ = self.kube.list_all(
            f"/api/v1/namespaces/{ns}/pods", query={"labelSelector": f"{mapping.LABEL_GANG}={gang}"}
        )
        members = sorted((p for p in pods if not _ending(p)), key=lambda p: str(p["metadata"]["name"]))
        gated = [p for p in members if _is_gated(p)]
        if not gated:
            return None
        prefix = f"k8s-gang-{ns}.{gang}."
        tenant = self._project_of(ns)
        if tenant is None:
            for pod in gated:
                self._pending(pod, "NamespaceNotMapped", self._unmapped_message(ns), warning=True)
            return None
        try:
            sizes = {mapping.gang_size(p) for p in members}
            if len(sizes) != 1:
                raise mapping.PodRequestError(
                    "GangMismatch", f"members of gang {gang} disagree on {mapping.ANN_GANG_SIZE}: {sorted(sizes)}"
                )
            requests = {mapping.read_request(p) for p in members}
            counts = sorted({r.count for r in requests})
            if len(counts) > 1:
                # Each member's devices go on one node, so every member must need the same number.
                raise mapping.PodRequestError(
                    "GangMismatch",
                    f"members of gang {gang} ask for different numbers of devices per pod "
                    f"({', '.join(map(str, counts))}); every member must ask for the same",
                )
            if len(requests) != 1:
                raise mapping.PodRequestError(
                    "GangMismatch",
                    f"members of gang {gang} must ask for the same accelerators, lease and topology",
                )
        except mapping.PodRequestError as err:
            for pod in gated:
                self._pending(pod, err.reason, err.message, warning=True)
            return None
        (size,), (request,) = sizes, requests
        if len(members) != size:
            # A gang that lost a member after its grant (a restart between the passes) must not
            # keep holding devices it cannot use.
            self._release(gated[0], "", prefix, f"gang {gang} has {len(members)} of {size} members")
            for pod in gated:
                self._pending(
                    pod,
                    "GangIncomplete",
                    f"gang {gang}: {len(members)} of {size} members exist; waiting for all of them",
                    warning=len(members) > size,
                )
            return None
        lease = request.lease or timedelta(seconds=self.settings.default_lease_s)
        attempt = max(int((p["metadata"].get("annotations") or {}).get(ANN_ATTEMPT, "0")) for p in members)
        uids = ",".join(str(p["metadata"]["uid"]) for p in members)
        key = prefix + hashlib.sha256(uids.encode()).hexdigest()[:32] + (f"-{attempt}" if attempt else "")
        what = f"{size * request.count} x {'/'.join(request.skus)} ({size} members, {request.topology})"
        try:
            grant = grants.request_grant(
                self.sb,
                tenant[1],
                request.skus[0],
                size * request.count,
                lease,
                key,
                request.topology,
                alternatives=request.skus[1:],
                required=request.required,
                shape=request.shape,
                priority=request.priority,
                # Each member's devices on one node: the broker never splits a pod across nodes.
                devices_per_member=request.count if request.count > 1 else 0,
            )
        except SlicebrokerError as err:
            for pod in gated:
                self._pending(
                    pod,
                    "GrantPending",
                    f"gang {gang} waiting for {what} for project {tenant[1]}: {err.reason}: {err.message}",
                    warning=err.reason not in ("INSUFFICIENT_CAPACITY",),
                )
            return self.settings.retry_s
        if grant.state in (GrantState.ENDED, GrantState.FAILED):
            self._next_attempt(members, attempt)
            for pod in gated:
                self._pending(pod, "GrantFailed", _failed_text(grant), warning=True)
            return self.settings.retry_s
        if grant.state is not GrantState.ACTIVE or not grant.slices:
            for pod in gated:
                self._pending(pod, "GrantQueued", f"gang {gang}: {_queued_text(grant, what)}", warning=False)
            return self.settings.retry_s
        names = [str(p["metadata"]["name"]) for p in members]
        pinned = {
            str(p["metadata"]["name"]): str(p["metadata"]["annotations"][mapping.ANN_NODE])
            for p in members
            if (p["metadata"].get("annotations") or {}).get(mapping.ANN_NODE)
        }
        split = mapping.assign_members(names, [(s.node_id, s.device_id) for s in grant.slices], request.count, pinned)
        if split is None:
            self.sb.release_grant(grant.id)
            self._next_attempt(members, attempt)
            for pod in gated:
                self._pending(
                    pod,
                    "GangNotAssignable",
                    f"grant {grant.id} ({', '.join(sorted({s.node_id for s in grant.slices}))}) does not split "
                    f"into {size} members of {request.count} on one node each; released, asking again",
                    warning=True,
                )
            return self.settings.retry_s
        # Pass 1: narrow and annotate every gated member, gates still on.
        for pod in gated:
            name = str(pod["metadata"]["name"])
            mine = [grant.slices[i] for i in split[name]]
            annotations = pod["metadata"].get("annotations") or {}
            if annotations.get(mapping.ANN_GRANT) == grant.id and annotations.get(mapping.ANN_NODE) == mine[0].node_id:
                continue
            self._narrow(pod, grant, mine, lease)
            updated = self.kube.request("PUT", f"/api/v1/namespaces/{ns}/pods/{name}", body=pod)
            pod["metadata"]["resourceVersion"] = updated["metadata"]["resourceVersion"]
        # Pass 2: every member is pinned; release them all to the scheduler.
        for pod in gated:
            spec = pod["spec"]
            spec["schedulingGates"] = mapping.without_gate(spec.get("schedulingGates")) or None
            name = str(pod["metadata"]["name"])
            self.kube.request("PUT", f"/api/v1/namespaces/{ns}/pods/{name}", body=pod)
            self._granted(pod, grant, str(pod["metadata"]["annotations"][mapping.ANN_NODE]))
        return None

    def _next_attempt(self, members: list[JSON], attempt: int) -> None:
        """The gang's grant is over or unusable: its next request needs a fresh idempotency key."""
        body = {"metadata": {"annotations": {ANN_ATTEMPT: str(attempt + 1)}}}
        for pod in members:
            meta = pod["metadata"]
            self.kube.request(
                "PATCH", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}", body=body, content_type=MERGE
            )

    def _grant_pod(self, path: str, pod: JSON) -> float | None:
        meta = pod["metadata"]
        ns = str(meta["namespace"])
        tenant = self._project_of(ns)
        if tenant is None:
            self._pending(pod, "NamespaceNotMapped", self._unmapped_message(ns), warning=True)
            return None  # the namespace watch queues the pod again when the labels appear
        try:
            request = mapping.read_request(pod)
        except mapping.PodRequestError as err:
            self._pending(pod, err.reason, err.message, warning=True)
            return None  # annotations may be fixed; the pod watch brings the change
        lease = request.lease or timedelta(seconds=self.settings.default_lease_s)
        key = pod_key(pod)
        try:
            grant = grants.request_grant(
                self.sb,
                tenant[1],
                request.skus[0],
                request.count,
                lease,
                key,
                request.topology,
                alternatives=request.skus[1:],
                required=request.required,
                shape=request.shape,
                priority=request.priority,
            )
        except SlicebrokerError as err:
            self._pending(
                pod,
                "GrantPending",
                f"waiting for {request.count} x {'/'.join(request.skus)} for project {tenant[1]}: "
                f"{err.reason}: {err.message}",
                warning=err.reason not in ("INSUFFICIENT_CAPACITY",),
            )
            return self.settings.retry_s
        if grant.state in (GrantState.ENDED, GrantState.FAILED):
            # The key's grant is over (a queued request that lapsed): the next attempt needs a new key.
            attempt = int(meta.get("annotations", {}).get(ANN_ATTEMPT, "0")) + 1
            body = {"metadata": {"annotations": {ANN_ATTEMPT: str(attempt)}}}
            self.kube.request("PATCH", path, body=body, content_type=MERGE)
            self._pending(pod, "GrantFailed", _failed_text(grant), warning=True)
            return self.settings.retry_s
        if grant.state is not GrantState.ACTIVE or not grant.slices:
            what = f"{request.count} x {'/'.join(request.skus)}"
            self._pending(pod, "GrantQueued", _queued_text(grant, what), warning=False)
            return self.settings.retry_s
        nodes = sorted({s.node_id for s in grant.slices})
        if len(nodes) != 1:
            self.sb.release_grant(grant.id)
            self._pending(
                pod,
                "GrantSpansNodes",
                f"grant {grant.id} spans nodes {', '.join(nodes)}; a pod runs on one",
                warning=True,
            )
            return self.settings.retry_s
        node = nodes[0]
        # One update: the gate goes, the pod is narrowed to the node, and the grant is recorded.
        # resourceVersion makes it conditional; a 409 re-reads and replays (same key, same grant).
        self._narrow(pod, grant, grant.slices, lease)
        spec = pod["spec"]
        spec["schedulingGates"] = mapping.without_gate(spec.get("schedulingGates")) or None
        self.kube.request("PUT", path, body=pod)
        self._granted(pod, grant, node)
        return None

    def _narrow(self, pod: JSON, grant: Grant, slices: Iterable[Slice], lease: timedelta) -> None:
        """Pins a gated pod (in place) to the node of `slices` and records the grant in annotations."""
        slices = list(slices)
        meta = pod["metadata"]
        node = slices[0].node_id
        mapping.pin_to_node(pod["spec"], node)
        annotations = meta.setdefault("annotations", None) or {}
        meta["annotations"] = annotations
        annotations[mapping.ANN_GRANT] = grant.id
        annotations[mapping.ANN_SLICES] = ",".join(s.device_id for s in slices)
        annotations[mapping.ANN_NODE] = node
        annotations[mapping.ANN_SKU + "-granted"] = grant.sku
        annotations[mapping.ANN_LEASE + "-seconds"] = str(int(lease.total_seconds()))
        if slices[0].kind:
            annotations[mapping.ANN_SLICE_KIND] = slices[0].kind
            annotations[mapping.ANN_SLICE_PROFILE] = ",".join(s.profile for s in slices)

    def _granted(self, pod: JSON, grant: Grant, node: str) -> None:
        """Book-keeping once a pod is ungated on its grant: the renewer, condition and event."""
        meta = pod["metadata"]
        annotations = meta["annotations"]
        with self._lock:
            self.bound += 1
        self._hold(grant.id, ("pod", str(meta["namespace"]), str(meta["name"])), str(meta["uid"]), annotations, grant)
        mine = annotations[mapping.ANN_SLICES]
        self._condition(pod, "True", "Granted", f"grant {grant.id}: {grant.sku} on {node} ({mine})")
        self._event(
            pod,
            "Normal",
            "Granted",
            f"grant {grant.id}: {grant.count} x {grant.sku}"
            + (
                f" ({annotations[mapping.ANN_SLICE_KIND]} {annotations[mapping.ANN_SLICE_PROFILE]})"
                if mapping.ANN_SLICE_KIND in annotations
                else ""
            )
            + f" on node {node} ({mine})",
        )

    def _pending(self, pod: JSON, reason: str, message: str, *, warning: bool) -> None:
        self._event(pod, "Warning" if warning else "Normal", reason, message)
        self._condition(pod, "False", reason, message)

    def _release(self, obj: JSON, grant_id: str, key: str, why: str) -> None:
        """Releases the object's grant: the recorded one, and any grant made with its key that was
        never recorded (the operator stopped between the grant and the pod update)."""
        ids = {grant_id} if grant_id else set()
        if not grant_id:
            ns = str(obj["metadata"].get("namespace", ""))
            tenant = self._project_of(ns)
            if tenant is not None:
                with contextlib.suppress(SlicebrokerError):
                    for grant in self.sb.list_grants(project=tenant[1]):
                        if grant.idempotency_key.startswith(key) and grant.live:
                            ids.add(grant.id)
        for gid in sorted(ids):
            with contextlib.suppress(NotFoundError):
                self.sb.release_grant(gid)
            with self._lock:
                self._held.pop(gid, None)
            self._event(obj, "Normal", "Released", f"grant {gid} released ({why})")

    def _drop_finalizer(self, path: str, meta: JSON) -> None:
        rest = [f for f in meta.get("finalizers") or () if f != mapping.FINALIZER]
        body = {"metadata": {"finalizers": rest or None, "resourceVersion": meta["resourceVersion"]}}
        try:
            self.kube.request("PATCH", path, body=body, content_type=MERGE)
        except KubeError as err:
            if err.status != 404:
                raise

    def _hold(self, grant_id: str, key: Key, uid: str, annotations: dict[str, str], grant: Grant | None = None) -> None:
        with self._lock:
            if grant_id in self._held and grant is None:
                return
        seconds = float(annotations.get(mapping.ANN_LEASE + "-seconds") or self.settings.default_lease_s)
        if grant is None:
            try:
                grant = self.sb.get_grant(grant_id)
            except NotFoundError:
                return
        expires = grant.expires_at.timestamp() if grant.expires_at else time.time()
        with self._lock:
            self._held[grant_id] = Held(key, uid, timedelta(seconds=seconds), expires)
            noticed = grant_id in self._notices
        if noticed and key[0] == "pod":
            self.queue.add(("preempt", key[1], grant_id))

    def held(self) -> dict[str, Key]:
        with self._lock:
            return {gid: h.key for gid, h in self._held.items()}

    # -- renewals ------------------------------------------------------------------------------

    def _renewer(self) -> None:
        while not self._stop.wait(self.settings.renew_check_s):
            self.renew_due()

    def renew_due(self, now: float | None = None) -> int:
        """Renews every held lease past its renewal point; returns how many were renewed."""
        now = time.time() if now is None else now
        with self._lock:
            due = [
                (gid, h)
                for gid, h in self._held.items()
                if h.expires - now < h.lease.total_seconds() * (1 - self.settings.renew_fraction)
            ]
        renewed = 0
        for gid, held in due:
            try:
                grant = self.sb.renew_grant(gid, held.lease)
            except (NotFoundError, FailedPreconditionError) as err:
                self._lost(gid, held, f"{err.reason}: {err.message}")
                continue
            except SlicebrokerError as err:
                log.warning("renewing %s: %s", gid, err)
                continue
            with self._lock:
                if gid in self._held and grant.expires_at:
                    self._held[gid].expires = grant.expires_at.timestamp()
            renewed += 1
        return renewed

    def _lost(self, gid: str, held: Held, why: str) -> None:
        """The broker ended a grant we hold (reclaimed, expired): the pod must go, the claim says so."""
        with self._lock:
            self._held.pop(gid, None)
        kind, ns, name = held.key
        if kind == "pod":
            for pod in self._pods_of_grant(ns, gid):
                self._event(pod, "Warning", "GrantLost", f"grant {gid} ended ({why}); evicting the pod")
                self._evict(pod)
        elif kind == "claim":
            path = f"{CLAIMS}/namespaces/{ns}/sliceclaims/{name}"
            with contextlib.suppress(KubeError):
                self.kube.request(
                    "PATCH", path + "/status", body={"status": {"state": "Ended", "message": why}}, content_type=MERGE
                )

    # -- preemption --------------------------------------------------------------------------

    def _watch_grants(self) -> None:
        """Follows the broker's WatchGrants stream (it resumes by itself after a broker restart):
        a preemption notice on a grant bound to pods becomes events now and evictions at its deadline."""
        while not self._stop.is_set():
            try:
                for change in self.sb.watch():
                    if self._stop.is_set():
                        return
                    self.on_grant_change(change)
            except SlicebrokerError as err:
                if self._stop.is_set():
                    return
                log.warning("watching grants: %s: %s; watching again", err.reason, err.message)
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("watching grants failed; watching again")
            self._stop.wait(self.settings.retry_s)

    def on_grant_change(self, change: GrantChange) -> None:
        grant = change.grant
        if grant is None:
            return
        kind = change.type
        if grant.preemption_deadline is not None and kind in (
            GrantChangeType.PREEMPTION_NOTICE,
            GrantChangeType.SNAPSHOT,
            GrantChangeType.RENEWED,
        ):
            notice = (grant.preemption_deadline.timestamp(), grant.preemption_reason)
        elif kind is GrantChangeType.PREEMPTED:
            # Taken back (a notice this operator missed, or the deadline passed first): evict now.
            notice = (time.time(), grant.preemption_reason or grant.end_reason or "preempted")
        elif kind in (GrantChangeType.RELEASED, GrantChangeType.EXPIRED, GrantChangeType.FAILED):
            with self._lock:
                self._notices.pop(grant.id, None)
            return
        else:
            return
        with self._lock:
            self._notices[grant.id] = notice
            held = self._held.get(grant.id)
        if held is not None and held.key[0] == "pod":
            self.queue.add(("preempt", held.key[1], grant.id))
        # Not held (yet): `_hold` queues it when the pod's grant is picked up.

    def reconcile_preemption(self, ns: str, gid: str) -> float | None:
        """Warns a preempted grant's pods (the deadline and the reason), and at the deadline evicts
        them (policy/v1 Eviction, so PodDisruptionBudgets are honoured and the pod terminates
        gracefully); the release finalizer then releases the grant as for any ended pod."""
        with self._lock:
            notice = self._notices.get(gid)
        if notice is None:
            return None
        deadline, reason = notice
        pods = self._pods_of_grant(ns, gid)
        if not pods:
            with self._lock:
                self._notices.pop(gid, None)
            return None
        at = datetime.fromtimestamp(deadline, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        left = deadline - time.time()
        for pod in pods:
            self._event(
                pod,
                "Warning",
                "PreemptionNotice",
                f"grant {gid} is preempted at {at}: {reason or 'preempted by the broker'}; "
                "the pod will be evicted then",
            )
        if left > 0:
            return left
        for pod in pods:
            self._event(pod, "Warning", "Preempted", f"grant {gid} preempted at {at}: evicting the pod")
            self._evict(pod)
        with self._lock:
            self._notices.pop(gid, None)
        return None

    def _pods_of_grant(self, ns: str, gid: str) -> list[JSON]:
        """The live pods bound to a grant: one pod, or every member of a gang."""
        pods, _ = self.kube.list_all(f"/api/v1/namespaces/{ns}/pods")
        return [
            p for p in pods if (p["metadata"].get("annotations") or {}).get(mapping.ANN_GRANT) == gid and not _ending(p)
        ]

    def _evict(self, pod: JSON) -> None:
        meta = pod["metadata"]
        ns, name = str(meta["namespace"]), str(meta["name"])
        eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": ns}}
        try:
            self.kube.request("POST", f"/api/v1/namespaces/{ns}/pods/{name}/eviction", body=eviction)
        except KubeError as err:
            log.warning("evicting %s/%s: %s", ns, name, err)

    # -- events and conditions -----------------------------------------------------------------

    def _event(self, obj: JSON, type_: str, reason: str, message: str) -> None:
        meta = obj["metadata"]
        uid = str(meta.get("uid", ""))
        with self._lock:
            if self._last_event.get(uid) == (reason, message):
                return
            self._last_event[uid] = (reason, message)
        ns = str(meta.get("namespace", "default"))
        now = _now()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": ns},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion", "v1"),
                "kind": obj.get("kind", "Pod"),
                "name": meta["name"],
                "namespace": ns,
                "uid": uid,
            },
            "reason": reason,
            "message": message[:1024],
            "type": type_,
            "source": {"component": COMPONENT},
            "reportingComponent": f"{GROUP}/operator",
            "reportingInstance": self._identity,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self.kube.request("POST", f"/api/v1/namespaces/{ns}/events", body=body)
        except KubeError as err:
            log.warning("event %s on %s/%s: %s", reason, ns, meta["name"], err)

    def _condition(self, pod: JSON, status: str, reason: str, message: str) -> None:
        meta = pod["metadata"]
        for cond in (pod.get("status") or {}).get("conditions") or ():
            if cond.get("type") == mapping.CONDITION and (
                cond.get("status"),
                cond.get("reason"),
                cond.get("message"),
            ) == (status, reason, message):
                return
        condition = {
            "type": mapping.CONDITION,
            "status": status,
            "reason": reason,
            "message": message[:1024],
            "lastTransitionTime": _now(),
        }
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status"
        try:
            self.kube.request("PATCH", path, body={"status": {"conditions": [condition]}}, content_type=STRATEGIC)
        except KubeError as err:
            if err.status != 404:
                log.warning("condition on %s/%s: %s", meta["namespace"], meta["name"], err)

    # -- SliceClaims ---------------------------------------------------------------------------

    def reconcile_claim(self, ns: str, name: str) -> float | None:
        path = f"{CLAIMS}/namespaces/{ns}/sliceclaims/{name}"
        claim = self.kube.get(path)
        if claim is None:
            return None
        meta, spec = claim["metadata"], claim.get("spec") or {}
        status = claim.get("status") or {}
        uid = str(meta["uid"])
        grant_id = str(status.get("grantId", ""))
        if meta.get("deletionTimestamp"):
            self._release(claim, grant_id, f"k8s-claim-{uid}", "claim deleted")
            if mapping.FINALIZER in (meta.get("finalizers") or ()):
                self._drop_finalizer(path, meta)
            return None
        if mapping.FINALIZER not in (meta.get("finalizers") or ()):
            add: JSON = {
                "metadata": {
                    "finalizers": [*(meta.get("finalizers") or ()), mapping.FINALIZER],
                    "resourceVersion": meta["resourceVersion"],
                }
            }
            self.kube.request("PATCH", path, body=add, content_type=MERGE)
            return 0.0
        if grant_id:
            if spec.get("renew", True) and status.get("state") == "Granted":
                seconds = mapping.parse_lease(str(spec.get("lease", "1h"))).total_seconds()
                self._hold(grant_id, ("claim", ns, name), uid, {mapping.ANN_LEASE + "-seconds": str(int(seconds))})
            return None
        tenant = self._project_of(ns)
        if tenant is None:
            return self._claim_status(
                claim, path, {"state": "Pending", "message": self._unmapped_message(ns)}, "NamespaceNotMapped"
            )
        try:
            lease = mapping.parse_lease(str(spec.get("lease", "1h")))
            topology = str(spec.get("topology", "same-node"))
            if topology not in grants.TOPOLOGIES:
                raise mapping.PodRequestError(
                    "InvalidTopology", f"topology must be one of {', '.join(grants.TOPOLOGIES)}"
                )
            grant = grants.request_grant(
                self.sb, tenant[1], str(spec["sku"]), int(spec.get("count", 1)), lease, f"k8s-claim-{uid}", topology
            )
        except mapping.PodRequestError as err:
            self._claim_status(claim, path, {"state": "Refused", "message": err.message}, err.reason)
            return None
        except SlicebrokerError as err:
            self._claim_status(
                claim, path, {"state": "Pending", "message": f"{err.reason}: {err.message}"}, "GrantPending"
            )
            return self.settings.retry_s
        nodes = sorted({s.node_id for s in grant.slices})
        body: JSON = {
            "state": "Granted",
            "grantId": grant.id,
            "sku": grant.sku,
            "node": ",".join(nodes),
            "slices": [s.device_id for s in grant.slices],
            "expiresAt": grant.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ") if grant.expires_at else None,
            "message": "",
        }
        self._claim_status(claim, path, body, "Granted", warning=False)
        if spec.get("renew", True):
            self._hold(
                grant.id,
                ("claim", ns, name),
                uid,
                {mapping.ANN_LEASE + "-seconds": str(int(lease.total_seconds()))},
                grant,
            )
        return None

    def _claim_status(self, claim: JSON, path: str, status: JSON, reason: str, *, warning: bool = True) -> float | None:
        self.kube.request("PATCH", path + "/status", body={"status": status}, content_type=MERGE)
        self._event(claim, "Warning" if warning else "Normal", reason, str(status.get("message") or reason))
        return None

    # -- nodes ---------------------------------------------------------------------------------

    def reconcile_node(self, _ns: str, name: str) -> float | None:
        node = self.kube.get(f"/api/v1/nodes/{name}")
        with self._lock:
            known = self._nodes.get(name)
        shape = node_shape(node, self.settings) if node else None
        if shape is None:
            if known is not None and known.state != "draining":
                self._set_node_state(name, "draining")
                with self._lock:
                    self._nodes[name] = known._replace(state="draining")
            return None
        state = "cordoned" if (node or {}).get("spec", {}).get("unschedulable") else "active"
        registered = (shape.sku, shape.devices, shape.mig_layout)
        if known is None or (known.sku, known.devices, known.mig_layout) != registered:
            topology = NodeTopology(**shape.topology)
            self.sb.register_node(name, shape.sku, shape.devices, topology, mig_layout=shape.mig_layout)
            known = SyncedNode(shape.sku, shape.devices, "active", shape.mig_layout)
        if known.state != state:
            self._set_node_state(name, state)
        with self._lock:
            self._nodes[name] = known._replace(state=state)
        return None

    def _set_node_state(self, name: str, state: str) -> None:
        """Conditional on the generation just read: a concurrent change makes it fail with ABORTED
        and the caller's retry reads again. A node inventory does not know is left alone."""
        try:
            node = self.sb.get_node(name)
            self.sb.set_node_state(name, state, expected_generation=node.generation)
        except NotFoundError:
            return

    def synced_nodes(self) -> dict[str, SyncedNode]:
        with self._lock:
            return dict(self._nodes)


TOPOLOGY_LABELS = {
    "site": "slicebroker.io/site",
    "hall": "slicebroker.io/hall",
    "pod": "slicebroker.io/pod",
    "rack": "slicebroker.io/rack",
    "leaf": "slicebroker.io/leaf",
    "spine": "slicebroker.io/spine",
    "nvlink_domain": "slicebroker.io/nvlink-domain",
}


LABEL_SKU = "slicebroker.io/sku"
# What NVIDIA's GPU feature discovery labels a node with: the physical GPUs (MIG or not) and their model.
LABEL_GPU_COUNT = "nvidia.com/gpu.count"
LABEL_GPU_PRODUCT = "nvidia.com/gpu.product"


class NodeShape(NamedTuple):
    """What node sync registers for a Kubernetes Node."""

    sku: str
    devices: int
    topology: dict[str, str]
    """NodeTopology fields from the node's labels and the operator's defaults."""
    mig_layout: dict[str, int]
    """Profile → instances across the node, for a node that advertises only MIG instances; {} else."""


class SyncedNode(NamedTuple):
    """What node sync last sent to inventory for a node."""

    sku: str
    devices: int
    state: str
    mig_layout: dict[str, int]


def node_shape(node: JSON, settings: OperatorSettings) -> NodeShape | None:
    """What to register for a Node with accelerator capacity, or None if it has none.

    Whole devices (e.g. nvidia.com/gpu) are counted as the node advertises them, with no MIG
    layout (inventory cuts them as requests come). A node that advertises only MIG instances
    (nvidia.com/mig-1g.10gb: 7, no nvidia.com/gpu; the NVIDIA device plugin's mixed strategy over
    a MIG manager's fixed layout) is registered with its physical GPUs (the nvidia.com/gpu.count
    label, else the fewest devices the instances fit on by the catalogue's partition geometry) and
    with the instances it advertises as its MIG layout ({"1g.10gb": 7}): the broker then places
    there only MIG slices of those profiles, up to those counts, never whole GPUs or shares, so
    what it grants is what the kubelet can hand out. A MIG manager that re-cuts the node changes
    its capacity, and the next sync registers the new layout. The SKU is the node's
    slicebroker.io/sku label, else the one SKU its resource names stand for, else the one of those
    that the nvidia.com/gpu.product label names (e.g. NVIDIA-A100-SXM4-80GB)."""
    name = str(node["metadata"]["name"])
    labels = (node.get("metadata") or {}).get("labels") or {}
    capacity = (node.get("status") or {}).get("capacity") or {}
    names = mapping.resource_names()
    amounts = {r: n for r, n in ((r, _amount(a)) for r, a in sorted(capacity.items())) if n > 0 and r in names}
    for resource, count in amounts.items():
        entry = names[resource]
        if entry.slice != "whole":
            continue
        sku = _node_sku(name, labels, entry.skus, resource)
        return None if sku is None else NodeShape(sku, count, _node_topology(labels, settings), {})
    mig = {r: n for r, n in amounts.items() if names[r].slice == "mig" and names[r].profile}
    if not mig:
        return None
    skus = [s for s in names[next(iter(mig))].skus if all(s in names[r].skus for r in mig)]
    sku = _node_sku(name, labels, tuple(skus), ", ".join(mig))
    if sku is None or not partition_sizes().get(sku):
        return None
    profiles = {names[r].profile: n for r, n in mig.items()}
    fewest = mapping.devices_for(sku, profiles)
    count = _amount(labels.get(LABEL_GPU_COUNT, "")) or fewest
    if count < fewest:
        # Inventory refuses a layout that does not fit its devices; the instances are what is real.
        log.warning("node %s: %s says %d GPUs, too few for its MIG instances; %d", name, LABEL_GPU_COUNT, count, fewest)
        count = fewest
    return NodeShape(sku, count, _node_topology(labels, settings), profiles)


def _failed_text(grant: Grant) -> str:
    """What the pods of a grant that ended before they ran are told."""
    return f"grant {grant.id} {grant.state.value}: {grant.end_reason}; asking again"


def _queued_text(grant: Grant, what: str) -> str:
    """What the pods of a queued grant are told: its place in the queue and why it waits."""
    position = f" at position {grant.queue_position}" if grant.queue_position else ""
    return f"grant {grant.id} for {what} is queued{position}: {grant.waiting_reason or 'waiting for capacity'}"


def _amount(value: Any) -> int:
    text = str(value).strip()
    return int(text) if text.isdigit() else 0


def _node_sku(node: str, labels: dict[str, str], skus: tuple[str, ...], resource: str) -> str | None:
    """The node's SKU among `skus` (those its resource names stand for), or None with a warning."""
    sku = labels.get(LABEL_SKU, "")
    if not sku and len(skus) == 1:
        sku = skus[0]
    if not sku:
        # GPU feature discovery's product, e.g. NVIDIA-H100-80GB-HBM3: the SKU whose model (the
        # first part of its name, H100) is one of the product's words.
        words = set(labels.get(LABEL_GPU_PRODUCT, "").upper().replace("_", "-").split("-"))
        named = [s for s in skus if s.split("-")[0].upper() in words]
        sku = named[0] if len(named) == 1 else ""
    if sku not in skus:
        log.warning("node %s: %s needs a %s label (one of %s)", node, resource, LABEL_SKU, skus)
        return None
    return sku


def _node_topology(labels: dict[str, str], settings: OperatorSettings) -> dict[str, str]:
    topo = {field: labels.get(label, "") for field, label in TOPOLOGY_LABELS.items()}
    topo["site"] = topo["site"] or settings.default_site
    topo["rack"] = topo["rack"] or settings.default_rack
    return {k: v for k, v in topo.items() if v}


def dumps(obj: Iterable[Any]) -> str:
    return json.dumps(list(obj))
