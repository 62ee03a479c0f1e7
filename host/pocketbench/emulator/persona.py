"""Which CPU the emulated phone claims to have, and how its executables run.

The x86_64 persona (default on an x86_64 host) runs programs natively, like Android
Studio's x86_64 emulator images. The arm64-v8a persona on an x86_64 host runs aarch64
programs through qemu-user, registered in a binfmt_misc instance private to the phone's
user namespace; the host's aarch64 libraries are hidden so only self-contained bundles run,
as on a phone. Either way the phone advertises that it is an emulator (`ro.kernel.qemu=1`,
as Android Studio's images do, and `ro.pocketbench.emulation` saying how), so its
timings are never taken for a phone's.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from pocketbench.emulator.sysfs_script import Cluster
from pocketbench.errors import PocketbenchError

ABIS = ("x86_64", "arm64-v8a")
_HOST_ABI = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64-v8a", "arm64": "arm64-v8a"}

# binfmt_misc rule for 64-bit little-endian aarch64 ELF executables and shared objects
# (e_machine 0xb7), as qemu's own qemu-binfmt-conf.sh writes it; the kernel decodes \x.
AARCH64_MAGIC = r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00"
AARCH64_MASK = r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"
# Host folders holding aarch64 system libraries (Debian's cross and multiarch packages,
# qemu's default sysroot): hidden inside the phone, which has none of them.
AARCH64_HOST_LIBS = (
    "/usr/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/etc/qemu-binfmt/aarch64",
)
# SME makes qemu 7.2's aarch64 `max` CPU crash XNNPACK's probes (device_runner/README.md).
QEMU_CPU = "max,sme=off"

# Tensor G3 (Pixel 8): Cortex-A510 / A715 / X3 at their shipping clocks.
ARM64_CORES = (
    ("Cortex-A510", 0xD46, 1_704_000, 256),
    ("Cortex-A715", 0xD4D, 2_367_000, 720),
    ("Cortex-X3", 0xD4E, 2_911_000, 1024),
)
ARM64_FEATURES = "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"


MAX_CLUSTERS = len(ARM64_CORES)


# The phone's taskset: its CPU numbers (a --clusters layout may have more than this computer) are
# mapped onto this computer's CPUs (phone CPU i runs on host CPU list[i mod n]) before util-linux's
# taskset pins the command; toybox's other forms (-p, -a) go through unmapped.
TASKSET = """#!/bin/sh
host="{host_cpus}"
case "$1" in -*|"") exec /usr/bin/taskset "$@" ;; esac
mask=$((0x$1)); shift
n=0; for c in $host; do n=$((n + 1)); done
out=0; i=0
while [ "$mask" -ne 0 ]; do
  if [ $((mask & 1)) -eq 1 ]; then
    j=$((i % n)); k=0
    for c in $host; do [ $k -eq $j ] && out=$((out | (1 << c))); k=$((k + 1)); done
  fi
  mask=$((mask >> 1)); i=$((i + 1))
done
exec /usr/bin/taskset "$(printf %x "$out")" "$@"
"""


def _cores(clusters: int) -> tuple[tuple[str, int, int, int], ...]:
    """Core types for 1 (prime), 2 (little + prime) or 3 clusters, slowest first."""
    return {1: ARM64_CORES[2:], 2: (ARM64_CORES[0], ARM64_CORES[2])}.get(clusters, ARM64_CORES)


def parse_layout(text: str) -> tuple[int, ...]:
    """`--clusters 4,3,1` → (4, 3, 1): CPUs per cluster, slowest first; one clear error otherwise."""
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() and int(part) > 0 for part in parts) or not 1 <= len(parts) <= MAX_CLUSTERS:
        raise PocketbenchError(
            f"--clusters {text!r}: give 1 to {MAX_CLUSTERS} CPU counts, slowest cluster first, e.g. 4,3,1"
        )
    if sum(int(part) for part in parts) > 64:
        raise PocketbenchError(f"--clusters {text!r}: at most 64 CPUs (a taskset mask of one word)")
    return tuple(int(part) for part in parts)


def host_cpus() -> list[int]:
    """The CPUs this process may run on: where the phone's CPUs are mapped."""
    return sorted(os.sched_getaffinity(0))


def host_abi() -> str:
    machine = platform.machine().lower()
    return _HOST_ABI.get(machine, machine)


