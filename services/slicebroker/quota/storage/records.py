"""The reservation record, as the Lua scripts write it into the reservations hash:

    "<phase>|<count>|<created ms>|<expires ms>|<in-use field>"

phase R (reserved) or C (committed); expires is 0 once committed. Packing a reservation into one
hash field keeps a Reserve to one HSET and lets ListReservations read everything with one HGETALL.
The scripts build and parse this format themselves; this module is the Python side of it.
"""

from __future__ import annotations

from slicebroker.quota.domain.model import HeldReservation, Phase
from slicebroker.quota.storage.keys import split_in_use_field

_PHASES = {"R": Phase.RESERVED, "C": Phase.COMMITTED}


def decode_reservation(grant_id: str, record: str) -> HeldReservation:
    phase, count, created, expires, field = record.split("|", 4)
    project, sku = split_in_use_field(field)
    return HeldReservation(
        grant_id=grant_id,
        project=project,
        sku=sku,
        count=int(count),
        phase=_PHASES[phase],
        created_ms=int(created),
        expires_ms=int(expires),
    )
