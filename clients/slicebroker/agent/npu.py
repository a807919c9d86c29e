"""What NPUs this node has, read from what the vendors' drivers expose; nothing is guessed.

FuriosaAI RNGD (the `furiosa` kernel driver; the layout furiosa-smi and furiosa-device-api read):

    /sys/class/rngd_mgmt/rngd!npu<N>mgmt/   one directory per card N
        platform_type   "FuriosaAI" on real cards (anything else is not ours to claim)
        device_uuid     the card's UUID
        busname         its PCI address ("0000:17:00.0")
        device_state    "1" while the card is alive
    /dev/rngd/npu<N>pe<S>[-<E>]             device nodes of the card's processing elements

  A card counts when its management directory says FuriosaAI and it has at least one PE device
  node (without them nothing can use it: the driver is not bound); it is healthy when
  device_state is "1".

Rebellions ATOM / REBEL, two sources, the first that answers:

  1. `rbln-stat -j` (the driver's tool): {"devices": [{"npu", "name", "uuid", "pci": {"bus_id"},
     "memory": {"total"}, ...}]}; names "RBLN-CA12" (ATOM) and "RBLN-CA22" (ATOM+, the same
     16 GB chip) are the catalogue's ATOM, "RBLN-CR..." its REBEL.
  2. PCI sysfs, /sys/bus/pci/devices/<address>/ with vendor "0x1eff" and class "0x120000" (what
     Rebellions' own device plugin and DRA driver select on); the device id names the card
     (0x1120/0x1121 RBLN-CA12, 0x1220/0x1221 RBLN-CA22, as Rebellions' metrics exporter maps
     them). A card bound to vfio-pci belongs to a VM and is left out. PCI sysfs carries no
     health, so a card the kernel lists is reported healthy.

  Cards outside the catalogue (RBLN-CA25 ATOM-Max with 64 GB, the retired RBLN-CA02, device ids
  not listed above) are reported as problems and left out.

`sys_root` and `dev_root` are parameters so that tests can point discovery at a tree of the same
shape in a temporary directory; `rbln_stat` likewise returns the tool's output (None: not there).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slicebroker.agent.discovery import Accelerator, Discovery

_RNGD_MGMT = re.compile(r"^rngd!npu(\d+)mgmt$")
REBELLIONS_VENDOR = "0x1eff"
PROCESSING_ACCELERATOR_CLASS = "0x120000"
# PCI device id -> Rebellions product name (only the cards whose SKU is in the catalogue).
REBELLIONS_DEVICE_IDS = {"0x1120": "RBLN-CA12", "0x1121": "RBLN-CA12", "0x1220": "RBLN-CA22", "0x1221": "RBLN-CA22"}


def rebellions_sku(product: str) -> str | None:
    if product in ("RBLN-CA12", "RBLN-CA22"):
        return "ATOM"
    if product.startswith("RBLN-CR"):
        return "REBEL"
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def discover_furiosa(sys_root: Path = Path("/sys"), dev_root: Path = Path("/dev")) -> Discovery:
    mgmt_root = sys_root / "class" / "rngd_mgmt"
    if not mgmt_root.is_dir():
        return Discovery(problems=("no FuriosaAI driver (no /sys/class/rngd_mgmt)",), absent=True)
    cards = sorted(
        (int(m[1]), entry) for entry in mgmt_root.iterdir() if (m := _RNGD_MGMT.match(entry.name)) is not None
    )
    found: list[Accelerator] = []
    problems: list[str] = []
    for index, mgmt in cards:
        platform = _read(mgmt / "platform_type")
        if platform != "FuriosaAI":
            problems.append(f"npu{index}: platform_type is {platform!r}, not FuriosaAI; left out")
            continue
        if not any((dev_root / "rngd").glob(f"npu{index}pe*")):
            problems.append(f"npu{index}: no device nodes /dev/rngd/npu{index}pe*; the driver is not bound; left out")
            continue
        found.append(
            Accelerator(
                index=index,
                sku="RNGD",
                model="FuriosaAI RNGD",
                uuid=_read(mgmt / "device_uuid") or "",
                # The management interface does not report memory; the catalogue knows it.
                memory_bytes=0,
                healthy=_read(mgmt / "device_state") == "1",
                mig_enabled=False,
                pci_address=_read(mgmt / "busname") or "",
                kind="npu",
            )
        )
    if not found and not problems:
        problems.append("the FuriosaAI driver is loaded but lists no cards")
    return Discovery(tuple(found), tuple(problems))


def parse_rbln_stat(text: str) -> Discovery:
    """Rebellions cards from `rbln-stat -j` output."""
    try:
        doc: Any = json.loads(text)
        devices = list(doc["devices"])
    except (ValueError, KeyError, TypeError):
        return Discovery(problems=("rbln-stat -j printed something that is not its device list",))
    found: list[Accelerator] = []
    problems: list[str] = []
    for position, device in enumerate(devices):
        if not isinstance(device, dict):
            problems.append(f"rbln-stat device {position}: not an object; left out")
            continue
        index = int(device.get("npu", position))
        name = str(device.get("name", ""))
        sku = rebellions_sku(name)
        if sku is None:
            problems.append(f"npu{index}: {name or 'an unnamed card'} is not in the SKU catalogue; left out")
            continue
        memory = device.get("memory") or {}
        pci = device.get("pci") or {}
        found.append(
            Accelerator(
                index=index,
                sku=sku,
                model=name,
                uuid=str(device.get("uuid", "")),
                memory_bytes=_int(memory.get("total")),
                healthy=True,
                mig_enabled=False,
                pci_address=str(pci.get("bus_id", "")),
                kind="npu",
            )
        )
    return Discovery(tuple(sorted(found, key=lambda a: a.index)), tuple(problems))


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def discover_rebellions_pci(sys_root: Path = Path("/sys")) -> Discovery:
    """Rebellions cards from PCI sysfs (when rbln-stat is not installed)."""
    devices = sys_root / "bus" / "pci" / "devices"
    if not devices.is_dir():
        return Discovery(problems=("no PCI sysfs to read",), absent=True)
    found: list[Accelerator] = []
    problems: list[str] = []
    for address in sorted(devices.iterdir(), key=lambda p: p.name):
        if _read(address / "vendor") != REBELLIONS_VENDOR or _read(address / "class") != PROCESSING_ACCELERATOR_CLASS:
            continue
        driver = (address / "driver").resolve().name if (address / "driver").exists() else ""
        if driver == "vfio-pci":
            problems.append(f"{address.name}: bound to vfio-pci (passed to a VM); left out")
            continue
        device_id = _read(address / "device") or ""
        product = REBELLIONS_DEVICE_IDS.get(device_id)
        sku = rebellions_sku(product) if product else None
        if sku is None:
            problems.append(
                f"{address.name}: Rebellions device id {device_id or '?'} is not in the SKU catalogue; left out"
            )
            continue
        found.append(
            Accelerator(
                index=len(found),
                sku=sku,
                model=product or "",
                uuid="",
                memory_bytes=0,
                healthy=True,
                mig_enabled=False,
                pci_address=address.name,
                kind="npu",
            )
        )
    if not found and not problems:
        return Discovery(problems=("no Rebellions cards on the PCI bus",), absent=True)
    return Discovery(tuple(found), tuple(problems))


def run_rbln_stat(timeout_s: float = 10.0) -> str | None:
    """`rbln-stat -j`'s output, or None when the tool is not installed or fails."""
    tool = shutil.which("rbln-stat")
    if tool is None:
        return None
    try:
        done = subprocess.run([tool, "-j"], capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def discover_rebellions(
    sys_root: Path = Path("/sys"), rbln_stat: Callable[[], str | None] = run_rbln_stat
) -> Discovery:
    text = rbln_stat()
    if text is not None:
        return parse_rbln_stat(text)
    return discover_rebellions_pci(sys_root)


def combine(*parts: Discovery) -> Discovery:
    """All accelerators found; notes that a source is simply absent are dropped once anything is
    found (an NPU node need not hear that it has no NVML)."""
    accelerators = tuple(a for part in parts for a in part.accelerators)
    problems = tuple(p for part in parts if not (accelerators and part.absent) for p in part.problems)
    return Discovery(accelerators, problems)
