"""Pure parsers of device text: power_supply, ODPM energy_value, RAPL, thermal, cpufreq, dumpsys.

Each takes the text (or the {path: text} map `read_files` returns) and gives numbers; none does
I/O, so each is tested on captured text in tests/data/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

THERMAL = "/sys/class/thermal"
CPUFREQ = "/sys/devices/system/cpu/cpufreq"


def parse_int(text: str | None) -> int | None:
    """A sysfs number (`"-312000\\n"` → -312000); None when absent or not a number."""
    if text is None:
        return None
    try:
        return int(text.strip().split()[0])
    except (ValueError, IndexError):
        return None


@dataclass(frozen=True)
class OdpmReading:
    """One read of a Pixel ODPM `energy_value`: ms since boot and µJ since boot per rail."""

    t_ms: int
    rails_uj: dict[str, int]


_ODPM_RAIL = re.compile(r"CH(\d+)\(T=(\d+)\)\[([^\]]+)\],\s*(\d+)")


def parse_odpm(text: str) -> OdpmReading | None:
    """`t=358356` then `CH3(T=358356)[S2M_VDD_CPUCL2], 761330` lines; None if not that format."""
    t_ms, rails = None, {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("t="):
            t_ms = parse_int(line[2:])
        elif match := _ODPM_RAIL.match(line):
            rails[match.group(3)] = int(match.group(4))
    if t_ms is None or not rails:
        return None
    return OdpmReading(t_ms, rails)


def celsius(raw: int | float) -> float:
    """A thermal reading in °C whatever the vendor's unit: m°C (most), d°C (some batteries), °C."""
    value = float(raw)
    if abs(value) >= 1000:
        return value / 1000
    if abs(value) >= 200:
        return value / 10
    return value


def thermal_zones(files: dict[str, str | None]) -> dict[str, float]:
    """{zone type: °C} from thermal_zoneN/{type,temp}; a repeated type gets its zone suffix."""
    zones: dict[str, float] = {}
    for path, text in sorted(files.items()):
        match = re.fullmatch(rf"{THERMAL}/(thermal_zone\d+)/temp", path)
        value = parse_int(text)
        if not match or value is None:
            continue
        kind = (files.get(f"{THERMAL}/{match.group(1)}/type") or match.group(1)).strip()
        zones[kind if kind not in zones else f"{kind}:{match.group(1)}"] = celsius(value)
    return zones


@dataclass(frozen=True)
class CpuPolicy:
    """One cpufreq policy (kHz): its CPUs, hardware max, current cap and current frequency."""

    name: str
    cpus: tuple[int, ...]
    cpuinfo_max_khz: int | None
    scaling_max_khz: int | None
    cur_khz: int | None


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """`0 1 2 3` or `0-3,6` → (0, 1, 2, 3[, 6])."""
    cpus: list[int] = []
    for part in re.split(r"[\s,]+", text.strip()):
        if "-" in part:
            lo, hi = part.split("-")
            cpus.extend(range(int(lo), int(hi) + 1))
        elif part:
            cpus.append(int(part))
    return tuple(cpus)


def cpu_policies(files: dict[str, str | None]) -> list[CpuPolicy]:
    """Every cpufreq policy in the map, in policy order."""
    names = sorted(
        {m.group(1) for p in files if (m := re.fullmatch(rf"{CPUFREQ}/(policy\d+)/\w+", p))},
        key=lambda n: int(n[6:]),
    )
    policies = []
    for name in names:
        base = f"{CPUFREQ}/{name}"
        policies.append(
            CpuPolicy(
                name=name,
                cpus=parse_cpu_list(files.get(f"{base}/related_cpus") or ""),
                cpuinfo_max_khz=parse_int(files.get(f"{base}/cpuinfo_max_freq")),
                scaling_max_khz=parse_int(files.get(f"{base}/scaling_max_freq")),
                cur_khz=parse_int(files.get(f"{base}/scaling_cur_freq")),
            )
        )
    return policies


@dataclass(frozen=True)
class ThermalService:
    """`dumpsys thermalservice`: the framework's status (0 none … 6 shutdown) and temperatures."""

    status: int | None
    temperatures: dict[str, float]


_TEMPERATURE = re.compile(r"Temperature\{mValue=([-\d.]+), mType=(-?\d+), mName=([^,]+), mStatus=(\d+)")


def parse_thermalservice(text: str) -> ThermalService:
    """Thermal Status and the HAL's current temperatures (the cached ones when the HAL is silent)."""
    status = None
    cached: dict[str, float] = {}
    current: dict[str, float] = {}
    section = cached
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("Thermal Status:"):
            status = parse_int(stripped.split(":", 1)[1])
        elif stripped.startswith("Current temperatures from HAL"):
            section = current
        elif stripped.startswith("Cached temperatures"):
            section = cached
        elif match := _TEMPERATURE.search(stripped):
            section[match.group(3)] = float(match.group(1))
    return ThermalService(status, current or cached)


# BatteryManager.BATTERY_STATUS_* as `dumpsys battery` prints them.
BATTERY_STATUS = {1: "Unknown", 2: "Charging", 3: "Discharging", 4: "Not charging", 5: "Full"}


def parse_dumpsys_battery(text: str) -> dict[str, str]:
    """`dumpsys battery` → {"status": "Charging", "USB powered": "true", ...} (status named)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep and value.strip():
            values[key.strip()] = value.strip()
    code = parse_int(values.get("status"))
    if code is not None:
        values["status"] = BATTERY_STATUS.get(code, str(code))
    return values
