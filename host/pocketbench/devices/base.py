"""What every device offers the measurement stage: who it is, and a way to run a `BenchJob`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from pocketbench.errors import DeviceError
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


# Optional capabilities: a device offers them or not, and callers ask with isinstance.


class CommandOutput(Protocol):
    """What a phone's shell returns: the command's output (with its exit status beside it)."""

    @property
    def output(self) -> str: ...


@runtime_checkable
class ShellDevice(Protocol):
    """A device whose shell the telemetry reads sysfs and procfs through (devices/shell.py)."""

    def shell(self, command: str) -> str | CommandOutput:
        """Run `command` on the device: its stdout, or a result holding it."""
        ...


@runtime_checkable
class ClosableDevice(Protocol):
    """A device holding something until the run ends (a phone: its connection and its lease)."""

    def close(self) -> None: ...


@runtime_checkable
class LeasedDevice(Protocol):
    """A device that other processes or hosts may also reach (a phone): it is leased before use."""

    def take_lease(self, wait_s: float | None = None) -> None:
        """Hold it, waiting up to `wait_s`; a holder that stays raises a DeviceError naming it."""
        ...


@runtime_checkable
class ThreadsDefaultDevice(Protocol):
    """A device whose default runtime thread count is its own, not the runtime's (the local
    device), with the reason the table states."""

    default_threads: int
    default_threads_reason: str


@runtime_checkable
class CorePolicyDevice(Protocol):
    """A device that pins its runner to a set of cores (a phone: its performance cores by default)
    and runs one thread per pinned core unless told otherwise."""

    def core_threads(self, cores: str | None) -> tuple[int, str]:
        """The thread count for the `cores` choice (None: the device's default) and why."""
        ...


# Where a cell's thread count came from (the `threads_source` column).
THREADS_BY_SETTINGS, THREADS_BY_DEVICE, THREADS_BY_RUNTIME = "settings", "device-policy", "runtime"


def resolve_threads(requested: int | None, device: object, cores: str | None = None) -> tuple[int, str, str | None]:
    """The thread count to ask the runtime for (0: its own default), where it came from (the
    settings: `--threads`, the API's `threads=`, a farm matrix; else the device's policy: one
    thread per pinned performance core on a phone, 1 on this computer; else the runtime's) and,
    for a device's policy, why."""
    if requested is not None:
        return requested, THREADS_BY_RUNTIME if requested == 0 else THREADS_BY_SETTINGS, None
    if isinstance(device, CorePolicyDevice):
        try:
            threads, why = device.core_threads(cores)
        except DeviceError as exc:  # the cell itself meets the same fault and records it as its row
            return 0, THREADS_BY_RUNTIME, f"the phone's core policy could not be read: {exc}"
        return threads, THREADS_BY_DEVICE if threads else THREADS_BY_RUNTIME, why
    if isinstance(device, ThreadsDefaultDevice):
        return device.default_threads, THREADS_BY_DEVICE, device.default_threads_reason
    return 0, THREADS_BY_RUNTIME, None


@runtime_checkable
class RecoverableDevice(Protocol):
    """A device that can be reconnected and waited for until it answers (a phone that rebooted
    or dropped off the network): a farm calls it before each cell."""

    def health_check(self, wait_s: float | None = None) -> str:
        """Reconnect and wait up to `wait_s`; the device's boot id."""
        ...
