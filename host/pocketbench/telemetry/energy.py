"""Energy per inference from what the runner's sampler read: detection, units, windows, net.

Sources, best first: Pixel ODPM rails (µJ counters, unaffected by USB charging), Linux RAPL
(µJ counters on Intel/AMD hosts), the Android fuel gauge (current_now × voltage_now, whose
units and sign differ by vendor). The runner samples the chosen files during an idle window
and the timed loop on one clock; energy is gross (loop), idle (the idle power over the loop's
length) and net (their difference), and net per inference carries an uncertainty.

A figure is given only where it can exist. A source whose reading does not change over the run
(a counter stuck at one value, a gauge reading one constant power, as an emulator's does) says
nothing about the load; nor does a net energy smaller than the source's resolution over the loop
(one count of its current or its counter). Both are "not measurable" with the reason. A cell's
energy per inference is a positive quantity: when its 95 % interval over the repetitions reaches
zero, the load's energy is lost in the idle baseline's noise, and the cell says so with the upper
bound instead of printing a figure that could be negative.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pocketbench.devices.shell import Shell, read_files
from pocketbench.runner.report import RunnerSamples
from pocketbench.telemetry.parsers import parse_int, parse_odpm

BATTERY = "/sys/class/power_supply/battery"
ODPM = "/sys/bus/iio/devices/iio:device*"
RAPL = "/sys/class/powercap/intel-rapl:*"
PROBE_PATTERNS = (
    f"{BATTERY}/current_now",
    f"{BATTERY}/voltage_now",
    f"{BATTERY}/status",
    f"{ODPM}/energy_value",
    f"{RAPL}/energy_uj",
    f"{RAPL}/max_energy_range_uj",
)
# Vendor units (android-measurement.md): a phone under load draws > 20 mA, so a current below
# 20 000 in magnitude is in mA, not µA; a battery voltage below 10 000 is in mV, not µV.
MILLIAMP_BELOW = 20_000
MILLIVOLT_BELOW = 10_000
# energy_status texts for a battery that said Charging or Full (the row's `energy_charging` says it
# as data, so no reader matches these words).
CHARGING_STATUS = "battery was Charging during the run"
CHARGING_ALLOWED = "charging allowed (--allow-charging)"
NOT_MEASURABLE = "not measurable: counter did not change"
NOT_MEASURABLE_CONSTANT = "not measurable: the reading did not change with the load"
NOT_MEASURABLE_RESOLUTION = "not measurable: below the source's resolution"
NOT_MEASURABLE_NOISE = "not measurable: within the idle baseline's noise"
# A power series whose spread is below this fraction of its level is one constant reading
# (rounding in the integration leaves a few ulps, never a real change).
CONSTANT_REL = 1e-9
# One count of a µJ counter (RAPL, ODPM), read at both ends of each window.
COUNTER_RESOLUTION_J = 2e-6
CHARGING_FIX = (
    "the fuel gauge then measures the charger, not the model; unplug USB and use wireless adb "
    "(`adb tcpip 5555`), a switchable USB hub, or a phone with ODPM rails (Pixel 6+), "
    "or pass --allow-charging to accept it"
)


@dataclass(frozen=True)
class EnergySource:
    """One way to read energy on a device, with the files the runner must sample for it."""

    kind: str  # "odpm" | "rapl" | "fuel_gauge"
    label: str
    files: tuple[str, ...]
    wrap_uj: tuple[int | None, ...] = ()  # RAPL: each counter's max_energy_range_uj


@dataclass(frozen=True)
class EnergyPlan:
    """The sources found on a device (best first), or why there is none."""

    sources: tuple[EnergySource, ...]
    unavailable: str | None = None

    @property
    def sample_files(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f for s in self.sources for f in s.files))

    def describe(self) -> str:
        return ", ".join(s.label for s in self.sources) if self.sources else f"not available: {self.unavailable}"


def detect_sources(files: dict[str, str | None]) -> EnergyPlan:
    """Which energy sources the probed files (`PROBE_PATTERNS`) offer; pure."""
    sources, missing = [], []
    odpm = sorted(p for p, text in files.items() if p.endswith("/energy_value") and text and parse_odpm(text))
    if odpm:
        rails = sum(len(r.rails_uj) for p in odpm if (r := parse_odpm(files[p] or "")) is not None)
        devices = ", ".join(p.split("/")[-2] for p in odpm)
        sources.append(EnergySource("odpm", f"ODPM {devices} ({rails} rails)", tuple(odpm)))
    else:
        missing.append("no ODPM rails (iio:device*/energy_value)")
    # Top-level RAPL zones only (intel-rapl:N): their sub-zones (core, dram) are inside them.
    rapl = sorted(p for p in files if re.fullmatch(r"/sys/class/powercap/intel-rapl:\d+/energy_uj", p))
    readable = [p for p in rapl if parse_int(files[p]) is not None]
    if readable:
        wraps = tuple(parse_int(files.get(p.replace("energy_uj", "max_energy_range_uj"))) for p in readable)
        sources.append(EnergySource("rapl", f"RAPL {len(readable)} package(s)", tuple(readable), wraps))
    elif rapl:
        missing.append("RAPL energy_uj is not readable (root only since Linux 5.10: run as root)")
    else:
        missing.append("no RAPL (/sys/class/powercap/intel-rapl:* absent: a VM or a CPU without it)")
    gauge = (f"{BATTERY}/current_now", f"{BATTERY}/voltage_now")
    if all(parse_int(files.get(p)) is not None for p in gauge):
        status = (f"{BATTERY}/status",) if files.get(f"{BATTERY}/status") else ()
        sources.append(EnergySource("fuel_gauge", "battery fuel gauge", gauge + status))
    else:
        missing.append("no battery fuel gauge (power_supply/battery/current_now)")
    return EnergyPlan(tuple(sources), None if sources else "; ".join(missing))


def probe_energy(shell: Shell) -> EnergyPlan:
    """Detect the device's energy sources with one shell round trip."""
    return detect_sources(read_files(shell, PROBE_PATTERNS))