@dataclass(frozen=True)
class Persona:
    """The phone's ABI and, when it is not the host's, the qemu-user that runs it."""

    abi: str
    interpreter: str = ""  # qemu-user binary registered in the private binfmt_misc ("" native)
    # CPUs per cluster, slowest first (--clusters 4,3,1); () keeps the layout over the host's CPUs.
    layout: tuple[int, ...] = ()
    seccomp: str = ""  # "android-app": programs under /data run under Android's app filter (seccomp.py)

    @property
    def translated(self) -> bool:
        return bool(self.interpreter)

    @property
    def emulation(self) -> str:
        """How this phone's timings come about, for `ro.pocketbench.emulation` and the rows."""
        machine = platform.machine()
        how = f"qemu-user {self.qemu_arch} on {machine}" if self.translated else f"native {machine} (host CPU)"
        if self.layout:
            how += f"; clusters {','.join(map(str, self.layout))} mapped onto this computer's {len(host_cpus())} CPUs"
        return how

    @property
    def qemu_arch(self) -> str:
        return "aarch64" if self.abi == "arm64-v8a" else self.abi

    def props(self) -> dict[str, str]:
        return {
            "ro.product.cpu.abi": self.abi,
            "ro.product.cpu.abilist": self.abi,  # 64-bit only, like a Pixel 8; no native bridge
            "ro.kernel.qemu": "1",  # what Android Studio's emulator images say
            "ro.boot.qemu": "1",
            "ro.pocketbench.emulation": self.emulation,
        }

    def binfmt_rule(self) -> str:
        """The line written to binfmt_misc's register file (flag F: the interpreter is opened
        now, so it keeps working after the phone's root changes)."""
        return f":pocketbench-{self.qemu_arch}:M::{AARCH64_MAGIC}:{AARCH64_MASK}:{self.interpreter}:F"

    def hidden_paths(self) -> list[str]:
        """Host paths with this ABI's system libraries, covered by an empty folder in the phone."""
        if not self.translated:
            return []
        # Real paths: the phone's / holds the host's top-level symlinks (/lib -> usr/lib).
        return sorted({os.path.realpath(path) for path in AARCH64_HOST_LIBS if os.path.isdir(path)})

    def environment(self) -> dict[str, str]:
        return {"QEMU_CPU": QEMU_CPU} if self.translated else {}

    def clusters(self, cpu_count: int | None = None) -> tuple[Cluster, ...] | None:
        """The phone's clusters: with a `layout`, that many CPUs (the phone's taskset maps them onto
        this host's, sandbox.TASKSET); else an arm64 phone's little/big(/prime) layout over the
        host's real CPUs; None keeps sysfs_script's default layout."""
        layout: list[tuple[int, ...]]
        if self.layout:
            starts = [sum(self.layout[:i]) for i in range(len(self.layout))]
            layout = [tuple(range(start, start + size)) for start, size in zip(starts, self.layout, strict=True)]
            return tuple(
                Cluster(cpus, max_khz, capacity=capacity)
                for cpus, (_, _, max_khz, capacity) in zip(layout, _cores(len(layout)), strict=True)
            )
        if self.abi != "arm64-v8a":
            return None
        n = cpu_count or os.cpu_count() or 1
        if n <= 2:
            layout = [(cpu,) for cpu in range(n)]
        else:
            layout = [tuple(range(n // 2)), tuple(range(n // 2, n - 1)), (n - 1,)]
        return tuple(
            Cluster(cpus, max_khz, capacity=capacity)
            for cpus, (_, _, max_khz, capacity) in zip(layout, _cores(len(layout)), strict=True)
        )

    def taskset_script(self) -> str:
        """The phone's /system/bin/taskset, mapping its CPUs onto this host's."""
        return TASKSET.format(host_cpus=" ".join(map(str, host_cpus())))

    def cpuinfo(self) -> str | None:
        """/proc/cpuinfo as an arm64 kernel writes it (None: the host's own is right)."""
        clusters = self.clusters()
        if clusters is None:
            return None
        blocks = []
        for cluster, (_, part, _, _) in zip(clusters, _cores(len(clusters)), strict=True):
            for cpu in cluster.cpus:
                blocks.append(
                    f"processor\t: {cpu}\nBogoMIPS\t: 49.15\nFeatures\t: {ARM64_FEATURES}\n"
                    f"CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x1\n"
                    f"CPU part\t: 0x{part:03x}\nCPU revision\t: 1\n"
                )
        return "\n".join(blocks) + "\n"


_PROP_KEY = re.compile(r"[A-Za-z0-9._-]+")
_GETPROP_LINE = re.compile(r"^\[([^\]]*)\]: \[(.*)\]$")


def read_props(path: Path) -> dict[str, str]:
    """getprop overrides from a file: `key=value` lines (build.prop) or `[key]: [value]` lines
    (`adb shell getprop` output); blank lines and `#` comments are skipped."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise PocketbenchError(f"--props {path}: cannot read it ({exc})") from None
    props = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        found = _GETPROP_LINE.match(line)
        key, value = found.groups() if found else (line.partition("=")[0], line.partition("=")[2])
        if not _PROP_KEY.fullmatch(key.strip()) or (not found and "=" not in line):
            raise PocketbenchError(
                f"--props {path}:{number}: {raw[:60]!r} is not a property line: write key=value"
                " (letters, digits, '.', '_', '-' in the key) or getprop's [key]: [value]"
            )
        props[key.strip()] = value.strip()
    return props


def persona_for(abi: str | None, layout: tuple[int, ...] = (), seccomp: str = "") -> Persona:
    """The persona for `abi` (None: this host's own ABI), its CPU `layout` and `seccomp` filter;
    one clear error when it cannot run."""
    from pocketbench.emulator.seccomp import SECCOMP_PERSONAS

    native = host_abi()
    wanted = abi or native
    if wanted not in ABIS:
        raise PocketbenchError(f"--abi {wanted!r} is not an emulated phone ABI; pick one of {', '.join(ABIS)}")
    if seccomp and seccomp not in SECCOMP_PERSONAS:
        raise PocketbenchError(f"--seccomp {seccomp!r}: the one seccomp persona is {', '.join(SECCOMP_PERSONAS)}")
    if seccomp and wanted != "x86_64":
        raise PocketbenchError(
            "--seccomp needs the x86_64 phone: under qemu-user a filter would judge qemu's syscalls, not the runner's"
        )
    if wanted == native:
        return Persona(wanted, layout=layout, seccomp=seccomp)
    if wanted == "arm64-v8a" and native == "x86_64":
        qemu = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")
        if qemu is None:
            raise PocketbenchError(
                "the arm64-v8a phone runs aarch64 programs with qemu-user: install it"
                " (`apt-get install qemu-user`, part of `just system-deps`)"
            )
        return Persona(wanted, interpreter=os.path.realpath(qemu), layout=layout)
    raise PocketbenchError(f"an {wanted} phone cannot be emulated on a {native} host; use --abi {native}")
