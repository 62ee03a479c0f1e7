"""The measurement protocol around each runner process: cool down, sample, repeat, summarize.

A cell is measured as several fresh runner processes (repetitions), interleaved with the other
cells of the sweep so drift hits every variant alike. Around each process the device's thermal
state is read (and the sweep waits until it is near idle), the runner samples energy files,
its own memory and the CPU frequency caps, and afterwards the repetitions are folded into one
row: latency statistics with a CI, energy per inference with an uncertainty, memory over the
process baseline, temperatures and a throttled flag.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from pocketbench import stats
from pocketbench.devices.base import Device
from pocketbench.devices.shell import Shell, device_shell
from pocketbench.errors import PocketbenchError
from pocketbench.measure.latency import latency_summary
from pocketbench.progress import Reporter
from pocketbench.runner.report import BenchJob, RunnerReport
from pocketbench.telemetry.energy import EnergyPlan, EnergyResult, best_energy, combine, probe_energy
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


@dataclass(frozen=True)
class ProtocolSettings:
    """How each cell is repeated and what is sampled around it."""

    repetitions: int = 3
    energy_window_s: float = 2.0  # idle window and minimum loop length when energy is measured
    allow_charging: bool = False
    cooldown_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        if self.repetitions < 1:
            raise PocketbenchError("--repetitions must be at least 1")
        if self.energy_window_s <= 0:
            raise PocketbenchError("--energy-window must be a positive number of seconds")


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
    energy = best_energy(
        telemetry.energy, report.samples, report.idle_window_ns, report.loop_window_ns,
        len(report.iterations_ns), settings.allow_charging,
    )  # fmt: skip
    throttle: tuple[str, ...] = ()
    if start is not None and end is not None:
        caps = sampled_caps(telemetry.caps, report.samples.column) if report.samples else None
        throttle = tuple(throttle_reasons(start, end, caps))
    return Repetition(report, energy, cooldown, start, end, throttle)


def latency_columns(reports: Sequence[RunnerReport]) -> dict[str, Any]:
    """Pooled latency figures plus the repetition-aware median CI, CV, speed modes and unstable
    flag. With calibrated samples each figure is per call (a batch's time / its calls), so the
    p90/p99 are those of batches, and the raw batch times are kept beside them."""
    timed = [r for r in reports if r.iterations_ns]
    groups = [[ns / 1e6 for ns in r.iterations_ns] for r in timed]
    pooled_ns = [ns for r in timed for ns in r.iterations_ns]
    batched = any(r.batch_calls > 1 for r in timed)
    columns: dict[str, Any] = latency_summary(pooled_ns)
    columns.update(
        latency_samples_ms=[v for g in groups for v in g],
        samples_repetition=[i for i, g in enumerate(groups) for _ in g],
        iterations=len(pooled_ns),
        repetitions=len(groups),
        batch_calls=max((r.batch_calls for r in timed), default=None),
        samples_batch_calls=[r.batch_calls for r in timed],
        latency_batches_ms=[ns / 1e6 for r in timed for ns in (r.batches_ns or r.iterations_ns)],
        latency_tails_from_batches=batched,
    )
    if groups:
        summary = stats.summarize(groups, batched=batched)
        columns.update(
            latency_p50_ms=summary.median,
            latency_p50_ci_low_ms=summary.ci_low,
            latency_p50_ci_high_ms=summary.ci_high,
            latency_p50_ci_halfwidth=(summary.ci_high - summary.ci_low) / 2 / summary.median
            if summary.median > 0
            else None,
            latency_cv=summary.cv,
            latency_repetition_cv=summary.repetition_cv,
            latency_modes=stats.describe_modes(summary.modes) if summary.modes else None,
            unstable=summary.unstable,
            unstable_reason="; ".join(summary.unstable_reasons) or None,
        )
    return columns


def memory_columns(reports: Sequence[RunnerReport]) -> dict[str, Any]:
    """Peak RSS, peak RSS + swap over the samples, and the growth over the process baseline."""
    peaks = [r.peak_rss_kb for r in reports if r.peak_rss_kb is not None]
    with_swap = []
    for r in reports:
        s = r.samples
        if s is None:
            continue
        totals = [rss + (swap or 0) for rss, swap in zip(s.rss_kb, s.swap_kb, strict=True) if rss is not None]
        with_swap.append(max([*totals, r.peak_rss_kb or 0]))
    deltas = [
        r.peak_rss_kb - r.rss_kb_before_load
        for r in reports
        if r.peak_rss_kb is not None and r.rss_kb_before_load is not None
    ]
    return {
        "peak_rss_kb": max(peaks) if peaks else None,
        "peak_rss_swap_kb": max(with_swap) if with_swap else None,
        "rss_delta_kb": int(np.median(deltas)) if deltas else None,
    }


def thermal_columns(reps: Sequence[Repetition]) -> dict[str, Any]:
    """Temperatures and caps at the start of the first and end of the last repetition, waits, throttling."""
    starts = [r.start for r in reps if r.start is not None]
    ends = [r.end for r in reps if r.end is not None]
    reasons = list(dict.fromkeys(reason for r in reps for reason in r.throttle))
    waited = [r.cooldown.waited_s for r in reps if r.cooldown is not None]
    not_cool = [r.cooldown.still_hot for r in reps if r.cooldown is not None and not r.cooldown.reached]
    if not starts:
        return {"throttled": None}
    hottest = lambda s: max(s.zones.values()) if s.zones else None  # noqa: E731
    detail = {
        "repetitions": [
            {"start": r.start.summary(), "end": r.end.summary(), "cooldown_s": r.cooldown.waited_s}
            for r in reps
            if r.start is not None and r.end is not None and r.cooldown is not None
        ]
    }
    return {
        "temp_start_c": hottest(starts[0]),
        "temp_end_c": hottest(ends[-1]) if ends else None,
        "thermal_status_end": ends[-1].status if ends else None,
        "cooldown_s": float(sum(waited)),
        "cooldown_note": f"not cool after the timeout: {not_cool[0]}" if not_cool else None,
        "throttled": bool(reasons),
        "throttle_reason": "; ".join(reasons) or None,
        "thermal_json": json.dumps(detail, sort_keys=True),
    }


def cell_columns(reps: Sequence[Repetition], energy_plan: EnergyPlan) -> dict[str, Any]:
    """Every measured column of a cell from its repetitions."""
    reports = [r.report for r in reps]
    columns = latency_columns(reports)
    columns.update(memory_columns(reports))
    columns.update(thermal_columns(reps))
    columns.update(combine([r.energy for r in reps]))
    columns["energy_sources"] = energy_plan.describe()
    columns.update(runner_columns(reports))
    return columns


def runner_columns(reports: Sequence[RunnerReport]) -> dict[str, Any]:
    """What runner processes report besides latency (load and first inference as medians over the
    processes; memory, backend and placement from the first) — for the bench and farm paths alike."""
    first = reports[0]
    loads = [r.load_ms for r in reports if r.load_ms is not None]
    firsts = [r.first_inference_ms for r in reports if r.first_inference_ms is not None]
    columns: dict[str, Any] = {
        "load_ms": float(np.median(loads)) if loads else None,
        "first_inference_ms": float(np.median(firsts)) if firsts else None,
        "rss_kb_before_load": first.rss_kb_before_load,
        "rss_kb_after_loop": first.rss_kb_after_loop,
        "backend": first.backend,
        "runtime_version": first.runtime_version,
        "threads": first.threads,
    }
    # Placement and retries the device reports (an adb phone: cpu_mask, interruptions).
    columns.update(first.raw.get("device_columns") or {})
    if first.planned_buffers_bytes:
        columns["planned_memory_bytes"] = sum(first.planned_buffers_bytes)
    return columns
