"""Calibrated batches: a calibrated batch's per-call figure equals single-call timing on a long model.

mobilenet_v2 fp32 (milliseconds a call) through the native runner, PAIRS times: a process timing
single calls, then one timing batches of ≥ BATCH_MS (several calls each), interleaved so load
drift hits both. The per-call p50 of the batches over the single calls' p50 should be within 2 %.
Under load it is not: a batch of tens of ms absorbs preemptions that a median of single calls
skips (the test suite checks only a ±50 % bound for that reason), so run this on a quiet machine.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from _results_md import machine, write_section
from pocketbench.compress.recipe import parse_variant
from pocketbench.lower.export import build_artifact
from pocketbench.measure.model import load_model
from pocketbench.models.registry import resolve
from pocketbench.progress import Reporter
from pocketbench.runner.native import find_runner, run_native_runner
from pocketbench.runner.report import BenchJob

MODEL, PAIRS, ITERATIONS, BATCH_MS, GOAL = "mobilenet_v2", 8, 40, 20.0, 0.02


def main() -> None:
    runner = find_runner()
    if runner is None:
        raise SystemExit("the native runner is not built: run `just build-runner`")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        context = load_model(MODEL, Path(scratch), Reporter())
        pte = build_artifact(resolve(MODEL), context.bundle, parse_variant("fp32")).path
        job = BenchJob(pte=pte, inputs=context.inputs_file, warmup=5, iterations=ITERATIONS)
        single, batched, calls = [], [], []
        for _ in range(PAIRS):
            one = run_native_runner(runner, job, 600)
            many = run_native_runner(runner, BenchJob(**{**job.__dict__, "batch_min_ms": BATCH_MS}), 600)
            if not (one.ok and many.ok):
                raise SystemExit(f"runner failed: {one.error or many.error}")
            single.append(float(np.median(one.iterations_ns)) / 1e6)
            batched.append(float(np.median(many.iterations_ns)) / 1e6)
            calls.append(many.batch_calls)
    ratio = np.median(batched) / np.median(single)
    load_after = os.getloadavg()[0]
    loaded = max(load_before, load_after) > (os.cpu_count() or 1) / 2
    body = "\n".join(
        [
            *(["**Measured under load: not a quiet-machine figure.**", ""] if loaded else []),
            f"{MODEL} fp32 on the native runner, {PAIRS} interleaved pairs of processes: {ITERATIONS} single calls, "
            f"then {ITERATIONS} batches of ≥ {BATCH_MS:g} ms ({int(np.median(calls))} calls each).",
            "",
            "| | p50 per call, ms (median of processes) | spread of processes |",
            "|---|---|---|",
            f"| single calls | {np.median(single):.3f} | {100 * np.std(single) / np.mean(single):.1f}% |",
            f"| calibrated batches | {np.median(batched):.3f} | {100 * np.std(batched) / np.mean(batched):.1f}% |",
            "",
            f"- batched / single: {ratio:.3f} ({'meets' if abs(ratio - 1) <= GOAL else 'misses'} the ±2 % goal), "
            f"on {machine()}",
            f"- 1-minute load average {load_before:.1f} before and {load_after:.1f} after, on {os.cpu_count()} cores",
        ]
    )
    write_section("calibrated_samples", "Calibrated batches vs single calls on a long model", body)
    print(body)


if __name__ == "__main__":
    main()
