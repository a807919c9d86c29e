"""The reservation record, as tree.lua writes it into the reservations hash:

    "<phase>|<created ms>|<expires ms>|<P or N>|<project>|<sku>|<count>|<shape>|<res>=<units>;…"

phase R (reserved) or C (committed); P marks a preemptible grant. The record keeps the units it
charged, so releasing it returns exactly those whatever changed since (weights, quota entries).
"""

from __future__ import annotations

from slicebroker.quota.domain.model import HeldReservation, Phase

_PHASES = {"R": Phase.RESERVED, "C": Phase.COMMITTED}


def decode_reservation(grant_id: str, record: str) -> HeldReservation:
    phase, created, expires, preemptible, project, sku, count, shape, charges = record.split("|", 8)
    return HeldReservation(
        grant_id=grant_id,
        project=project,
        sku=sku,
        count=int(count),
        phase=_PHASES[phase],
        created_ms=int(created),
        expires_ms=int(expires) if phase == "R" else 0,
        shape=shape,
        preemptible=preemptible == "P",
        charges={r: int(u) for r, _, u in (pair.partition("=") for pair in charges.split(";") if pair)},
    )
