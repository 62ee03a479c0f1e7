"""What every device offers the measurement stage: who it is, and a way to run a `BenchJob`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from pocketbench.runner.report import BenchJob, RunnerReport


@dataclass(frozen=True)
class DeviceInfo:
    """Who the device is; carried on every result row."""

    device_id: str
    kind: str  # "local", "adb", ...
    model: str
    abi: str
    os: str
    cpu: str
    extra: dict[str, str] = field(default_factory=dict)
    emulated: bool = False  # timings from an emulator (device_emulated), never a phone's
    emulation: str = ""  # how it emulates (device_emulation), "" on real hardware


@runtime_checkable
class Device(Protocol):
    """A place that runs .pte files. No I/O in construction; `info()` probes the device."""

    device_id: str

    def info(self) -> DeviceInfo:
        """Probe identity and state (model, ABI, OS, CPU)."""
        ...

    def benchmark(self, job: BenchJob) -> RunnerReport:
        """Measure one .pte; output sets are written to `job.outputs` when it is set."""
        ...
