"""How fast the results store writes cells and history and reports read them back.

The rows are synthetic (no model runs): this measures the store and the renderers at a scale a
team reaches after months of CI (runs × cells × raw samples), not a device.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from _results_md import write_section
from pocketbench.report.write import write_report
from pocketbench.results.history import load_history
from pocketbench.results.store import RunStore, load_run

RUNS, MODELS, VARIANTS, SAMPLES = 100, ["digits_cnn", "mobilenet_v2"], ["fp32", "int8", "int8-dynamic"], 200


def write_runs(root: Path) -> list[float]:
    """RUNS runs of MODELS × VARIANTS cells on one device; returns each cell write's seconds."""
    rng = random.Random(8)
    seconds = []
    for r in range(RUNS):
        store = RunStore(root, run_id=f"20260101-{r:06d}-bench0")
        store.write_manifest({"models": MODELS, "variants": VARIANTS}, {"pocketbench": "benchmark"})
        for model in MODELS:
            for variant in VARIANTS:
                samples = sorted(rng.lognormvariate(0, 0.1) * (1 + VARIANTS.index(variant)) for _ in range(SAMPLES))
                row = {
                    "model": model,
                    "variant": variant,
                    "device": "local",
                    "status": "ok",
                    "latency_p50_ms": samples[SAMPLES // 2],
                    "latency_samples_ms": samples,
                    "accuracy": 0.9,
                    "size_bytes": 1_000_000 // (1 + VARIANTS.index(variant)),
                    "peak_rss_kb": 400_000,
                    "started_at": "2026-01-01T00:00:00+00:00",
                }
                started = time.perf_counter()
                store.write_cell(row)
                seconds.append(time.perf_counter() - started)
        store.finish()
    return seconds


def timed(function, *args):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        writes = sorted(write_runs(root))
        history_s, history = timed(load_history, root)
        latest, first = load_run("latest", root), load_run("first", root)
        html_s, html = timed(write_report, "html", latest[0], latest[1], root, first, None)
        md_s, _ = timed(write_report, "md", latest[0], latest[1], root, first, None)
    cells = RUNS * len(MODELS) * len(VARIANTS)
    body = "\n".join(
        [
            f"{RUNS} runs × {len(MODELS) * len(VARIANTS)} cells × {SAMPLES} raw samples, synthetic rows, one device.",
            "",
            "| step | time |",
            "|---|---|",
            f"| write one cell (parquet, fsync, link, dir fsync), median | {1e3 * writes[len(writes) // 2]:.1f} ms |",
            f"| write one cell, p90 | {1e3 * writes[int(len(writes) * 0.9)]:.1f} ms |",
            f"| `load_history` of all {cells} rows | {history_s:.2f} s ({len(history)} rows) |",
            f"| `report latest --compare first --format md` | {md_s:.2f} s |",
            f"| `report latest --compare first --format html` (plots + {RUNS}-run trend) | {html_s:.2f} s, "
            f"{len(html) / 1e3:.0f} KB |",
        ]
    )
    write_section("reports", "Results store, history and reports", body)
    print(body)


if __name__ == "__main__":
    main()
