"""Device-second arithmetic, in exact integer milliseconds until the very last division.

Totals are kept as integer device-milliseconds so that summing many grants never accumulates
floating-point error; seconds (float) appear only in what is reported.
"""

from __future__ import annotations

from slicebroker.accounting.domain.model import RowTotals, UsageRow


def device_ms(count: int, start_ms: int, end_ms: int) -> int:
    """Device-ms of one grant. A grant whose end precedes its start (clocks of two broker replicas
    disagreeing) counts as zero rather than negative: usage never goes down."""
    return count * max(0, end_ms - start_ms)


def running_device_ms(running_devices: int, running_start_sum: int, now_ms: int) -> int:
    """Device-ms used so far by open grants: sum of count * (now - start) = now * sum(count) -
    sum(count * start). Clamped at zero for starts stamped after `now` by a clock ahead of ours."""
    return max(0, now_ms * running_devices - running_start_sum)


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
