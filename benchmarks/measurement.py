"""Issue 7's goal: how much the p50 wanders run to run with the default protocol on this computer.

One "run" is a whole sweep with the CLI's defaults (3 fresh runner processes × 50 iterations per
cell, variants interleaved). The sweep is repeated RUNS times; the CV of each cell's p50 across
those runs is the noise a user sees between two `pocketbench bench` calls. For contrast, the same
figure for a single runner process (what one process's p50 would give) is shown beside it, and
the whole again with one runtime thread.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _results_md import machine, write_section
from pocketbench import stats
from pocketbench.devices.local import LocalDevice
from pocketbench.results import RunStore
from pocketbench.sweep import BenchSettings, run_sweep

RUNS = 5
MODELS = ["digits_cnn", "mobilenet_v2"]
VARIANTS = ["fp32", "int8"]


def sweeps(settings: BenchSettings) -> tuple[dict, dict, dict, str]:
    """RUNS whole sweeps with `settings`: each cell's p50 per run, its first process's p50, unstable flags."""
    p50: dict[tuple[str, str], list[float]] = {}
    single: dict[tuple[str, str], list[float]] = {}
    unstable: dict[tuple[str, str], int] = {}
    energy = ""
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(RUNS):
            store = RunStore(Path(scratch))
            store.write_manifest({"benchmark": "measurement"}, {})
            run_sweep(MODELS, VARIANTS, [LocalDevice()], settings, store)
            for _, row in store.finish().iterrows():
                key = (row["model"], row["variant"])
                p50.setdefault(key, []).append(row["latency_p50_ms"])
                first = [v for v, r in zip(row["latency_samples_ms"], row["samples_repetition"], strict=True) if r == 0]
                single.setdefault(key, []).append(float(np.median(first)))
                unstable[key] = unstable.get(key, 0) + bool(row["unstable"])
                energy = row["energy_status"] or energy
    return p50, single, unstable, energy


def main() -> None:
    settings = BenchSettings()  # the CLI's defaults: 3 repetitions × 50 iterations, 5 warm-up
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    p50, single, unstable, energy = sweeps(settings)
    p50_one, _, unstable_one, _ = sweeps(BenchSettings(threads=1))
    elapsed = time.perf_counter() - started
    lines = [
        "| model | variant | p50 ms (median of runs) | run-to-run CV of p50, default protocol"
        " | same, one runner process | runs flagged unstable | p50 ms, `--threads 1` | CV of p50, `--threads 1` |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    worst = worst_one = 0.0
    for (model, variant), values in p50.items():
        key = (model, variant)
        cv, cv_one = stats.cv(values), stats.cv(p50_one[key])
        worst, worst_one = max(worst, cv), max(worst_one, cv_one)
        lines.append(
            f"| {model} | {variant} | {np.median(values):.3f} | **{100 * cv:.1f}%** | "
            f"{100 * stats.cv(single[key]):.1f}% | {unstable[key]}/{RUNS} | {np.median(p50_one[key]):.3f} | "
            f"**{100 * cv_one:.1f}%** ({unstable_one[key]}/{RUNS} unstable) |"
        )
    verdict = lambda w: "meets" if w <= 0.03 else "misses"  # noqa: E731
    body = "\n".join(
        [
            f"{RUNS} sweeps of {', '.join(MODELS)} × {', '.join(VARIANTS)} on `local` with the default protocol "
            f"({settings.repetitions} runner processes × {settings.iterations} iterations per cell, interleaved), "
            f"then {RUNS} more with `--threads 1`; {elapsed:.0f} s in all. Goal: run-to-run CV of the p50 ≤ 3 %.",
            "",
            *lines,
            "",
            f"- worst cell: {100 * worst:.1f}% with the default protocol ({verdict(worst)} the 3 % goal), "
            f"{100 * worst_one:.1f}% with `--threads 1` ({verdict(worst_one)} it), on {machine()}",
            f"- energy on this computer: {energy}",
            f"- 1-minute load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after, on "
            f"{os.cpu_count()} cores{': other jobs shared the CPU' if load_before > 1 else ''}",
            "- by default the runtime uses a thread per core; for calls of tens of µs (digits_cnn) the threadpool's "
            "hand-offs make each process settle at one of two speeds, so processes disagree; one thread does not",
        ]
    )
    write_section("measurement", "Run-to-run stability of the p50 (issue 7)", body)
    print(body)


if __name__ == "__main__":
    main()
