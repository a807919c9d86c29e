"""Resource classes and what one reservation charges against them.

A quota entry names a resource class: a SKU ("H100-SXM-80GB"), a family (the catalogue kind,
"gpu" or "npu") or the normalised accelerator unit "accel". A reservation of `count` slices of
one shape of one SKU charges, in `Amount` units:

    <SKU>        compute: device-equivalents (a 1g.10gb MIG slice is 1/7, a 0.25 share is 0.25)
    <SKU>#mem    memory: device-equivalents (a 1g.10gb slice of an 80 GB card is 10/80)
    <family>     compute device-equivalents of any SKU of the family
    accel        compute × the SKU's normalisation weight (H100 = 1)

Compute and memory are two resources of one class, so the SKU's quota bounds both: seven 1g.10gb
slices fill one device of compute, and a 4g.40gb + 3g.40gb pair fills exactly one device of each,
as they do on the card. Every check (caps, borrowing, fair share) reads these same charges.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import cache, lru_cache
from types import MappingProxyType

import yaml

from slicebroker.core.catalogue import catalogue_text
from slicebroker.core.errors import InvalidArgument
from slicebroker.quota.domain.amount import Amount

ACCEL = "accel"
MEMORY_SUFFIX = "#mem"
# Compute slices of the MIG-capable cards (A100, H100, H200, B200 all split into sevenths).
MIG_COMPUTE_SLICES = 7
_MIG = re.compile(r"^(\d)g\.(\d+)gb$")

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
    """`shape` "" is a whole device; "1g.10gb" a MIG profile (NVIDIA SKUs); "0.25" a share."""
    if not shape:
        return WHOLE
    info = skus()[sku]
    if m := _MIG.match(shape):
        if info.vendor != "nvidia":
            raise InvalidArgument(field, f"MIG profile {shape!r} on a {sku}, which has no MIG")
        compute, memory = int(m[1]), int(m[2])
        if not 1 <= compute <= MIG_COMPUTE_SLICES or not 1 <= memory <= info.memory_gib:
            raise InvalidArgument(field, f"MIG profile {shape!r} does not fit a {sku}")
        return SliceSize(Fraction(compute, MIG_COMPUTE_SLICES), Fraction(memory, info.memory_gib))
    try:
        share = Fraction(shape)
    except (ValueError, ZeroDivisionError):
        raise InvalidArgument(field, f"{shape!r} is neither a MIG profile (e.g. 1g.10gb) nor a share") from None
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
