"""Runner bundles for Android: size, deploy time over both adb routes, launcher cost.

- Size of `device_runner/build/android-{arm64,x86_64}/`: raw, and as a gzip-compressed tar.
- Deploy time to a fresh emulated phone (first: every file pushed, verified, renamed) and again
  from a new session (cached: one `sha256sum` over the folder, nothing pushed), over adb-shell
  (`tcp:`) and Debian's adb server (`adb:`). The emulated phone's link is a local socket: these
  are lower bounds for USB (~40 MB/s on USB 2) and Wi-Fi.
- The launcher's cost on x86_64: `sh launch.sh` (loader + `--library-path`) vs the plain host
  binary, interleaved rounds: process wall time for one tiny run (start-up), and the p50 of the
  timed loop (must be unchanged: the launcher only changes how the process starts).

    .venv/bin/python benchmarks/android_bundle.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from _results_md import write_section
from pocketbench.compress.recipe import parse_variant
from pocketbench.devices.adb.deploy import Deployer
from pocketbench.devices.adb.device import open_transport
from pocketbench.devices.adb.runner_choice import BUILD, RunnerChoice
from pocketbench.devices.bundle.manifest import read_bundle
from pocketbench.emulator import start_emulator
from pocketbench.emulator.fixtures import HostAdb
from pocketbench.lower.export import build_artifact
from pocketbench.models.registry import resolve
from pocketbench.runner import tensorfile
from pocketbench.runner.native import host_build_path
from pocketbench.runner.process import run_local_runner
from pocketbench.runner.report import BenchJob

BUNDLES = {"arm64-v8a": BUILD / "android-arm64", "x86_64": BUILD / "android-x86_64"}


def gzipped_size(folder: Path) -> int:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)
    return len(gzip.compress(raw.getvalue(), compresslevel=6))


def deploy_times(abi: str, route: str, scratch: Path) -> tuple[float, float, int]:
    """(first deploy s, cached deploy s, bytes pushed first) to a fresh emulated phone."""
    choice = RunnerChoice(abi, "bundle", BUNDLES[abi])
    phone = start_emulator(root=scratch / f"phone-{abi}-{route}")
    adb = None
    try:
        if route == "adb":
            home = scratch / f"adb-home-{abi}"
            home.mkdir()
            adb = HostAdb(home)
            adb.run("start-server", check=True)
            adb.connect(phone)
            spec, port = f"adb:{phone.address}", adb.server_port
        else:
            spec, port = f"tcp:{phone.address}", None
        timings = []
        for _ in range(2):  # a fresh session each time: only the phone remembers the first push
            transport = open_transport(spec, server_port=port)
            try:
                placed = Deployer(transport, spec).ensure_runner(choice)
                timings.append((placed.seconds, placed.pushed_bytes))
            finally:
                transport.close()
        (first, pushed), (cached, again) = timings
        assert again == 0, "the second session pushed again"
        return first, cached, pushed
    finally:
        if adb is not None:
            adb.stop()
        phone.stop()


def launcher_cost(rounds: int, scratch: Path) -> list[dict[str, object]]:
    """Plain host binary vs the x86_64 bundle's launcher, interleaved, on digits_cnn fp32 and int8."""
    plain = [str(host_build_path())]
    launcher = ["sh", str(BUNDLES["x86_64"] / "launch.sh")]
    spec = resolve("digits_cnn")
    bundle = spec.load()
    rows = []
    for variant in ("fp32", "int8"):
        pte = build_artifact(spec, bundle, parse_variant(variant)).path
        inputs = scratch / "inputs.pbtf"
        tensorfile.write(inputs, [[t.numpy() for t in bundle.example_inputs]])
        tiny = BenchJob(pte=pte, inputs=inputs, warmup=0, iterations=1)
        loop = BenchJob(pte=pte, inputs=inputs, warmup=20, iterations=500)
        wall: dict[str, list[float]] = {"plain": [], "launcher": []}
        p50: dict[str, list[float]] = {"plain": [], "launcher": []}
        for index in range(rounds):
            order = [("plain", plain), ("launcher", launcher)]
            for name, prefix in order if index % 2 == 0 else reversed(order):
                started = time.perf_counter()
                report = run_local_runner(prefix, tiny, name, 120)
                wall[name].append((time.perf_counter() - started) * 1e3)
                assert report.ok, report.error
                report = run_local_runner(prefix, loop, name, 300)
                assert report.ok, report.error
                p50[name].append(statistics.median(report.iterations_ns) / 1e6)
        ratio = [b / a for a, b in zip(p50["plain"], p50["launcher"], strict=True)]
        rows.append(
            {
                "variant": variant,
                "wall": {n: statistics.median(v) for n, v in wall.items()},
                "p50": {n: statistics.median(v) for n, v in p50.items()},
                "ratio": statistics.median(ratio),
                "ratio_range": (min(ratio), max(ratio)),
            }
        )
        print(f"{variant}: {rows[-1]}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    args, _ = parser.parse_known_args()  # run_all.py passes benchmark names through
    for folder in BUNDLES.values():
        if not (folder / "manifest.json").is_file():
            raise SystemExit(f"{folder} is not built: run `just build-runner-android`")
    if shutil.which("adb") is None:
        raise SystemExit("Debian's adb is not installed: `just system-deps`")
    os.environ.setdefault("POCKETBENCH_ADB_KEY", str(Path(tempfile.gettempdir()) / "pocketbench-bench-key" / "adbkey"))
    load_before = os.getloadavg()[0]
    lines = [
        "| bundle | files | raw MB | tar.gz MB | bundle id | executorch | glibc | gcc |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for folder in BUNDLES.values():
        bundle = read_bundle(folder)
        v = bundle.versions
        sizes = f"{len(bundle.files) + 1} | {bundle.total_bytes / 1e6:.1f} | {gzipped_size(folder) / 1e6:.1f}"
        lines.append(
            f"| {folder.name} | {sizes} | `{bundle.bundle_id[:12]}` | {v['executorch']} | {v['glibc']} | {v['gcc']} |"
        )
    deploy = ["| bundle | route | first deploy s (pushed MB) | cached deploy s |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="pocketbench-bundle-bench-") as folder:
        scratch = Path(folder)
        for abi in BUNDLES:
            for route, label in (("tcp", "adb-shell (`tcp:`)"), ("adb", "Debian adb server (`adb:`)")):
                first, cached, pushed = deploy_times(abi, route, scratch)
                deploy.append(f"| {BUNDLES[abi].name} | {label} | {first:.2f} ({pushed / 1e6:.1f}) | {cached:.3f} |")
                print(deploy[-1], flush=True)
        costs = launcher_cost(args.rounds, scratch)
    launch = [
        "| digits_cnn | process wall ms, plain / launcher (1 run) | p50 ms plain / launcher (500 executes)"
        " | launcher/plain p50: median of per-round ratios (min–max) |",
        "|---|---|---|---|",
    ]
    for row in costs:
        w, p = row["wall"], row["p50"]
        low, high = row["ratio_range"]
        launch.append(
            f"| {row['variant']} | {w['plain']:.1f} / {w['launcher']:.1f} | {p['plain']:.4f} / {p['launcher']:.4f} | "
            f"{(row['ratio'] - 1) * 100:+.1f} % ({low:.2f}–{high:.2f}) |"
        )
    load_after = os.getloadavg()[0]
    qemu = subprocess.run(["qemu-aarch64", "--version"], capture_output=True, text=True, check=False).stdout.split(
        "\n"
    )[0]
    body = "\n".join(
        [
            "Sizes (raw: every file of the folder, manifest included; tar.gz: gzip -6 of a tar of the folder):",
            "",
            *lines,
            "",
            "Deploy to a fresh emulated phone over a local socket (first: every file pushed to a temp name, "
            "hash-checked, renamed; cached: a new session finds the folder and checks it with one `sha256sum`):",
            "",
            *deploy,
            "",
            f"Launcher vs plain binary on x86_64 ({args.rounds} interleaved rounds, a fresh process per run;"
            f" load average {load_before:.1f} at the start, {load_after:.1f} at the end):",
            "",
            *launch,
            "",
            "The launcher adds one `sh` and the loader's explicit start (no `ld.so.cache`) to process start-up; "
            "the timed loop is the same code in the same libraries, so its p50 must not move beyond the "
            f"per-round spread. ({qemu}; the arm64 bundle is not timed here: emulated timings mean nothing.)",
        ]
    )
    write_section("android_bundle", "Android runner bundles: size, deploy time, launcher cost", body)


if __name__ == "__main__":
    main()
