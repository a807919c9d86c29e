"""Every Redis key the broker writes. The prefix sits in a hash tag so all broker keys share one
cluster slot: the grant scripts touch several of them atomically."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BrokerKeys:
    prefix: str

    @property
    def _p(self) -> str:
        return "{" + self.prefix + "}"

    def grant(self, grant_id: str) -> str:
        return f"{self._p}:grant:{grant_id}"

    def idempotency(self, project: str, key: str) -> str:
        return f"{self._p}:idem:{project}:{key}"

    @property
    def grants(self) -> str:
        """All grant ids, lexicographic (ids sort by creation time)."""
        return f"{self._p}:grants"

    def project_grants(self, project: str) -> str:
        return f"{self._p}:grants:project:{project}"

    @property
    def pending(self) -> str:
        """Pending grant ids scored by creation ms."""
        return f"{self._p}:pending"

    @property
    def expiry(self) -> str:
        """Active grant ids scored by lease end ms."""
        return f"{self._p}:expiry"

    @property
    def ending(self) -> str:
        """Ended grant ids whose devices and quota are still being returned, scored by end ms."""
        return f"{self._p}:ending"

    @property
    def queue(self) -> str:
        """Queued grant ids scored by Grant.queue_score."""
        return f"{self._p}:queue"

    @property
    def scheduled(self) -> str:
        """Queued grant ids that asked to start later, scored by start_after ms; they join the
        queue when due."""
        return f"{self._p}:scheduled"

    @property
    def preempting(self) -> str:
        """Active grant ids under a preemption notice, scored by the notice's deadline ms."""
        return f"{self._p}:preempting"

    @property
    def changes(self) -> str:
        """The capped stream of grant changes that WatchGrants reads (one entry per change)."""
        return f"{self._p}:changes"

    @property
    def outbox(self) -> str:
        return f"{self._p}:outbox"

    @property
    def leader(self) -> str:
        return f"{self._p}:leader"