@dataclass(frozen=True)
class EnergyResult:
    """One runner process's energy (mJ, W), or why it has none."""

    source: str
    invalid: str | None = None
    gross_mj: float | None = None
    idle_mj: float | None = None
    net_mj: float | None = None
    per_inference_mj: float | None = None
    per_inference_err_mj: float | None = None
    idle_w: float | None = None
    loop_w: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    # The fuel gauge this comes from read a battery at Charging or Full: the figure was refused for
    # it, or kept with --allow-charging. False for other sources and other refusals.
    charging: bool = False


@dataclass(frozen=True)
class _Series:
    """Cumulative energy (J) against time (s, the runner's clock)."""

    t: np.ndarray
    joules: np.ndarray
    notes: tuple[str, ...] = ()
    charging: bool = False
    resolution_w: float = 0.0  # a gauge: one count of its current at the battery's voltage
    resolution_j: float = COUNTER_RESOLUTION_J  # a counter: its counts at the windows' ends


def fuel_gauge_series(
    t_ns: Sequence[int],
    current: Sequence[str | None],
    voltage: Sequence[str | None],
    status: Sequence[str | None] | None = None,
) -> _Series:
    """Battery power V·I (units and sign normalised) integrated over time."""
    rows = [
        (t, parse_int(i), parse_int(v), (status[k] or "").strip() if status else "")
        for k, (t, i, v) in enumerate(zip(t_ns, current, voltage, strict=True))
    ]
    rows = [r for r in rows if r[1] is not None and r[2] is not None]
    if len(rows) < 2:
        raise ValueError("fewer than 2 fuel-gauge readings")
    t = np.array([r[0] for r in rows], dtype=np.float64) / 1e9
    amps = np.array([r[1] for r in rows], dtype=np.float64)
    volts = np.array([r[2] for r in rows], dtype=np.float64)
    milliamps = np.median(np.abs(amps)) < MILLIAMP_BELOW
    amps /= 1e3 if milliamps else 1e6
    volts /= 1e3 if np.median(volts) < MILLIVOLT_BELOW else 1e6
    discharging = np.array([r[3] == "Discharging" for r in rows])
    if discharging.any():
        sign = -1.0 if np.median(amps[discharging]) < 0 else 1.0
        sign_note = f"{'negative' if sign < 0 else 'positive'} while discharging (seen)"
    else:
        sign = -1.0  # the kernel's convention since 2020
        sign_note = "negative while discharging (assumed: never saw Discharging)"
    watts = volts * amps * sign
    joules = np.concatenate([[0.0], np.cumsum((watts[1:] + watts[:-1]) / 2 * np.diff(t))])
    charging = any(r[3] in ("Charging", "Full") for r in rows)
    notes = (f"current in {'mA' if milliamps else 'µA'}, {sign_note}",)
    count_a = 1e-3 if milliamps else 1e-6
    return _Series(t, joules, notes, charging, resolution_w=count_a * float(np.median(volts)), resolution_j=0.0)


