"""Device-second arithmetic, in exact integer milliseconds until the very last division.

Totals are kept as integer device-milliseconds so that summing many grants never accumulates
floating-point error; seconds (float) appear only in what is reported. A slice counts its share
of the device (`slices.slice_size`): eight 1g.10gb MIG slices for an hour are 8/7 device-hours.
Sizes travel as integers in `SIZE_DEN`ths of a device.
"""

from __future__ import annotations

from slicebroker.accounting.domain.model import RowTotals, UsageRow
from slicebroker.accounting.domain.slices import SIZE_DEN, size_units


def grant_size(sku: str, slice_kind: str, count: int) -> int:
    """What `count` slices of a kind hold, in `SIZE_DEN`ths of a device."""
    return count * size_units(sku, slice_kind)


def sized_ms(size: int, ms: int) -> int:
    """Device-ms of `size` (`SIZE_DEN`ths) held for `ms`, rounded half up; exact for whole devices.
    storage/lua/ingest.lua computes the same for closed grants."""
    return (size * ms + SIZE_DEN // 2) // SIZE_DEN


def device_ms(count: int, start_ms: int, end_ms: int, size: int | None = None) -> int:
    """Device-ms of one grant of `count` whole devices, or of `size` (`SIZE_DEN`ths) when given.
    A grant whose end precedes its start (clocks of two broker replicas disagreeing) counts as
    zero rather than negative: usage never goes down."""
    span = max(0, end_ms - start_ms)
    return count * span if size is None else sized_ms(size, span)


def running_device_ms(running_size: int, running_start_sum: int, now_ms: int) -> int:
    """Device-ms used so far by open grants: sum of size * (now - start) = now * sum(size) -
    sum(size * start), sizes in `SIZE_DEN`ths. Clamped at zero for starts stamped after `now` by a
    clock ahead of ours."""
    return max(0, sized_ms(running_size, now_ms) - running_start_sum)


def usage_row(totals: RowTotals, now_ms: int) -> UsageRow:
    running = running_device_ms(totals.running_devices, totals.running_start_sum, now_ms)
    return UsageRow(
        institution=totals.institution,
        project=totals.project,
        sku=totals.sku,
        device_seconds=totals.device_ms / 1000,
        running_device_seconds=running / 1000,
        grants=totals.grants,
        running_grants=totals.running_grants,
    )
