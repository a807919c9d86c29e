"""Leader election on a coordination.k8s.io/v1 Lease, the way client-go's leaderelection does it.

Every operator replica runs an elector; the one that holds the Lease runs the controllers (pods,
claims, node sync, certificate renewal), the others stand by and serve only the admission
webhook. The holder renews the Lease every `retry_s`; a candidate takes it over once the holder
has not renewed it for `lease_s`, judged by the candidate's own clock from when it last saw the
record change (so clock skew between nodes does not matter). A holder that cannot renew within
`renew_deadline_s` stops leading. A replica that stops cleanly gives the Lease up at once.

Writes are conditional on the Lease's resourceVersion: of two candidates racing for an expired
Lease, one update wins and the other gets 409 and stays a candidate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from slicebroker.operator.kube import JSON, Kube, KubeError

log = logging.getLogger("slicebroker.operator.leader")


def _micro_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_s: float = 15.0,
        renew_deadline_s: float = 10.0,
        retry_s: float = 2.0,
        on_started_leading: Callable[[], None] = lambda: None,
        on_stopped_leading: Callable[[], None] = lambda: None,
    ) -> None:
        if not retry_s < renew_deadline_s < lease_s:
            raise ValueError("leader election needs retry_s < renew_deadline_s < lease_s")
        self.kube = kube
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
        self.collection = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_s = lease_s
        self.renew_deadline_s = renew_deadline_s
        self.retry_s = retry_s
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._leading = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observed: tuple[str, str] | None = None
        """(holder, renewTime) last seen, and when it was seen (monotonic)."""
        self._observed_at = 0.0

    @property
    def is_leader(self) -> bool:
        return self._leading.is_set()

    def start(self) -> LeaderElector:
        self._thread = threading.Thread(target=self.run, name=f"slicebroker-leader-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, release: bool = True) -> None:
        """Stops electing; with `release`, a leader gives the Lease up so a standby takes over now
        (without it, as after a crash, the standby waits for the Lease to expire)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.retry_s + 10)
        if self._leading.is_set():
            self._leading.clear()
            if release:
                self._release()
            self._on_stopped()

    def wait_for_leadership(self, timeout: float | None = None) -> bool:
        return self._leading.wait(timeout)

    # -- the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        while not self._stop.is_set():
            if self._try_acquire_or_renew():
                break
            self._stop.wait(self.retry_s)
        if self._stop.is_set():
            return
        log.info("%s leads %s/%s", self.identity, self.namespace, self.name)
        self._leading.set()
        try:
            self._on_started()
        except Exception:
            log.exception("starting the leader's work failed; giving up the lease")
            self._leading.clear()
            self._release()
            self._on_stopped()
            return
        last_renewal = time.monotonic()
        while not self._stop.wait(self.retry_s):
            if self._try_acquire_or_renew():
                last_renewal = time.monotonic()
            elif time.monotonic() - last_renewal > self.renew_deadline_s:
                log.error(
                    "%s could not renew %s/%s in %.0fs: stops leading",
                    self.identity,
                    self.namespace,
                    self.name,
                    self.renew_deadline_s,
                )
                self._leading.clear()
                self._on_stopped()
                return

    def _try_acquire_or_renew(self) -> bool:
        now = time.time()
        try:
            lease = self.kube.get(self.path)
            if lease is None:
                self.kube.request("POST", self.collection, body=self._lease_body(None, now))
                return True
            spec: dict[str, Any] = lease.get("spec") or {}
            holder = str(spec.get("holderIdentity") or "")
            record = (holder, str(spec.get("renewTime") or ""))
            if record != self._observed:
                self._observed, self._observed_at = record, time.monotonic()
            duration = float(spec.get("leaseDurationSeconds") or self.lease_s)
            if holder and holder != self.identity and time.monotonic() - self._observed_at < duration:
                return False  # held by another, and renewed within its duration as we saw it
            self.kube.request("PUT", self.path, body=self._lease_body(lease, now))
            return True
        except KubeError as err:
            if err.status != 409:
                log.warning("lease %s/%s: %s", self.namespace, self.name, err)
            return False
        except Exception as err:  # the API server unreachable: same as a failed renewal
            log.warning("lease %s/%s: %s", self.namespace, self.name, err)
            return False

    def _lease_body(self, current: JSON | None, now: float) -> JSON:
        spec: dict[str, Any] = dict((current or {}).get("spec") or {})
        if spec.get("holderIdentity") != self.identity:
            spec["acquireTime"] = _micro_time(now)
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if current else 0)
        spec["holderIdentity"] = self.identity
        spec["leaseDurationSeconds"] = max(1, round(self.lease_s))
        spec["renewTime"] = _micro_time(now)
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if current is not None:
            metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}

    def _release(self) -> None:
        try:
            lease = self.kube.get(self.path)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            body = self._lease_body(lease, time.time())
            body["spec"]["holderIdentity"] = None
            body["spec"]["leaseDurationSeconds"] = 1
            self.kube.request("PUT", self.path, body=body)
        except Exception as err:
            log.warning("releasing lease %s/%s: %s", self.namespace, self.name, err)
