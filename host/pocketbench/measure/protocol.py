"""The measurement protocol around each runner process: cool down, sample, repeat, summarize.

A cell is measured as several fresh runner processes (repetitions), interleaved with the other
cells of the sweep so drift hits every variant alike. Around each process the device's thermal
state is read (and the sweep waits until it is near idle), the runner samples energy files,
its own memory and the CPU frequency caps, and afterwards the repetitions are folded into one
row: latency statistics with a CI, energy per inference with an uncertainty, memory over the
process baseline, temperatures and a throttled flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pocketbench.devices.base import Device
from pocketbench.devices.shell import Shell, device_shell
from pocketbench.measure.settings import ProtocolSettings
from pocketbench.progress import Reporter
from pocketbench.runner.report import BenchJob, RunnerReport
from pocketbench.telemetry.energy import EnergyPlan, EnergyResult, best_energy, probe_energy
from pocketbench.telemetry.thermal import (
    Cooldown,
    DeviceState,
    cap_files,
    cool_down,
    read_state,
    sampled_caps,
    throttle_reasons,
)

SAMPLE_INTERVAL_MS = 20


@dataclass
class DeviceTelemetry:
    """What one device offers: its shell (None: no readings beyond the runner's), energy sources,
    its idle thermal state and the cpufreq caps to sample."""

    shell: Shell | None
    energy: EnergyPlan
    idle: DeviceState
    caps: dict[str, str] = field(default_factory=dict)

    @classmethod
    def without_shell(cls, reason: str) -> DeviceTelemetry:
        return cls(None, EnergyPlan((), reason), DeviceState())

    @classmethod
    def probe(cls, device: Device) -> DeviceTelemetry:
        """Read the device once through its `shell` (the seam every reading goes through)."""
        shell = device_shell(device)
        if shell is None:
            return cls.without_shell(f"device {device.device_id} offers no shell to read it")
        idle = read_state(shell)
        return cls(shell, probe_energy(shell), idle, cap_files(idle))

    def sampling(self, job: BenchJob, settings: ProtocolSettings) -> BenchJob:
        """The job with the sampler on: energy files and caps, and the idle window when energy is read."""
        files = (*self.energy.sample_files, *self.caps.values())
        job = replace(job, sample_files=files, sample_interval_ms=SAMPLE_INTERVAL_MS)
        if self.energy.sources:
            window = settings.energy_window_s
            job = replace(job, idle_baseline_s=window, min_seconds=max(job.min_seconds, window))
        return job


@dataclass(frozen=True)
class Repetition:
    """One runner process and the device around it."""

    report: RunnerReport
    energy: EnergyResult
    cooldown: Cooldown | None = None
    start: DeviceState | None = None
    end: DeviceState | None = None
    throttle: tuple[str, ...] = ()


def run_repetition(
    device: Device, job: BenchJob, telemetry: DeviceTelemetry, settings: ProtocolSettings, reporter: Reporter
) -> Repetition:
    """Cool down, read the state, run the runner with sampling, read the state again."""
    cooldown = start = None
    if telemetry.shell is not None:
        cooldown, start = cool_down(telemetry.shell, telemetry.idle, reporter, settings.cooldown_timeout_s)
    report = device.benchmark(telemetry.sampling(job, settings))
    end = read_state(telemetry.shell) if telemetry.shell is not None else None
    energy = report_energy(report, telemetry.energy, settings.allow_charging)
    throttle: tuple[str, ...] = ()
    if start is not None and end is not None:
        caps = sampled_caps(telemetry.caps, report.samples.column) if report.samples else None
        throttle = tuple(throttle_reasons(start, end, caps))
    return Repetition(report, energy, cooldown, start, end, throttle)


def report_energy(report: RunnerReport, plan: EnergyPlan, allow_charging: bool = False) -> EnergyResult:
    """One runner process's energy from the files it sampled (the best valid source), or why none."""
    return best_energy(
        plan, report.samples, report.idle_window_ns, report.loop_window_ns, len(report.iterations_ns), allow_charging
    )
