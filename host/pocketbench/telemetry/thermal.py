"""Temperatures, thermal status and CPU frequencies around each cell: cool down, then flag throttling.

One shell round trip gives a `DeviceState` (thermal zones, `dumpsys thermalservice` where the
device has it, cpufreq policies). Before a cell the sweep waits, bounded, until every zone is
back near its idle temperature; a cell is throttled when a policy's max frequency dropped
between its start and end (or during it, from the runner's samples) or the thermal status rose.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pocketbench.devices.shell import Shell, parse_file_dump, read_files_command
from pocketbench.progress import Reporter
from pocketbench.telemetry.parsers import (
    CPUFREQ,
    THERMAL,
    CpuPolicy,
    cpu_policies,
    parse_int,
    parse_thermalservice,
    thermal_zones,
)

PATTERNS = (
    f"{THERMAL}/thermal_zone*/type",
    f"{THERMAL}/thermal_zone*/temp",
    f"{CPUFREQ}/policy*/related_cpus",
    f"{CPUFREQ}/policy*/cpuinfo_max_freq",
    f"{CPUFREQ}/policy*/scaling_max_freq",
    f"{CPUFREQ}/policy*/scaling_cur_freq",
)
_SERVICE_MARK = "@@pocketbench thermalservice"
# Back "near idle": within this many °C of the idle reading, per zone.
COOL_MARGIN_C = 2.0
COOLDOWN_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class DeviceState:
    """What the device's thermal and cpufreq files said at one moment."""

    zones: dict[str, float] = field(default_factory=dict)
    status: int | None = None  # Android thermal status 0 (none) … 6 (shutdown); None: not Android
    policies: tuple[CpuPolicy, ...] = ()

    def summary(self) -> dict[str, object]:
        """JSON-ready: °C per zone, status, MHz cap per policy."""
        return {
            "zones_c": {k: round(v, 1) for k, v in self.zones.items()},
            "thermal_status": self.status,
            "max_mhz": {p.name: (p.scaling_max_khz or 0) // 1000 for p in self.policies},
            "cur_mhz": {p.name: (p.cur_khz or 0) // 1000 for p in self.policies},
        }


def parse_state(text: str) -> DeviceState:
    """The output of `state_command()` → DeviceState (pure)."""
    files_text, _, service_text = text.partition(_SERVICE_MARK)
    files = parse_file_dump(files_text)
    service = parse_thermalservice(service_text)
    zones = thermal_zones(files) or service.temperatures
    return DeviceState(zones, service.status, tuple(cpu_policies(files)))


def state_command() -> str:
    """Thermal zones and cpufreq files, then `dumpsys thermalservice` where it exists."""
    return (
        f"{read_files_command(PATTERNS)}; echo {_SERVICE_MARK}; "
        "command -v dumpsys >/dev/null 2>&1 && dumpsys thermalservice 2>/dev/null"
    )


def read_state(shell: Shell) -> DeviceState:
    return parse_state(shell(state_command()))


def hot_zones(state: DeviceState, idle: DeviceState, margin_c: float = COOL_MARGIN_C) -> dict[str, float]:
    """Zones still more than `margin_c` above their idle reading: {zone: °C above}."""
    return {
        name: temp - idle.zones[name]
        for name, temp in state.zones.items()
        if name in idle.zones and temp - idle.zones[name] > margin_c
    }


@dataclass(frozen=True)
class Cooldown:
    waited_s: float
    reached: bool
    still_hot: dict[str, float]  # zones above idle + margin when the wait ended


def cool_down(
    shell: Shell,
    idle: DeviceState,
    reporter: Reporter | None = None,
    timeout_s: float = COOLDOWN_TIMEOUT_S,
    poll_s: float = 1.0,
    margin_c: float = COOL_MARGIN_C,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[Cooldown, DeviceState]:
    """Wait until every zone is within `margin_c` of idle, at most `timeout_s`; the last state read."""
    reporter = reporter or Reporter()
    start = clock()
    state = read_state(shell)
    hot = hot_zones(state, idle, margin_c)
    if not hot:
        return Cooldown(0.0, True, {}), state
    hottest = max(hot, key=hot.__getitem__)
    with reporter.status(f"cooling down: {hottest} {state.zones[hottest]:.1f} °C (idle {idle.zones[hottest]:.1f})"):
        while hot and clock() - start < timeout_s:
            sleep(poll_s)
            state = read_state(shell)
            hot = hot_zones(state, idle, margin_c)
    return Cooldown(clock() - start, not hot, hot), state


def throttle_reasons(
    start: DeviceState, end: DeviceState, sampled_caps: dict[str, Sequence[int | None]] | None = None
) -> list[str]:
    """Why a cell ran throttled: a max-frequency cap dropped (start→end or during the run) or
    the thermal status rose; empty when it did not."""
    reasons = []
    caps_end = {p.name: p.scaling_max_khz for p in end.policies}
    for policy in start.policies:
        before = policy.scaling_max_khz
        during = [v for v in (sampled_caps or {}).get(policy.name, []) if v is not None]
        lowest = min([v for v in (caps_end.get(policy.name), *during) if v is not None], default=None)
        if before and lowest and lowest < before:
            reasons.append(f"{policy.name} max frequency dropped {before // 1000} → {lowest // 1000} MHz")
    if start.status is not None and end.status is not None and end.status > start.status:
        reasons.append(f"thermal status rose {start.status} → {end.status}")
    return reasons


def cap_files(state: DeviceState) -> dict[str, str]:
    """{policy: its scaling_max_freq path}, for the runner to sample during the loop."""
    return {p.name: f"{CPUFREQ}/{p.name}/scaling_max_freq" for p in state.policies}


def sampled_caps(files: dict[str, str], columns: Callable[[str], Sequence[str | None]]) -> dict[str, list[int | None]]:
    """The runner's readings of each policy's cap (kHz)."""
    return {name: [parse_int(v) for v in columns(path)] for name, path in files.items()}
