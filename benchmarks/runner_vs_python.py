"""Native pocket_runner vs ExecuTorch's Python runtime: MobileNetV2 fp32 and int8, same .pte.

Issue 3's goal: the runner adds < 3 % to the steady-state p50 of the Python runtime's `execute`.
Both backends run the same .pte with the same thread count, in interleaved rounds (runner first in
even rounds, Python first in odd ones) so drift on a shared machine hits both alike. Every round is
a fresh process doing 5 warm-up and N timed executes; p50 is over all timed samples of a backend,
and the per-round ratios show the spread. Writes its section of benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/runner_vs_python.py [--rounds 6] [--iterations 100] [--threads N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
from pocketbench import tensorfile
from pocketbench.compress.recipe import parse_variant
from pocketbench.devices.base import BenchJob, RunnerReport
from pocketbench.devices.local import PYTHON_BACKEND, LocalDevice, parse_cpuinfo
from pocketbench.devices.native_runner import BACKEND as NATIVE_BACKEND
from pocketbench.devices.native_runner import find_runner
from pocketbench.export import build_artifact
from pocketbench.registry import resolve

RESULTS = Path(__file__).parent / "RESULTS.md"
START, END = "<!-- runner_vs_python:start -->", "<!-- runner_vs_python:end -->"
MODEL, VARIANTS, GOAL = "mobilenet_v2", ("fp32", "int8"), 0.03


def measure(variant: str, pte: Path, inputs: Path, args: argparse.Namespace) -> dict[str, object]:
    devices = {NATIVE_BACKEND: LocalDevice(backend=NATIVE_BACKEND), PYTHON_BACKEND: LocalDevice(backend=PYTHON_BACKEND)}
    job = BenchJob(pte=pte, inputs=inputs, warmup=5, iterations=args.iterations, threads=args.threads)
    samples: dict[str, list[int]] = {name: [] for name in devices}
    reports: dict[str, list[RunnerReport]] = {name: [] for name in devices}
    ratios = []
    for round_index in range(args.rounds):
        order = list(devices) if round_index % 2 == 0 else list(reversed(devices))
        p50 = {}
        for name in order:
            report = devices[name].benchmark(job)
            if not report.ok:
                raise SystemExit(f"{variant} {name}: {report.status}: {report.error}")
            samples[name] += report.iterations_ns
            reports[name].append(report)
            p50[name] = statistics.median(report.iterations_ns)
        ratios.append(p50[NATIVE_BACKEND] / p50[PYTHON_BACKEND])
        print(f"{variant} round {round_index + 1}: runner/python = {ratios[-1]:.3f}", flush=True)
    native, python = (statistics.median(samples[n]) / 1e6 for n in (NATIVE_BACKEND, PYTHON_BACKEND))
    return {
        "variant": variant,
        "threads": reports[NATIVE_BACKEND][0].threads,
        "python_threads": reports[PYTHON_BACKEND][0].threads,
        "native_p50": native,
        "python_p50": python,
        "ratio": native / python,
        "round_ratios": ratios,
        "native_first": statistics.median(r.first_inference_ms or 0 for r in reports[NATIVE_BACKEND]),
        "python_first": statistics.median(r.first_inference_ms or 0 for r in reports[PYTHON_BACKEND]),
        "native_load": statistics.median(r.load_ms or 0 for r in reports[NATIVE_BACKEND]),
        "python_load": statistics.median(r.load_ms or 0 for r in reports[PYTHON_BACKEND]),
        "native_rss": max(r.peak_rss_kb or 0 for r in reports[NATIVE_BACKEND]) / 1024,
        "python_rss": max(r.peak_rss_kb or 0 for r in reports[PYTHON_BACKEND]) / 1024,
        "samples": len(samples[NATIVE_BACKEND]),
    }


def render(rows: list[dict[str, object]], args: argparse.Namespace) -> str:
    try:
        cpu, features = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        cpu, features = platform.processor(), []
    lines = [
        START,
        "## Native runner vs Python runtime (MobileNetV2, same .pte)",
        "",
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC · {cpu} ({os.cpu_count()} cores; {' '.join(features)}) · "
        f"{platform.system()} {platform.release()} · executorch {metadata.version('executorch')} · "
        f"{args.rounds} interleaved rounds × {args.iterations} timed executes per backend (5 warm-up each)",
        "",
        "| variant | threads | runner p50 ms | python p50 ms | runner vs python | per-round ratio (min–max) "
        "| first inference ms (runner / python) | load ms (runner / python) | peak RSS MB (runner / python) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rounds = r["round_ratios"]
        lines.append(
            f"| {r['variant']} | {r['threads']} | {r['native_p50']:.3f} | {r['python_p50']:.3f} "
            f"| {100 * (r['ratio'] - 1):+.1f} % | {min(rounds):.3f}–{max(rounds):.3f} "
            f"| {r['native_first']:.2f} / {r['python_first']:.2f} | {r['native_load']:.1f} / {r['python_load']:.1f} "
            f"| {r['native_rss']:.0f} / {r['python_rss']:.0f} |"
        )
    verdict = all(r["ratio"] < 1 + GOAL for r in rows)
    lines += [
        "",
        f"Goal (runner adds < {100 * GOAL:.0f} % to the p50): **{'met' if verdict else 'NOT met'}**. "
        "Both backends time only the execute call; the Python figure also carries pybind's input "
        "and output conversion, which the runner does not pay. Peak RSS is each process's VmHWM "
        "(the Python process holds torch and the whole executorch package).",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_section(section: str) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + section.rstrip("\n") + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if find_runner() is None:
        raise SystemExit("pocket_runner is not built: run `just build-runner` first")
    spec = resolve(MODEL)
    bundle = spec.load()
    rows = []
    with tempfile.TemporaryDirectory(prefix="pocketbench-bench-") as scratch:
        inputs = Path(scratch) / "inputs.bin"
        tensorfile.write(inputs, [[np.ascontiguousarray(t.numpy()) for t in bundle.example_inputs]])
        for variant in VARIANTS:
            artifact = build_artifact(spec, bundle, parse_variant(variant))
            rows.append(measure(variant, artifact.path, inputs, args))
    section = render(rows, args)
    write_section(section)
    print(section)


if __name__ == "__main__":
    main()
