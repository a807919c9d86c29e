"""What GPUs this node has, read from NVML (the `nvidia-ml-py` package, imported as `pynvml`)
where it is installed and a driver answers; NPUs are read from their drivers' sysfs and tools in
npu.py, and `npu.combine` joins the two.

`discover(nvml)` takes the module so that tests can hand in a stand-in; the agent passes the real
one, or None when it cannot be imported."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

# NVML product names -> catalogue SKUs. Order matters: the first pattern that matches wins.
_GPU_MODELS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bH200\b"), "H200-SXM-141GB"),
    (re.compile(r"\bH100\b.*\b80\s*GB\b|\bH100\b.*HBM3|\bH100-SXM"), "H100-SXM-80GB"),
    (re.compile(r"\bA100\b.*\b80\s*GB\b|\bA100-SXM4-80GB"), "A100-SXM-80GB"),
    (re.compile(r"\bB200\b"), "B200-SXM-180GB"),
)


@dataclass(frozen=True, slots=True)
class Accelerator:
    index: int
    sku: str
    model: str
    uuid: str
    memory_bytes: int
    healthy: bool
    mig_enabled: bool
    # PCI bus ids of the devices this one has active NVLinks to.
    nvlink_peers: tuple[str, ...] = ()
    pci_address: str = ""
    # "gpu" or "npu": the inventory names a node's devices "<kind><i>".
    kind: str = "gpu"


@dataclass(frozen=True, slots=True)
class Discovery:
    accelerators: tuple[Accelerator, ...] = ()
    # Why nothing (or not everything) was found; empty when all is well.
    problems: tuple[str, ...] = field(default_factory=tuple)
    # The source is simply not on this node (no library, no driver): worth saying only when no
    # other source found anything.
    absent: bool = False

    @property
    def skus(self) -> set[str]:
        return {a.sku for a in self.accelerators}


def sku_of(model: str) -> str | None:
    for pattern, sku in _GPU_MODELS:
        if pattern.search(model):
            return sku
    return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _nvlink_peers(nvml: Any, handle: Any) -> tuple[str, ...]:
    peers: list[str] = []
    for link in range(int(getattr(nvml, "NVML_NVLINK_MAX_LINKS", 18))):
        try:
            if nvml.nvmlDeviceGetNvLinkState(handle, link) != getattr(nvml, "NVML_FEATURE_ENABLED", 1):
                continue
            peers.append(_text(nvml.nvmlDeviceGetNvLinkRemotePciInfo(handle, link).busId))
        except nvml.NVMLError:
            # Links past the device's count, or NVLink unsupported: nothing more to read.
            break
    return tuple(dict.fromkeys(peers))


def discover(nvml: ModuleType | Any | None) -> Discovery:
    if nvml is None:
        return Discovery(problems=("NVML is not available (install nvidia-ml-py on GPU nodes)",), absent=True)
    try:
        nvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, NVMLError_DriverNotLoaded, ...
        return Discovery(problems=(f"NVML did not start: {exc}",))
    try:
        found: list[Accelerator] = []
        problems: list[str] = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            model = _text(nvml.nvmlDeviceGetName(handle))
            sku = sku_of(model)
            if sku is None:
                problems.append(f"gpu{index}: model {model!r} is not in the SKU catalogue; left out")
                continue
            try:
                current, _pending = nvml.nvmlDeviceGetMigMode(handle)
                mig = bool(current)
            except nvml.NVMLError:
                mig = False
            try:
                # Pending retired pages mean the device wants a reset: do not hand it out.
                healthy = not nvml.nvmlDeviceGetRetiredPagesPendingStatus(handle)
            except nvml.NVMLError:
                healthy = True
            found.append(
                Accelerator(
                    index=index,
                    sku=sku,
                    model=model,
                    uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
                    memory_bytes=int(nvml.nvmlDeviceGetMemoryInfo(handle).total),
                    healthy=healthy,
                    mig_enabled=mig,
                    nvlink_peers=_nvlink_peers(nvml, handle),
                )
            )
        if not found and not problems:
            problems.append("NVML sees no GPUs on this node")
        return Discovery(tuple(found), tuple(problems))
    finally:
        # Shutting down is best effort: discovery already has its answer.
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()


def load_nvml() -> ModuleType | None:
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return None
    module: ModuleType = pynvml
    return module
