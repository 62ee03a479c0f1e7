"""What the emulated phone's /sys says over time: battery, thermal zones, cpufreq, ODPM.

A `SysfsScript` is plain data; `render(script, t)` turns it into file contents at `t`
seconds after the script started. Values follow vendor quirks on request (current in µA or
mA, either sign while discharging) so the host's normalisation is tested against them.
"""

from __future__ import annotations

import bisect
import math
import os
from dataclasses import dataclass, field
from typing import Literal

Number = float | int


@dataclass(frozen=True)
class Timeline:
    """A value over time: (t_seconds, value) points, held (step) or interpolated (linear)."""

    points: tuple[tuple[float, Number | str], ...]
    interpolate: Literal["step", "linear"] = "step"

    def __post_init__(self):
        if not self.points:
            raise ValueError("Timeline needs at least one (t, value) point")
        times = [t for t, _ in self.points]
        if times != sorted(times) or times[0] != 0:
            raise ValueError(f"Timeline times must start at 0 and increase, got {times}")

    def at(self, t: float) -> Number | str:
        times = [p[0] for p in self.points]
        i = max(0, bisect.bisect_right(times, t) - 1)
        t0, v0 = self.points[i]
        if self.interpolate == "step" or i + 1 == len(self.points):
            return v0
        t1, v1 = self.points[i + 1]
        if isinstance(v0, str) or isinstance(v1, str):
            raise ValueError("a linear Timeline needs numeric values")
        return v0 + (v1 - v0) * (t - t0) / (t1 - t0)

    def integral(self, t: float) -> float:
        """∫₀ᵗ value dt (for energy counters); exact for step and linear timelines."""
        total = 0.0
        ends = [p[0] for p in self.points[1:]] + [math.inf]
        for (t0, _), t_end in zip(self.points, ends, strict=True):
            if t0 >= t:
                break
            t1 = min(t_end, t)
            v0 = float(self.at(t0))
            v1 = float(self.at(t1)) if self.interpolate == "linear" else v0
            total += (v0 + v1) / 2 * (t1 - t0)
        return total


def constant(value: Number | str) -> Timeline:
    return Timeline(((0.0, value),))


def steps(*points: tuple[float, Number | str]) -> Timeline:
    return Timeline(tuple(points), "step")


def ramp(*points: tuple[float, Number]) -> Timeline:
    return Timeline(tuple(points), "linear")


@dataclass(frozen=True)
class Cluster:
    """One cpufreq policy: its CPUs, limits in kHz, and the scaling_max_freq cap over time."""

    cpus: tuple[int, ...]
    max_khz: int
    min_khz: int = 300_000
    cap_khz: Timeline | None = None  # None: never capped (scaling_max_freq = max_khz)
    capacity: int = 1024


def default_clusters(cpu_count: int | None = None) -> tuple[Cluster, ...]:
    """Little and big clusters over this host's real CPUs (so taskset masks stay valid)."""
    n = cpu_count or os.cpu_count() or 1
    if n == 1:
        return (Cluster((0,), 2_400_000),)
    half = n // 2
    return (
        Cluster(tuple(range(half)), 1_800_000, capacity=400),
        Cluster(tuple(range(half, n)), 2_800_000, capacity=1024),
    )


@dataclass(frozen=True)
class SysfsScript:
    """The whole synthetic sysfs. Power is what the battery delivers (W, positive)."""

    power_w: Timeline = field(default_factory=lambda: constant(1.2))
    voltage_v: Timeline = field(default_factory=lambda: constant(3.85))
    status: Timeline = field(default_factory=lambda: constant("Discharging"))
    current_unit: Literal["uA", "mA"] = "uA"
    discharging_sign: Literal[-1, 1] = -1  # sign of current_now while discharging
    capacity_pct: int = 80
    charge_counter_uah: int = 3_200_000
    thermal_zones: tuple[tuple[str, Timeline], ...] = field(
        default_factory=lambda: (
            ("cpu-1-0-usr", constant(38.0)),
            ("battery", constant(31.0)),
            ("skin-therm", constant(33.0)),
        )
    )
    clusters: tuple[Cluster, ...] = field(default_factory=default_clusters)
    # Pixel-style on-device power monitor rails: (channel, rail name, share of power_w).
    odpm_rails: tuple[tuple[int, str, float], ...] = ()
    odpm_boot_offset_s: float = 3600.0  # the counters have been running since "boot"


def battery_current(script: SysfsScript, t: float) -> int:
    """current_now at t in the script's unit and sign convention."""
    power = float(script.power_w.at(t))
    volts = float(script.voltage_v.at(t))
    amps = power / volts
    magnitude = amps * (1e6 if script.current_unit == "uA" else 1e3)
    charging = script.status.at(t) == "Charging"
    sign = -script.discharging_sign if charging else script.discharging_sign
    return round(sign * magnitude)


def _cpu_list(cpus: tuple[int, ...]) -> str:
    return " ".join(str(c) for c in cpus)


def _range(n: int) -> str:
    return "0" if n == 1 else f"0-{n - 1}"


