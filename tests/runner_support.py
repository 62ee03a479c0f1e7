"""Shared by the runner tests: build pocket_runner once (host and aarch64), make small real .pte files.

Builds go through the justfile recipes, so the tests exercise exactly what a user runs.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from pocketbench.atomic import exclusive
from pocketbench.compress.recipe import parse_variant
from pocketbench.devices.adb import self_check
from pocketbench.devices.bundle.manifest import MANIFEST, BundleFile, manifest_text, read_bundle, sha256_file
from pocketbench.lower.export import Artifact, build_artifact
from pocketbench.runner import tensorfile

REPO = Path(__file__).resolve().parents[1]
HOST_RUNNER = REPO / "device_runner" / "build" / "host" / "pocket_runner"
ARM64_RUNNER = REPO / "device_runner" / "build" / "arm64" / "pocket_runner"
BUNDLES = {
    "x86_64": REPO / "device_runner" / "build" / "android-x86_64",
    "arm64-v8a": REPO / "device_runner" / "build" / "android-arm64",
}
# qemu's default `max` CPU enables SME; with it, int8 outputs of qemu 7.2 (Debian 12) are wrong
# while every CPU model without SME matches x86 bit for bit (device_runner/README.md, "arm64").
QEMU_CPUS = {"neon-i8mm-sve": "max,sme=off", "neon-baseline": "cortex-a53"}
INPUT_SHAPE = self_check.INPUT_SHAPE


def _build(recipe: str, binary: Path) -> Path:
    if shutil.which("just") is None:
        pytest.skip("`just` is not on PATH: the runner is built by `just build-runner` (pip install rust-just)")
    if shutil.which("c++") is None and shutil.which("g++") is None:
        pytest.skip("no C++ compiler (c++/g++) on PATH: install g++ (`just system-deps`)")
    proc = just(recipe)
    if proc.returncode != 0 or not binary.is_file():
        pytest.fail(f"`just {recipe}` failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return binary


def just(recipe: str) -> subprocess.CompletedProcess[str]:
    """`just RECIPE` in the repository, one at a time across the test workers of this machine: they
    build (and rebuild) the same folders under device_runner/build."""
    with exclusive(REPO / "device_runner" / "build" / ".tests-build.lock"):
        return subprocess.run(["just", recipe], cwd=REPO, capture_output=True, text=True, timeout=1200, check=False)


@functools.cache
def host_runner() -> Path:
    """The host pocket_runner, built once per session with `just build-runner`."""
    return _build("build-runner", HOST_RUNNER)


@functools.cache
def arm64_runner() -> Path:
    """The linux-aarch64 pocket_runner (runs under qemu-aarch64), built once per session."""
    for tool in ("qemu-aarch64", "aarch64-linux-gnu-g++"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed: `just system-deps` installs qemu-user and g++-aarch64-linux-gnu")
    return _build("build-runner-arm64", ARM64_RUNNER)


@functools.cache
def android_bundle(abi: str = "x86_64") -> Path:
    """The runner bundle a phone with `abi` gets (`just build-runner-android-<arch>`), built once per
    session. The default emulated phone is x86_64 and runs this bundle, like an x86_64 Android image."""
    if abi == "arm64-v8a":
        arm64_runner()
    else:
        host_runner()
    recipe = {"x86_64": "build-runner-android-x86_64", "arm64-v8a": "build-runner-android-arm64"}[abi]
    return _build(recipe, BUNDLES[abi] / "manifest.json").parent


def altered_bundle(source: Path, target: Path, drop: str = "", not_executable: str = "") -> Path:
    """A copy of `source` without `drop` (and its manifest entry), or with `not_executable` unmarked:
    a consistent manifest, so the phone gets exactly this broken bundle."""
    shutil.copytree(source, target)
    bundle = read_bundle(target)
    if drop:
        (target / drop).unlink()
    files = [
        BundleFile(f.name, f.sha256, f.size, f.executable and f.name != not_executable)
        for f in bundle.files
        if f.name != drop
    ]
    (target / MANIFEST).write_text(manifest_text(bundle.abi, files, bundle.versions, {}))
    return target


@functools.cache
def tiny_ptes(cache: Path) -> dict[str, Artifact]:
    """The self-check's conv + linear net lowered through pocketbench's own export path, fp32 and
    int8 (static, per-channel)."""
    spec = self_check.selfcheck_spec()
    bundle = spec.load()
    return {v: build_artifact(spec, bundle, parse_variant(v), cache=cache) for v in ("fp32", "int8")}


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    report: dict


def run_runner(
    binary: Path, *args: str | Path, json_path: Path, qemu_cpu: str | None = None, timeout_s: float = 300
) -> Run:
    """Run pocket_runner with --json (under qemu-aarch64 as `qemu_cpu` when given) and return its
    exit code, output and parsed JSON (None if it wrote none). A sanitized build reports there."""
    import json
    import os

    qemu = ["qemu-aarch64", "-cpu", qemu_cpu, "-L", "/usr/aarch64-linux-gnu"] if qemu_cpu else []
    argv = [*qemu, str(binary), *map(str, args), "--json", str(json_path)]
    env = {**os.environ, **SANITIZER_ENV}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False, env=env)
    report = json.loads(json_path.read_text()) if json_path.exists() else None
    return Run(proc.returncode, proc.stdout, proc.stderr, report)


def input_sets(count: int, seed: int) -> list[list[np.ndarray]]:
    """`count` seeded input sets for TinyConvNet."""
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(INPUT_SHAPE).astype(np.float32)] for _ in range(count)]


def python_runtime_outputs(pte: Path, sets: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    """The same .pte run by ExecuTorch's Python runtime, one execute per input set."""
    from executorch.runtime import Runtime

    program = Runtime.get().load_program(pte)  # keep the Program alive while its Method runs
    method = program.load_method("forward")
    return [[o.numpy().copy() for o in method.execute([torch.from_numpy(t) for t in s])] for s in sets]


def write_inputs(path: Path, sets: list[list[np.ndarray]]) -> Path:
    tensorfile.write(path, sets)
    return path


# The checked build: sanitizers and fuzz targets.
ASAN_BUILD = REPO / "device_runner" / "build" / "asan"
# Any finding (overflow, use-after-free, leak, undefined behaviour) ends the process with exit 86,
# which no runner status uses, so a test that expects a status sees it fail.
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:exitcode=86:abort_on_error=0",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=86",
}


@functools.cache
def asan_build() -> Path:
    """device_runner/build/asan: the runner, unit tests and fuzz targets under ASan + UBSan (clang)."""
    if shutil.which("clang++") is None:
        pytest.skip("clang++ is not installed: `just system-deps` installs clang and libclang-rt-14-dev")
    _build("build-runner-asan", ASAN_BUILD / "pocket_runner")
    return ASAN_BUILD


def unhedged_bundle(source: Path, target: Path) -> Path:
    """A copy of `source` whose launcher leaves glibc's rseq on (the launcher before its seccomp
    hedge), with a consistent manifest."""
    shutil.copytree(source, target)
    launcher = target / "launch.sh"
    launcher.write_text("".join(line for line in launcher.read_text().splitlines(True) if "GLIBC_TUNABLES" not in line))
    bundle = read_bundle(target)
    files = [
        BundleFile(f.name, sha256_file(target / f.name), (target / f.name).stat().st_size, f.executable)
        for f in bundle.files
    ]
    (target / MANIFEST).write_text(manifest_text(bundle.abi, files, bundle.versions, {}))
    return target
