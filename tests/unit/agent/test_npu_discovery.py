"""NPU discovery against trees shaped like the vendors' sysfs and /dev (built in a temporary
directory: a fixture of the operating system's surface) and against `rbln-stat -j` output. It
finds what is there, says why it leaves anything out, and never invents a card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slicebroker.agent.discovery import Accelerator, Discovery, discover
from slicebroker.agent.npu import (
    combine,
    discover_furiosa,
    discover_rebellions,
    discover_rebellions_pci,
    parse_rbln_stat,
)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def rngd_card(root: Path, n: int, *, alive: bool = True, platform: str = "FuriosaAI", pes: int = 8) -> None:
    mgmt = root / "sys" / "class" / "rngd_mgmt" / f"rngd!npu{n}mgmt"
    write(mgmt / "platform_type", platform)
    write(mgmt / "device_uuid", f"0000-RNGD-{n}")
    write(mgmt / "busname", f"0000:{0x17 + n:02x}:00.0")
    write(mgmt / "device_state", "1" if alive else "0")
    write(mgmt / "dev", f"511:{n}")
    for pe in range(pes):
        write(root / "dev" / "rngd" / f"npu{n}pe{pe}", "")
    if pes:
        write(root / "dev" / "rngd" / f"npu{n}pe0-3", "")


def test_rngd_cards_are_read_from_the_management_interface(tmp_path: Path) -> None:
    for n in range(3):
        rngd_card(tmp_path, n, alive=n != 1)
    found = discover_furiosa(tmp_path / "sys", tmp_path / "dev")
    assert found.problems == ()
    assert [(a.index, a.sku, a.kind, a.healthy) for a in found.accelerators] == [
        (0, "RNGD", "npu", True),
        (1, "RNGD", "npu", False),
        (2, "RNGD", "npu", True),
    ]
    assert found.accelerators[2] == Accelerator(
        2, "RNGD", "FuriosaAI RNGD", "0000-RNGD-2", 0, True, False, pci_address="0000:19:00.0", kind="npu"
    )


def test_rngd_cards_sort_by_number_not_name(tmp_path: Path) -> None:
    for n in (10, 2, 1):
        rngd_card(tmp_path, n)
    assert [a.index for a in discover_furiosa(tmp_path / "sys", tmp_path / "dev").accelerators] == [1, 2, 10]


def test_an_unbound_or_foreign_card_is_left_out_with_a_reason(tmp_path: Path) -> None:
    rngd_card(tmp_path, 0)
    rngd_card(tmp_path, 1, pes=0)
    rngd_card(tmp_path, 2, platform="VITIS")
    found = discover_furiosa(tmp_path / "sys", tmp_path / "dev")
    assert [a.index for a in found.accelerators] == [0]
    assert len(found.problems) == 2
    assert "npu1" in found.problems[0] and "not bound" in found.problems[0]
    assert "npu2" in found.problems[1] and "VITIS" in found.problems[1]


def test_without_the_furiosa_driver_nothing_is_found(tmp_path: Path) -> None:
    found = discover_furiosa(tmp_path / "sys", tmp_path / "dev")
    assert found.accelerators == () and found.absent


def pci(root: Path, address: str, vendor: str, device: str, cls: str = "0x120000", driver: str = "rebellions") -> None:
    path = root / "sys" / "bus" / "pci" / "devices" / address
    write(path / "vendor", vendor)
    write(path / "device", device)
    write(path / "class", cls)
    target = root / "sys" / "bus" / "pci" / "drivers" / driver
    target.mkdir(parents=True, exist_ok=True)
    (path / "driver").symlink_to(target)


def test_rebellions_cards_are_read_from_pci_sysfs(tmp_path: Path) -> None:
    pci(tmp_path, "0000:3b:00.0", "0x1eff", "0x1220")
    pci(tmp_path, "0000:1a:00.0", "0x1eff", "0x1120")
    pci(tmp_path, "0000:5e:00.0", "0x1eff", "0x1250")  # RBLN-CA25, 64 GB: not the catalogue's ATOM
    pci(tmp_path, "0000:86:00.0", "0x1eff", "0x1221", driver="vfio-pci")
    pci(tmp_path, "0000:af:00.0", "0x10de", "0x2330", cls="0x030200")  # an NVIDIA GPU: not ours here
    pci(tmp_path, "0000:d8:00.0", "0x1eff", "0x1220", cls="0x058000")  # another function of the card
    found = discover_rebellions_pci(tmp_path / "sys")
    assert [(a.pci_address, a.sku, a.model) for a in found.accelerators] == [
        ("0000:1a:00.0", "ATOM", "RBLN-CA12"),
        ("0000:3b:00.0", "ATOM", "RBLN-CA22"),
    ]
    assert [a.index for a in found.accelerators] == [0, 1]
    assert any("0x1250" in p for p in found.problems) and any("vfio-pci" in p for p in found.problems)


RBLN_STAT = {
    "KMD_version": "1.3.73",
    "devices": [
        {
            "npu": 1,
            "name": "RBLN-CA22",
            "uuid": "b1",
            "device": "rbln1",
            "pci": {"bus_id": "0000:3c:00.0", "numa_node": 0},
            "memory": {"used": "0", "total": "17179869184"},
        },
        {"npu": 0, "name": "RBLN-CA22", "uuid": "b0", "pci": {"bus_id": "0000:3b:00.0"}, "memory": {"total": "x"}},
        {"npu": 2, "name": "RBLN-CA25", "uuid": "b2"},
    ],
}


def test_rbln_stat_output_is_preferred_when_the_tool_answers(tmp_path: Path) -> None:
    pci(tmp_path, "0000:3b:00.0", "0x1eff", "0x1220")
    found = discover_rebellions(tmp_path / "sys", rbln_stat=lambda: json.dumps(RBLN_STAT))
    assert [(a.index, a.uuid, a.sku, a.pci_address, a.memory_bytes) for a in found.accelerators] == [
        (0, "b0", "ATOM", "0000:3b:00.0", 0),
        (1, "b1", "ATOM", "0000:3c:00.0", 16 * 2**30),
    ]
    assert found.problems == ("npu2: RBLN-CA25 is not in the SKU catalogue; left out",)
    fallback = discover_rebellions(tmp_path / "sys", rbln_stat=lambda: None)
    assert [a.model for a in fallback.accelerators] == ["RBLN-CA22"]


def test_rebel_is_named_by_rbln_stat() -> None:
    found = parse_rbln_stat(json.dumps({"devices": [{"npu": 0, "name": "RBLN-CR03", "uuid": "r0"}]}))
    assert [a.sku for a in found.accelerators] == ["REBEL"]


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"devices": 3}'])
def test_garbled_rbln_stat_output_finds_nothing_and_says_so(text: str) -> None:
    found = parse_rbln_stat(text)
    assert found.accelerators == () and "rbln-stat" in found.problems[0]


def test_combined_discovery_keeps_absence_notes_only_when_nothing_is_found(tmp_path: Path) -> None:
    nothing = combine(discover(None), discover_furiosa(tmp_path / "sys", tmp_path / "dev"))
    assert nothing.accelerators == () and len(nothing.problems) == 2
    rngd_card(tmp_path, 0)
    found = combine(discover(None), discover_furiosa(tmp_path / "sys", tmp_path / "dev"))
    assert found == Discovery(found.accelerators, ()) and len(found.accelerators) == 1
