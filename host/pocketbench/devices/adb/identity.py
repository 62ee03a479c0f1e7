"""Pure parsers of what a phone says about itself: getprop, cpufreq policies, battery.

Text in, values out; tested on captured text in tests/data/. The shell commands that
produce the text live beside them (PROBE_*), so a capture can be regenerated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypedDict

_PROP_LINE = re.compile(r"^\[([^\]]+)\]: \[(.*)\]$")

# One command gathers every cpufreq policy:
# "<policy dir>|<related_cpus>|<cpuinfo_max_freq>|<cpu_capacity of its first CPU>".
PROBE_CLUSTERS = (
    "for p in /sys/devices/system/cpu/cpufreq/policy*; do c=${p##*policy};"
    ' echo "$p|$(cat $p/related_cpus 2>/dev/null)|$(cat $p/cpuinfo_max_freq 2>/dev/null)'
    '|$(cat /sys/devices/system/cpu/cpu$c/cpu_capacity 2>/dev/null)"; done'
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
    capacity: int | None = None  # the kernel's cpu_capacity (1024: the fastest core), when it says


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


def format_cpu_list(cpus: tuple[int, ...]) -> str:
    """(4, 5, 6, 8) → "4-6,8", as the kernel writes CPU lists."""
    runs: list[list[int]] = []
    for cpu in sorted(cpus):
        if runs and cpu == runs[-1][-1] + 1:
            runs[-1].append(cpu)
        else:
            runs.append([cpu])
    return ",".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def parse_clusters(text: str) -> list[Cluster]:
    """PROBE_CLUSTERS output → clusters grouped by capacity and cpuinfo_max_freq, slowest first.

    Policies sharing both are one cluster (some kernels give every CPU its own policy)."""
    by_speed: dict[tuple[int, int], set[int]] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) not in (3, 4) or not parts[2].strip().isdigit():
            continue
        try:
            cpus = parse_cpu_list(parts[1])
        except ValueError:
            continue
        capacity = int(parts[3]) if len(parts) == 4 and parts[3].strip().isdigit() else -1
        by_speed.setdefault((capacity, int(parts[2])), set()).update(cpus)
    return [
        Cluster(tuple(sorted(cpus)), freq, None if capacity < 0 else capacity)
        for (capacity, freq), cpus in sorted(by_speed.items())
        if cpus
    ]


# --cores: which CPUs a phone's runner is pinned to (and, unless --threads says, how many threads).
CORES_PRIME, CORES_BIG, CORES_ALL = "prime", "big", "all"
CORE_CHOICES = (CORES_PRIME, CORES_BIG, CORES_ALL)
DEFAULT_CORES = CORES_BIG
# A slowest cluster at least this share of the fastest one's capacity is no little cluster (a phone
# of big cores only, e.g. 4 × X4 + 4 × A720, uses them all).
LITTLE_BELOW = 0.5


def cluster_names(clusters: list[Cluster]) -> list[str]:
    """Each cluster's role, slowest first: `little` (the slowest, when there are two or more and it
    is much slower: LITTLE_BELOW), `prime` (the fastest, when two or more clusters are not little),
    `big` for the rest. Ranked by cpu_capacity, else by cpuinfo_max_freq."""
    if len(clusters) <= 1:
        return ["big"] * len(clusters)
    names = ["big"] * len(clusters)
    slowest, fastest = clusters[0], clusters[-1]
    if slowest.capacity is None or fastest.capacity is None or slowest.capacity < LITTLE_BELOW * fastest.capacity:
        names[0] = "little"
    if names.count("big") >= 2:
        names[-1] = "prime"
    return names


@dataclass(frozen=True)
class CorePlacement:
    """The CPUs a runner is pinned to under a --cores choice, and how that reads in a table."""

    choice: str  # prime | big | all
    cpus: tuple[int, ...]
    clusters: str  # "big 4-6 (3×2.37 GHz) + prime 7 (1×2.91 GHz)"

    @property
    def mask(self) -> str:
        return cpu_mask(self.cpus)

    @property
    def names(self) -> str:
        """The cluster names pinned, e.g. "big+prime"."""
        return "+".join(part.split(" ", 1)[0] for part in self.clusters.split(" + ")) if self.clusters else ""

    def reason(self) -> str:
        """Why this many threads, for the table's note."""
        what = {CORES_BIG: "the performance cores", CORES_PRIME: "the fastest cluster", CORES_ALL: "every core"}
        return (
            f"{what[self.choice]} ({self.clusters}; taskset {self.mask}), one thread each"
            " (--cores prime|big|all and --threads N change it)"
        )


def place_cores(clusters: list[Cluster], choice: str = DEFAULT_CORES) -> CorePlacement:
    """The CPUs `choice` picks: `big` the performance cores (every cluster but a little one: big
    and prime), `prime` the fastest cluster alone, `all` every CPU. No cpufreq: nothing pinned."""
    if choice not in CORE_CHOICES:
        raise ValueError(f"cores must be one of {', '.join(CORE_CHOICES)}, not {choice!r}")
    names = cluster_names(clusters)
    picked = list(zip(names, clusters, strict=True))
    if choice == CORES_PRIME:
        picked = picked[-1:]
    elif choice == CORES_BIG:
        picked = [(n, c) for n, c in picked if n != "little"]
    cpus = tuple(sorted(cpu for _, c in picked for cpu in c.cpus))
    described = " + ".join(
        f"{name} {format_cpu_list(c.cpus)} ({len(c.cpus)}×{c.max_khz / 1e6:.2f} GHz)" for name, c in picked
    )
    return CorePlacement(choice, cpus, described)


def big_cores(clusters: list[Cluster]) -> tuple[int, ...]:
    """The performance cores (place_cores' default)."""
    return place_cores(clusters).cpus


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
