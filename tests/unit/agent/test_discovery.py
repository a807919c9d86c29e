"""The node agent without a GPU (the path this machine can run) and its NVML reading against a
stand-in NVML module: it reports what it finds and never invents devices."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from slicebroker.agent.discovery import Accelerator, Discovery, discover, load_nvml, sku_of
from slicebroker.agent.main import EXIT_ERROR, EXIT_NO_ACCELERATORS, run


class NVMLError(Exception):
    pass


class FakeNVML:
    """Just enough of pynvml's surface for discovery: a list of (name, uuid, GiB, mig, links)."""

    NVMLError = NVMLError
    NVML_NVLINK_MAX_LINKS = 4
    NVML_FEATURE_ENABLED = 1

    def __init__(self, gpus: list[tuple[str, str, int, bool, list[str]]], *, init_error: str = "") -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.shut = False

    def nvmlInit(self) -> None:
        if self.init_error:
            raise NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.shut = True

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetName(self, h: int) -> bytes:
        return self.gpus[h][0].encode()

    def nvmlDeviceGetUUID(self, h: int) -> str:
        return self.gpus[h][1]

    def nvmlDeviceGetMemoryInfo(self, h: int) -> Any:
        return SimpleNamespace(total=self.gpus[h][2] * 2**30)

    def nvmlDeviceGetMigMode(self, h: int) -> tuple[int, int]:
        return (int(self.gpus[h][3]), 0)

    def nvmlDeviceGetRetiredPagesPendingStatus(self, h: int) -> int:
        return 0

    def nvmlDeviceGetNvLinkState(self, h: int, link: int) -> int:
        if link >= len(self.gpus[h][4]):
            raise NVMLError("no such link")
        return 1

    def nvmlDeviceGetNvLinkRemotePciInfo(self, h: int, link: int) -> Any:
        return SimpleNamespace(busId=self.gpus[h][4][link])


def test_without_nvml_the_agent_says_so_and_exits_non_zero() -> None:
    lines: list[str] = []
    code = run(["agent", "--site", "s", "--rack", "r"], discover_now=lambda: discover(None), out=lines.append)
    assert code == EXIT_NO_ACCELERATORS
    assert any("NVML is not available" in line for line in lines)
    assert lines[-1] == "agent: no accelerators found on this node; nothing to register"


def test_this_machine_has_no_gpu_and_the_real_discovery_finds_none() -> None:
    found = discover(load_nvml())
    assert found.accelerators == () and found.problems


def test_a_driver_that_does_not_start_is_reported() -> None:
    found = discover(FakeNVML([], init_error="Driver Not Loaded"))
    assert found == Discovery(problems=("NVML did not start: Driver Not Loaded",))


def test_nvml_with_zero_gpus_finds_none() -> None:
    nvml = FakeNVML([])
    assert discover(nvml).problems == ("NVML sees no GPUs on this node",) and nvml.shut


def test_gpus_are_read_with_model_uuid_memory_mig_and_nvlink_peers() -> None:
    nvml = FakeNVML(
        [
            ("NVIDIA H100 80GB HBM3", "GPU-a", 80, True, ["0000:19:00.0", "0000:3b:00.0"]),
            ("NVIDIA H100 80GB HBM3", "GPU-b", 80, False, []),
            ("Tesla V100-SXM2-32GB", "GPU-c", 32, False, []),
        ]
    )
    found = discover(nvml)
    assert found.accelerators[0] == Accelerator(
        0, "H100-SXM-80GB", "NVIDIA H100 80GB HBM3", "GPU-a", 80 * 2**30, True, True, ("0000:19:00.0", "0000:3b:00.0")
    )
    assert [a.uuid for a in found.accelerators] == ["GPU-a", "GPU-b"]  # the V100 is not invented into a SKU
    assert "not in the SKU catalogue" in found.problems[0]


@pytest.mark.parametrize(
    ("model", "sku"),
    [
        ("NVIDIA H100 80GB HBM3", "H100-SXM-80GB"),
        ("NVIDIA H200", "H200-SXM-141GB"),
        ("NVIDIA A100-SXM4-80GB", "A100-SXM-80GB"),
        ("NVIDIA B200", "B200-SXM-180GB"),
        ("NVIDIA A100-PCIE-40GB", None),
        ("NVIDIA H100 PCIe", None),
    ],
)
def test_model_names_map_to_catalogue_skus(model: str, sku: str | None) -> None:
    assert sku_of(model) == sku


def test_mixed_skus_on_one_node_are_refused() -> None:
    nvml = FakeNVML([("NVIDIA H100 80GB HBM3", "a", 80, False, []), ("NVIDIA H200", "b", 141, False, [])])
    lines: list[str] = []
    assert (
        run(["agent", "--site", "s", "--rack", "r"], discover_now=lambda: discover(nvml), out=lines.append)
        == EXIT_ERROR
    )
    assert "one SKU per node" in lines[-1]