def _cluster_files(policy: str, cluster: Cluster, t: float) -> dict[str, str]:
    cap = cluster.max_khz if cluster.cap_khz is None else int(cluster.cap_khz.at(t))
    cap = max(cluster.min_khz, min(cap, cluster.max_khz))
    base = f"devices/system/cpu/cpufreq/{policy}"
    available = sorted({cluster.min_khz, (cluster.min_khz + cluster.max_khz) // 2, cluster.max_khz})
    return {
        f"{base}/related_cpus": _cpu_list(cluster.cpus),
        f"{base}/affected_cpus": _cpu_list(cluster.cpus),
        f"{base}/cpuinfo_max_freq": str(cluster.max_khz),
        f"{base}/cpuinfo_min_freq": str(cluster.min_khz),
        f"{base}/scaling_max_freq": str(cap),
        f"{base}/scaling_min_freq": str(cluster.min_khz),
        f"{base}/scaling_cur_freq": str(cap),
        f"{base}/scaling_governor": "schedutil",
        f"{base}/scaling_available_frequencies": " ".join(str(f) for f in available),
    }


def render(script: SysfsScript, t: float) -> dict[str, str]:
    """Every synthetic file (path relative to /sys) and its content at time t."""
    files: dict[str, str] = {}
    bat = "class/power_supply/battery"
    volts = float(script.voltage_v.at(t))
    status = str(script.status.at(t))
    current = battery_current(script, t)
    files.update(
        {
            f"{bat}/type": "Battery",
            f"{bat}/present": "1",
            f"{bat}/technology": "Li-ion",
            f"{bat}/health": "Good",
            f"{bat}/status": status,
            f"{bat}/capacity": str(script.capacity_pct),
            f"{bat}/charge_counter": str(script.charge_counter_uah),
            f"{bat}/voltage_now": str(round(volts * 1e6)),
            f"{bat}/current_now": str(current),
            f"{bat}/current_avg": str(current),
            "class/power_supply/usb/type": "USB",
            "class/power_supply/usb/online": "1" if status == "Charging" else "0",
        }
    )
    for i, (zone_type, celsius) in enumerate(script.thermal_zones):
        files[f"class/thermal/thermal_zone{i}/type"] = zone_type
        files[f"class/thermal/thermal_zone{i}/temp"] = str(round(float(celsius.at(t)) * 1000))
        if zone_type == "battery":
            files[f"{bat}/temp"] = str(round(float(celsius.at(t)) * 10))
    n_cpus = sum(len(c.cpus) for c in script.clusters)
    cpu = "devices/system/cpu"
    for name in ("online", "possible", "present"):
        files[f"{cpu}/{name}"] = _range(n_cpus)
    for index, cluster in enumerate(script.clusters):
        policy = f"policy{cluster.cpus[0]}"
        files.update(_cluster_files(policy, cluster, t))
        for c in cluster.cpus:
            files[f"{cpu}/cpu{c}/online"] = "1"
            files[f"{cpu}/cpu{c}/cpu_capacity"] = str(cluster.capacity)
            files[f"{cpu}/cpu{c}/topology/physical_package_id"] = "0"
            files[f"{cpu}/cpu{c}/topology/cluster_id"] = str(index)
            files[f"{cpu}/cpu{c}/topology/core_id"] = str(c)
            files[f"{cpu}/cpu{c}/topology/thread_siblings_list"] = str(c)
            files[f"{cpu}/cpu{c}/topology/core_siblings_list"] = _range(n_cpus)
    if script.odpm_rails:
        files.update(_odpm_files(script, t))
    return {path: text + "\n" for path, text in files.items()}


def _odpm_files(script: SysfsScript, t: float) -> dict[str, str]:
    """Pixel ODPM: energy since boot in µJ per rail, stamped with ms since boot."""
    boot_ms = int((script.odpm_boot_offset_s + t) * 1000)
    base = "bus/iio/devices/iio:device0"
    joules_since_start = script.power_w.integral(t)
    baseline_j = float(script.power_w.at(0)) * script.odpm_boot_offset_s
    lines = [f"t={boot_ms}"]
    rails = []
    for channel, rail, share in script.odpm_rails:
        micro_joules = int((baseline_j + joules_since_start) * share * 1e6)
        lines.append(f"CH{channel}(T={boot_ms})[{rail}], {micro_joules}")
        rails.append(f"CH{channel}[{rail}]")
    return {
        f"{base}/name": "s2mpg10-odpm",
        f"{base}/enabled_rails": "\n".join(rails),
        f"{base}/energy_value": "\n".join(lines),
    }


def symlinks(script: SysfsScript) -> dict[str, str]:
    """Symlinks a phone's sysfs has (relative path → target), e.g. cpuN/cpufreq → policy."""
    links = {}
    for cluster in script.clusters:
        for c in cluster.cpus:
            links[f"devices/system/cpu/cpu{c}/cpufreq"] = f"../cpufreq/policy{cluster.cpus[0]}"
    return links