def counter_series(
    t_ns: Sequence[int], readings: Sequence[Sequence[str | None]], wraps: Sequence[int | None]
) -> _Series:
    """RAPL-style µJ counters (one column per counter), unwrapped and summed."""
    t = np.array(t_ns, dtype=np.float64) / 1e9
    total = np.zeros(len(t))
    for column, wrap in zip(readings, wraps, strict=True):
        values = np.array([parse_int(v) if v is not None else np.nan for v in column], dtype=np.float64)
        steps = np.diff(values)
        if wrap:
            steps[steps < 0] += wrap
        total += np.concatenate([[0.0], np.cumsum(steps)])
    keep = ~np.isnan(total)
    return _Series(t[keep], total[keep] / 1e6)


def odpm_series(t_ns: Sequence[int], readings: Sequence[Sequence[str | None]]) -> _Series:
    """ODPM counters on their own ms stamps, mapped to the runner's clock.

    A read returns the energy accumulated up to its `t=` stamp, which may be older than the
    read; the smallest (read time - stamp) over all reads is the clocks' offset.
    """
    stamps: dict[int, tuple[float, float]] = {}
    for k, t in enumerate(t_ns):
        parsed = [p for column in readings if (p := parse_odpm(column[k] or "")) is not None]
        if len(parsed) < len(readings):
            continue
        t_ms = parsed[0].t_ms
        total = sum(sum(p.rails_uj.values()) for p in parsed)
        lag = t / 1e9 - t_ms / 1e3
        stamps[t_ms] = (min(lag, stamps[t_ms][0]) if t_ms in stamps else lag, total)
    if len(stamps) < 2:
        raise ValueError("fewer than 2 distinct ODPM readings")
    offset = min(lag for lag, _ in stamps.values())
    keys = sorted(stamps)
    times = np.array([k / 1e3 + offset for k in keys])
    uj = np.array([stamps[k][1] for k in keys], dtype=np.float64)
    return _Series(times, (uj - uj[0]) / 1e6)


def _cumulative(series: _Series, x: float) -> float:
    """Energy at time x; linear beyond the ends (a counter's stamp can trail its last read)."""
    t, j = series.t, series.joules
    if x < t[0]:
        return float(j[0] - (j[1] - j[0]) / (t[1] - t[0]) * (t[0] - x))
    if x > t[-1]:
        return float(j[-1] + (j[-1] - j[-2]) / (t[-1] - t[-2]) * (x - t[-1]))
    return float(np.interp(x, t, j))


