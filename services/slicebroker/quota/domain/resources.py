"""Resource classes and what one reservation charges against them.

A quota entry names a resource class: a SKU ("H100-SXM-80GB"), a family (the catalogue kind,
"gpu" or "npu") or the normalised accelerator unit "accel". A reservation of `count` slices of
one shape of one SKU charges, in `Amount` units:

    <SKU>        compute: device-equivalents (a 1g.10gb MIG slice is 1/7, a 0.25 share is 0.25)
    <SKU>#mem    memory: device-equivalents (a 1g.10gb slice of an H100 holds 1 of its 8 memory slices)
    <family>     compute device-equivalents of any SKU of the family
    accel        compute × the SKU's normalisation weight (H100 = 1)

Compute and memory are two resources of one class, so the SKU's quota bounds both: seven 1g.10gb
slices fill one device of compute, and a 4g.40gb + 3g.40gb pair fills exactly one device of each,
as they do on the card. Partitions (MIG and NPU) are sized by the catalogue's partition counters
(`core.catalogue.partition_sizes`), the same table inventory cuts devices by. Every check (caps,
borrowing, fair share) reads these same charges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import cache, lru_cache
from types import MappingProxyType

import yaml

from slicebroker.core.catalogue import catalogue_text, partition_sizes
from slicebroker.core.errors import InvalidArgument
from slicebroker.quota.domain.amount import Amount

ACCEL = "accel"
MEMORY_SUFFIX = "#mem"

# Dense BF16 TFLOPS relative to an H100 SXM (vendor data sheets), the default exchange rate of the
# normalised unit. Operators override it in settings; it is versioned by the charges a reservation
# stores, so changing it never alters what an existing reservation returns on release.
DEFAULT_WEIGHTS: Mapping[str, Fraction] = {
    "H100-SXM-80GB": Fraction(1),
    "H200-SXM-141GB": Fraction(1),
    "A100-SXM-80GB": Fraction(312, 989),
    "B200-SXM-180GB": Fraction(2250, 989),
    "RNGD": Fraction(256, 989),
    "ATOM": Fraction(32, 989),
    "REBEL": Fraction(512, 989),
}


@dataclass(frozen=True, slots=True)
class SkuInfo:
    name: str
    family: str
    memory_gib: int
    vendor: str


@cache
def skus() -> Mapping[str, SkuInfo]:
    doc = yaml.safe_load(catalogue_text())
    return {
        str(s["name"]): SkuInfo(str(s["name"]), str(s["kind"]), int(s["memory_gib"]), str(s["vendor"]))
        for s in doc["skus"]
    }


@cache
def resource_classes() -> tuple[str, ...]:
    """Every class a quota entry may name: the SKUs, the families, then "accel"."""
    families = sorted({s.family for s in skus().values()})
    return (*skus(), *families, ACCEL)


def class_of(resource: str) -> str:
    """The class whose quota bounds `resource` ("H100-SXM-80GB#mem" → "H100-SXM-80GB")."""
    return resource.removesuffix(MEMORY_SUFFIX)


def resources_of(cls: str) -> tuple[str, ...]:
    """The resources a class bounds."""
    return (cls, cls + MEMORY_SUFFIX) if cls in skus() else (cls,)


@dataclass(frozen=True, slots=True)
class SliceSize:
    """One slice as fractions of its device."""

    compute: Fraction
    memory: Fraction


WHOLE = SliceSize(Fraction(1), Fraction(1))


def slice_size(sku: str, shape: str, field: str = "shape") -> SliceSize:
    """`shape` "" is a whole device; a partition profile of the SKU ("1g.10gb", "2core.12gb"); or a
    share ("0.25")."""
    if not shape:
        return WHOLE
    partition = partition_sizes().get(sku, {}).get(shape)
    if partition is not None:
        return SliceSize(partition.compute, partition.memory)
    try:
        share = Fraction(shape)
    except (ValueError, ZeroDivisionError):
        profiles = ", ".join(partition_sizes().get(sku, {}))
        raise InvalidArgument(
            field,
            f"{shape!r} is not a partition profile of {sku} ({'it has ' + profiles if profiles else 'it has none'})"
            " nor a share such as 0.25",
        ) from None
    if not 0 < share <= 1:
        raise InvalidArgument(field, f"a share must be in (0, 1], not {shape}")
    return SliceSize(share, share)


def charges(
    sku: str, shape: str, count: int, weights: Mapping[str, Fraction] = DEFAULT_WEIGHTS, field: str = "shape"
) -> dict[str, int]:
    """Units charged per resource by `count` slices of `shape` of `sku` (sizes rounded up per slice
    and multiplied, so n slices always charge n times one slice)."""
    size = slice_size(sku, shape, field)
    compute = Amount.of(size.compute).finite() * count
    return {
        sku: compute,
        sku + MEMORY_SUFFIX: Amount.of(size.memory).finite() * count,
        skus()[sku].family: compute,
        ACCEL: Amount.of(size.compute * weights.get(sku, Fraction(1))).finite() * count,
    }


@lru_cache(maxsize=4096)
def _shared(sku: str, shape: str, count: int) -> Mapping[str, int]:
    return MappingProxyType(charges(sku, shape, count))


def shared_charges(sku: str, shape: str, count: int, field: str = "shape") -> Mapping[str, int]:
    """`charges` with the default weights as one read-only mapping per (sku, shape, count): ten
    thousand pending requests of a few shapes cost a few computations, and share mappings that
    `fairshare.order` recognises by identity. A bad shape raises naming `field`."""
    try:
        return _shared(sku, shape, count)
    except InvalidArgument:
        charges(sku, shape, count, field=field)
        raise
