"""mobilenet_v2 int8 vs fp32 on the local device, and a cold vs cached `bench`.

The cold run starts from an empty artifact cache (digits training and every export included);
the second, identical run must reuse every artifact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results_md import write_section

BENCH = [
    "bench", "--model", "digits_cnn", "--model", "mobilenet_v2",
    "--variants", "fp32,int8,int8-dynamic", "--device", "local", "--iterations", "100", "--json",
]  # fmt: skip


def timed_bench(cache: Path, results: Path) -> tuple[float, dict]:
    env = {**os.environ, "POCKETBENCH_CACHE": str(cache)}
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "pocketbench", *BENCH, "--results", str(results)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return time.perf_counter() - started, json.loads(out.stdout)


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        cache, results = Path(scratch) / "cache", Path(scratch) / "results"
        cold_s, _ = timed_bench(cache, results)
        warm_s, run = timed_bench(cache, results)
    rows = {(r["model"], r["variant"]): r for r in run["rows"]}
    reused = all(r["artifact_reused"] for r in run["rows"])
    lines = [
        "| model | variant | size | × fp32 size | p50 ms | p90 ms | speedup vs fp32 | backend |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (model, variant), r in rows.items():
        lines.append(
            f"| {model} | {variant} | {r['size_bytes'] / 1e6:.2f} MB | {r['size_ratio_vs_fp32']:.3f} | "
            f"{r['latency_p50_ms']:.3f} | {r['latency_p90_ms']:.3f} | {r['speedup_vs_fp32']:.2f}× | {r['backend']} |"
        )
    body = "\n".join(
        [
            f"`pocketbench {' '.join(BENCH)}` (100 timed iterations per cell, default threads).",
            "",
            *lines,
            "",
            f"- first run, empty cache (digits training + 6 exports + measurement): **{cold_s:.0f} s**",
            f"- second identical run: **{warm_s:.0f} s**, every artifact reused: **{reused}**",
        ]
    )
    write_section("foundation", "Foundation: local int8 vs fp32, cold and cached runs", body)
    print(body)


if __name__ == "__main__":
    main()
