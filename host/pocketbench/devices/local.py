"""This computer as a device: the default when no phone is attached."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from pocketbench.devices.base import BenchJob, DeviceInfo, RunnerReport
from pocketbench.devices.runner_process import run_local_runner

# CPU features that decide whether int8 kernels can beat fp32 (recorded with every result).
INT8_FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def parse_cpuinfo(text: str) -> tuple[str, list[str]]:
    """`/proc/cpuinfo` → (CPU model name, the int8-relevant features it lists)."""
    name, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Hardware") and not name:
            name = value.strip()
        elif key in ("flags", "Features"):
            flags.update(value.split())
    return name, [f for f in INT8_FEATURES if f in flags]


class LocalDevice:
    """Runs each measurement in a fresh runner process on this computer."""

    device_id = "local"

    def __init__(self, timeout_s: float = 600.0) -> None:
        self.timeout_s = timeout_s

    def info(self) -> DeviceInfo:
        try:
            cpu, features = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
        except OSError:
            cpu, features = platform.processor(), []
        return DeviceInfo(
            device_id=self.device_id,
            kind="local",
            model=platform.node(),
            abi=platform.machine(),
            os=f"{platform.system()} {platform.release()}",
            cpu=cpu,
            extra={"cpu_features": " ".join(features), "cores": str(os.cpu_count() or 0)},
        )

    def runner(self) -> tuple[list[str], str]:
        """The runner command and its backend name."""
        return [sys.executable, "-m", "pocketbench.devices.python_runner"], "python-runtime"

    def benchmark(self, job: BenchJob) -> RunnerReport:
        prefix, backend = self.runner()
        return run_local_runner(prefix, job, backend, self.timeout_s)
