"""Pure parsers of what a phone says about itself: getprop, cpufreq policies, battery.

Text in, values out; tested on captured text in tests/data/. The shell commands that
produce the text live beside them (PROBE_*), so a capture can be regenerated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypedDict

_PROP_LINE = re.compile(r"^\[([^\]]+)\]: \[(.*)\]$")

# One command gathers every cpufreq policy: "<policy dir>|<related_cpus>|<cpuinfo_max_freq>".
PROBE_CLUSTERS = (
    "for p in /sys/devices/system/cpu/cpufreq/policy*; do"
    ' echo "$p|$(cat $p/related_cpus 2>/dev/null)|$(cat $p/cpuinfo_max_freq 2>/dev/null)"; done'
)
PROBE_BATTERY = "cat /sys/class/power_supply/battery/status /sys/class/power_supply/battery/capacity 2>/dev/null"


def parse_getprop(text: str) -> dict[str, str]:
    """`getprop` output (`[key]: [value]` lines) → dict; values spanning lines are skipped."""
    props = {}
    for line in text.splitlines():
        match = _PROP_LINE.match(line.strip())
        if match:
            props[match.group(1)] = match.group(2)
    return props


@dataclass(frozen=True)
class PhoneIdentity:
    serial: str
    manufacturer: str
    model: str
    device: str
    soc: str
    android_release: str
    sdk: str
    abi: str
    abilist: str
    fingerprint: str
    build_type: str
    emulated: bool = False  # an emulator, not a phone: its timings are not a phone's
    emulation: str = ""  # how it runs programs, e.g. "qemu-user aarch64 on x86_64"

    @property
    def os(self) -> str:
        return f"Android {self.android_release} (API {self.sdk})"


def identity_from_props(props: dict[str, str]) -> PhoneIdentity:
    """Who the phone is. The SoC comes from ro.soc.* (API 31+), else the board/hardware name."""
    soc_parts = [props.get("ro.soc.manufacturer", ""), props.get("ro.soc.model", "")]
    soc = " ".join(p for p in soc_parts if p) or props.get("ro.board.platform") or props.get("ro.hardware", "")
    return PhoneIdentity(
        serial=props.get("ro.serialno", "") or props.get("ro.boot.serialno", ""),
        manufacturer=props.get("ro.product.manufacturer", ""),
        model=props.get("ro.product.model", ""),
        device=props.get("ro.product.device", ""),
        soc=soc,
        android_release=props.get("ro.build.version.release", ""),
        sdk=props.get("ro.build.version.sdk", ""),
        abi=props.get("ro.product.cpu.abi", ""),
        abilist=props.get("ro.product.cpu.abilist", ""),
        fingerprint=props.get("ro.build.fingerprint", ""),
        build_type=props.get("ro.build.type", ""),
        **emulation_from_props(props),
    )


class Emulation(TypedDict):
    emulated: bool
    emulation: str


def emulation_from_props(props: dict[str, str]) -> Emulation:
    """Whether the "phone" is an emulator and how it runs code. Android Studio's images set
    ro.kernel.qemu (older) or ro.boot.qemu (newer) to 1; pocketbench's emulated phone adds
    ro.pocketbench.emulation (e.g. "qemu-user aarch64 on x86_64")."""
    emulated = "1" in (props.get("ro.kernel.qemu"), props.get("ro.boot.qemu"))
    how = props.get("ro.pocketbench.emulation", "")
    if emulated and not how:
        how = "Android emulator"
    return {"emulated": emulated or bool(how), "emulation": how}


@dataclass(frozen=True)
class Cluster:
    cpus: tuple[int, ...]
    max_khz: int


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """Kernel CPU lists: "4 5 6 7" (related_cpus) or "0-3,6" (online) → (0, 1, 2, 3, 6)."""
    cpus: list[int] = []
    for part in re.split(r"[\s,]+", text.strip()):
        if not part:
            continue
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise ValueError(f"not a CPU list: {text!r}")
        cpus.extend(range(int(low), int(high or low) + 1))
    return tuple(sorted(set(cpus)))


def parse_clusters(text: str) -> list[Cluster]:
    """PROBE_CLUSTERS output → clusters grouped by cpuinfo_max_freq, slowest first.

    Policies sharing a max frequency are one cluster (some kernels give every CPU its own policy)."""
    by_freq: dict[int, set[int]] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 3 or not parts[2].strip().isdigit():
            continue
        try:
            cpus = parse_cpu_list(parts[1])
        except ValueError:
            continue
        by_freq.setdefault(int(parts[2]), set()).update(cpus)
    return [Cluster(tuple(sorted(cpus)), freq) for freq, cpus in sorted(by_freq.items()) if cpus]


def big_cores(clusters: list[Cluster]) -> tuple[int, ...]:
    """The CPUs of the fastest cluster (prime + big when one frequency covers both)."""
    return clusters[-1].cpus if clusters else ()


def cpu_mask(cpus: tuple[int, ...]) -> str:
    """taskset's hex mask for `cpus` (toybox and util-linux both take it without 0x)."""
    return format(sum(1 << c for c in cpus), "x") if cpus else ""


def describe_clusters(clusters: list[Cluster]) -> str:
    """ "4×1.80 GHz + 4×2.85 GHz" — slowest first, as spec sheets write it."""
    return " + ".join(f"{len(c.cpus)}×{c.max_khz / 1e6:.2f} GHz" for c in clusters)


def parse_battery(text: str) -> tuple[str, str]:
    """PROBE_BATTERY output → (status, capacity %); empty strings where the phone has none."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    status = lines[0] if lines and not lines[0].isdigit() else ""
    capacity = next((line for line in lines if line.isdigit()), "")
    return status, capacity