def _window(series: _Series, start: float, end: float) -> tuple[float, float]:
    """(joules in [start, end], standard error of the mean power inside it)."""
    dt = np.diff(series.t)
    slack = 3 * float(np.median(dt))
    if start < series.t[0] - slack or end > series.t[-1] + slack:
        raise ValueError("the samples do not cover the window")
    joules = _cumulative(series, end) - _cumulative(series, start)
    powers = np.diff(series.joules)[dt > 0] / dt[dt > 0]
    mids = (series.t[1:] + series.t[:-1])[dt > 0] / 2
    inside = powers[(mids >= start) & (mids <= end)]
    se = float(np.std(inside, ddof=1) / math.sqrt(inside.size)) if inside.size > 1 else 0.0
    return joules, se


def _series(source: EnergySource, samples: RunnerSamples) -> _Series:
    columns = [samples.column(f) for f in source.files]
    if source.kind == "odpm":
        return odpm_series(samples.t_ns, columns)
    if source.kind == "rapl":
        return counter_series(samples.t_ns, columns, source.wrap_uj)
    status = columns[2] if len(columns) > 2 else None
    return fuel_gauge_series(samples.t_ns, columns[0], columns[1], status)


def compute_energy(
    source: EnergySource,
    samples: RunnerSamples,
    idle_window_ns: tuple[int, int],
    loop_window_ns: tuple[int, int],
    iterations: int,
    allow_charging: bool = False,
) -> EnergyResult:
    """Gross, idle and net energy of one run from `source`'s samples."""
    unreadable = [f for f in source.files if f in samples.errors]
    if unreadable:
        return EnergyResult(source.label, f"cannot read {unreadable[0]}: {samples.errors[unreadable[0]]}")
    try:
        series = _series(source, samples)
        idle_s = (idle_window_ns[1] - idle_window_ns[0]) / 1e9
        loop_s = (loop_window_ns[1] - loop_window_ns[0]) / 1e9
        idle_j, idle_se = _window(series, idle_window_ns[0] / 1e9, idle_window_ns[1] / 1e9)
        gross_j, loop_se = _window(series, loop_window_ns[0] / 1e9, loop_window_ns[1] / 1e9)
    except ValueError as exc:
        return EnergyResult(source.label, f"{source.label}: {exc}")
    if series.charging and source.kind == "fuel_gauge" and not allow_charging:
        return EnergyResult(source.label, f"{CHARGING_STATUS}: {CHARGING_FIX}", notes=series.notes, charging=True)
    if np.ptp(series.joules) == 0:
        # A counter stuck at one value (a rail that is not wired, a gauge that never updates)
        # would give a signed zero of rounding noise, not a reading.
        return EnergyResult(source.label, f"{NOT_MEASURABLE} during the run ({source.label})", notes=series.notes)
    dt = np.diff(series.t)
    powers = np.diff(series.joules)[dt > 0] / dt[dt > 0]
    if powers.size and np.ptp(powers) <= CONSTANT_REL * abs(float(np.mean(powers))):
        return EnergyResult(
            source.label,
            f"{NOT_MEASURABLE_CONSTANT}: {source.label} read a constant {float(np.mean(powers)):.3g} W through"
            " the idle window and the loop (a source that does not follow the load)",
            notes=series.notes,
        )
    idle_w = idle_j / idle_s if idle_s > 0 else 0.0
    idle_over_loop_j = idle_w * loop_s
    net_j = gross_j - idle_over_loop_j
    resolution_j = series.resolution_j + series.resolution_w * loop_s
    if abs(net_j) < resolution_j:
        return EnergyResult(
            source.label,
            f"{NOT_MEASURABLE_RESOLUTION}: the loop drew {1e3 * net_j:.2g} mJ over idle, under one count of"
            f" {source.label} over the loop ({1e3 * resolution_j:.2g} mJ)",
            notes=series.notes,
        )
    err_j = loop_s * math.hypot(loop_se, idle_se)
    notes = series.notes + ((CHARGING_ALLOWED,) if series.charging else ())
    return EnergyResult(
        source=source.label,
        gross_mj=1e3 * gross_j,
        idle_mj=1e3 * idle_over_loop_j,
        net_mj=1e3 * net_j,
        per_inference_mj=1e3 * net_j / iterations,
        per_inference_err_mj=1e3 * err_j / iterations,
        idle_w=idle_w,
        loop_w=gross_j / loop_s if loop_s > 0 else None,
        notes=notes,
        charging=series.charging and source.kind == "fuel_gauge",
    )


