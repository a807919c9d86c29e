"""The reservation record, as tree.lua writes it into the reservations hash:

    "<phase>|<created ms>|<expires ms>|<P or N>|<project>|<sku>|<count>|<shape>|<res>=<units>;…|<user>|<node>"

phase R (reserved) or C (committed); P marks a preemptible grant. The record keeps the units it
charged and the node it charged them to (the project, or the user's tenant "<project>/<user>"
when it existed; "" = the project), so releasing it returns exactly those to exactly that node
whatever changed since (weights, quota entries, users added). Records written before users existed
end after the charges.
"""

from __future__ import annotations

from slicebroker.quota.domain.model import HeldReservation, Phase

_PHASES = {"R": Phase.RESERVED, "C": Phase.COMMITTED}


def decode_reservation(grant_id: str, record: str) -> HeldReservation:
    phase, created, expires, preemptible, project, sku, count, shape, charges, *rest = record.split("|")
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
        user=rest[0] if rest else "",
    )
