"""This computer as a device: the default when no phone is attached."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import replace
from pathlib import Path

from pocketbench.devices.base import DeviceInfo
from pocketbench.devices.shell import local_shell
from pocketbench.errors import PocketbenchError
from pocketbench.runner import native
from pocketbench.runner.process import run_local_runner
from pocketbench.runner.report import BenchJob, RunnerReport

PYTHON_BACKEND = "python-runtime"
BACKENDS = ("auto", native.BACKEND, PYTHON_BACKEND)

# CPU features that decide whether int8 kernels can beat fp32 (recorded with every result).
INT8_FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def parse_cpuinfo(text: str) -> tuple[str, list[str]]:
    """`/proc/cpuinfo` → (CPU model name, the int8-relevant features it lists)."""
    name, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Hardware") and not name:
            name = value.strip()
        elif key in ("flags", "Features"):
            flags.update(value.split())
    return name, [f for f in INT8_FEATURES if f in flags]


class LocalDevice:
    """Runs each measurement in a fresh runner process on this computer.

    `backend="auto"` uses the native `pocket_runner` when it is built and falls back to the
    ExecuTorch Python runtime otherwise; every report names the backend that measured it.
    """

    device_id = "local"
    # Why one thread: with several, the p50 can move between runs minutes apart with every process
    # of a run agreeing (where the OS or hypervisor places the threads, which a run cannot see),
    # while one thread repeats; benchmarks/RESULTS.md, "Run-to-run stability", has the figures.
    default_threads = 1
    default_threads_reason = (
        "a computer's multi-thread timings move with where its OS or hypervisor places the threads, "
        "which a run cannot see, and one thread repeats"
    )

    def __init__(self, timeout_s: float = 600.0, backend: str = "auto") -> None:
        if backend not in BACKENDS:
            raise PocketbenchError(f"unknown local backend {backend!r}: use one of {', '.join(BACKENDS)}")
        self.timeout_s = timeout_s
        self.backend = backend

    def info(self) -> DeviceInfo:
        try:
            cpu, features = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
        except OSError:
            cpu, features = platform.processor(), []
        return DeviceInfo(
            device_id=self.device_id,
            kind="local",
            model=platform.node(),
            abi=platform.machine(),
            os=f"{platform.system()} {platform.release()}",
            cpu=cpu,
            extra={"cpu_features": " ".join(features), "cores": str(os.cpu_count() or 0)},
        )

    def runner(self) -> tuple[list[str], str]:
        """The runner command and its backend name."""
        if self.backend != PYTHON_BACKEND:
            binary = native.find_runner()
            if binary is not None:
                return [str(binary)], native.BACKEND
            if self.backend == native.BACKEND:
                raise PocketbenchError("pocket_runner is not built: run `just build-runner`")
        return [sys.executable, "-m", "pocketbench.runner.python_runtime"], PYTHON_BACKEND

    def shell(self, command: str) -> str:
        """The telemetry seam: this computer's /bin/sh (sysfs, procfs)."""
        return local_shell(command)

    def benchmark(self, job: BenchJob) -> RunnerReport:
        prefix, backend = self.runner()
        if backend == PYTHON_BACKEND:  # the stand-in has no sampler thread
            job = replace(job, sample_files=(), sample_interval_ms=0, idle_baseline_s=0.0)
        return run_local_runner(prefix, job, backend, self.timeout_s)