def best_energy(
    plan: EnergyPlan,
    samples: RunnerSamples | None,
    idle_window_ns: tuple[int, int] | None,
    loop_window_ns: tuple[int, int] | None,
    iterations: int,
    allow_charging: bool = False,
) -> EnergyResult:
    """The first source (best first) that gives a valid figure, else the best source's reason."""
    if not plan.sources:
        return EnergyResult("", f"not available: {plan.unavailable}")
    if samples is None or idle_window_ns is None or loop_window_ns is None:
        return EnergyResult(plan.sources[0].label, "not available: the runner took no samples (rebuild it)")
    results = [
        compute_energy(s, samples, idle_window_ns, loop_window_ns, iterations, allow_charging) for s in plan.sources
    ]
    return next((r for r in results if r.invalid is None), results[0])


# The 95 % two-sided normal quantile: the per-inference figure and its standard error make the
# interval `mean ± Z95·err`.
Z95 = 1.959963984540054


def combine(results: Sequence[EnergyResult]) -> dict[str, object]:
    """Per-cell energy columns from its repetitions: means, and an uncertainty that is the larger
    of the spread between repetitions and the propagated sampling error."""
    valid = [r for r in results if r.invalid is None and r.per_inference_mj is not None]
    if not valid:
        if not results:
            return {"energy_source": None, "energy_status": "not measured", "energy_charging": None}
        first = results[0]
        return {"energy_source": first.source, "energy_status": first.invalid, "energy_charging": first.charging}
    charging = any(r.charging for r in valid)
    per = np.array([r.per_inference_mj for r in valid], dtype=np.float64)
    sampling = math.sqrt(sum((r.per_inference_err_mj or 0.0) ** 2 for r in valid)) / len(valid)
    between = float(per.std(ddof=1) / math.sqrt(per.size)) if per.size > 1 else 0.0
    notes = sorted({n for r in valid for n in r.notes})
    failed = [r.invalid for r in results if r.invalid is not None]
    if failed:
        notes.append(f"{len(failed)} repetition(s) without energy: {failed[0]}")
    mean, err = float(per.mean()), max(sampling, between)
    if mean - Z95 * err <= 0:  # the 95 % interval reaches zero: no figure can be given
        bound = max(mean + Z95 * err, 0.0)
        return {
            "energy_source": valid[0].source,
            "energy_charging": charging,
            "energy_status": f"{NOT_MEASURABLE_NOISE}: {mean:.2g} ± {Z95 * err:.2g} mJ per inference over idle"
            f" (95%) reaches zero; at most {bound:.2g} mJ",
            "energy_gross_mj": float(np.mean([r.gross_mj for r in valid])),
            "energy_idle_mj": float(np.mean([r.idle_mj for r in valid])),
            "energy_net_mj": float(np.mean([r.net_mj for r in valid])),
        }
    return {
        "energy_source": valid[0].source,
        "energy_status": "; ".join(notes) or None,
        "energy_charging": charging,
        "energy_gross_mj": float(np.mean([r.gross_mj for r in valid])),
        "energy_idle_mj": float(np.mean([r.idle_mj for r in valid])),
        "energy_net_mj": float(np.mean([r.net_mj for r in valid])),
        "energy_mj_per_inference": float(per.mean()),
        "energy_mj_per_inference_err": max(sampling, between),
        "power_idle_w": float(np.mean([r.idle_w for r in valid])),
        "power_loop_w": float(np.mean([r.loop_w for r in valid])),
    }
