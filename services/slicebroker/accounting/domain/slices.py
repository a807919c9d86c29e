"""How much of a device a slice is, by the name accounting keeps its kind under.

Usage, budgets and the normalised accelerator-hours of a slice count its share of the device's
compute, never the slice as a whole device: a MIG 1g.10gb slice of an H100 is 1/7, a 0.25 share is
0.25, an RNGD 2core.12gb partition is 2/8. Kinds are named as in the price book and the ledger:

    whole                      the device
    mig-<c>g.<m>gb             a MIG instance: c of the SKU's compute slices (7 where the catalogue
                               does not list the SKU)
    npu-<profile>              an NPU partition: its compute counters of the SKU's geometry
    fraction-<x>, share-<x>    a share x in (0, 1]

The broker names a grant's kind generically ("mig", "share", "npu_partition") and puts the
profile on each slice; `core.catalogue.canonical_kind` joins the two into the name above.

Sizes are exact fractions; the ledger keeps them in `SIZE_DEN`ths of a device, which holds
sevenths, eighths, thousandths of a share and their combinations exactly.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import cache

from slicebroker.core.catalogue import WHOLE_KIND, partition_sizes

SIZE_DEN = 2**3 * 3**2 * 5**3 * 7  # 63,000: lcm(1..10) x 25
_MIG = re.compile(r"^mig-(\d+)g\.\d+gb$")
_SHARE = re.compile(r"^(?:fraction|share)-(\d*\.?\d+)$")


@cache
def slice_size(sku: str, kind: str) -> Fraction:
    """The slice's share of its device's compute. A kind this cannot size (a name the catalogue
    does not know) counts as a whole device: an overcount that shows, rather than a silent zero."""
    if kind == WHOLE_KIND:
        return Fraction(1)
    partitions = partition_sizes().get(sku, {})
    if m := _MIG.match(kind):
        known = partitions.get(kind.removeprefix("mig-"))
        return _clamp(known.compute if known is not None else Fraction(int(m[1]), 7))
    if m := _SHARE.match(kind):
        return _clamp(Fraction(m[1]))
    if kind.startswith("npu-"):
        npu = partitions.get(kind.removeprefix("npu-"))
        if npu is not None:
            return _clamp(npu.compute)
    return Fraction(1)


def size_units(sku: str, kind: str) -> int:
    """The slice's size in `SIZE_DEN`ths of a device, rounded to the nearest (exact for every
    size the catalogue and milli-shares produce)."""
    size = slice_size(sku, kind) * SIZE_DEN
    return max(1, int(size + Fraction(1, 2)))


def _clamp(size: Fraction) -> Fraction:
    return size if 0 < size <= 1 else Fraction(1)
