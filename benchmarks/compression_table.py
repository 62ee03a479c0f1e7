"""The full compression variant table for digits_cnn, mobilenet_v2 and tiny_transformer on this
computer → the `compression` section of benchmarks/RESULTS.md.

Every variant is compressed, lowered, run by the local device and scored exactly as
`pocketbench bench` does; rows where a step does not apply say why. The run itself is kept
in results/ like any other.
"""

from __future__ import annotations

import logging
import math
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
from _results_md import RESULTS, load_note, saved_run, write_section
from pocketbench.compress.handwritten import COMPRESSION_TABLE
from pocketbench.devices.local import LocalDevice
from pocketbench.lower.export import versions
from pocketbench.measure.settings import ProtocolSettings
from pocketbench.measure.sweep import run_sweep
from pocketbench.progress import RichReporter
from pocketbench.results.pareto import pareto_marks, quality
from pocketbench.results.store import RunStore
from rich.console import Console

PLAN = COMPRESSION_TABLE
SETTINGS = ProtocolSettings(warmup=5, iterations=50)


def _num(value: Any, spec: str, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return format(value, spec) + suffix


def _size(value: Any) -> str:
    if value is None or pd.isna(value):
        return ""
    return f"{value / 1e6:.2f} MB" if value >= 1e6 else f"{value / 1e3:.0f} KB"


def _count(value: Any) -> str:
    if value is None or pd.isna(value):
        return ""
    return f"{value / 1e6:.2f} M" if value >= 1e6 else f"{value / 1e3:.0f} k"


def model_table(group: pd.DataFrame) -> str:
    label, _ = quality(group)
    marks = pareto_marks(group)
    head = (
        f"| variant | .pte (× fp32) | zipped (÷ fp32) | params | MACs (× fp32) | sparsity | p50 ms (speedup) "
        f"| {'accuracy (Δ pts)' if label == 'accuracy' else 'SQNR dB'} | top-1 agree | worst layer dB "
        "| delegated | compress s | Pareto |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for (_, row), mark in zip(group.iterrows(), marks, strict=True):
        if row["status"] != "ok":
            lines.append(f"| {row['variant']} | *{row['status']}: {row['error']}* |" + " |" * 11)
            continue
        quality_cell = (
            f"{100 * row['accuracy']:.1f}% ({row['accuracy_vs_fp32_points']:+.1f})"
            if label == "accuracy"
            else _num(row["sqnr_db"], ".1f")
        )
        cells = [
            row["variant"],
            f"{_size(row['size_bytes'])} ({row['size_ratio_vs_fp32']:.2f}×)",
            f"{_size(row['size_zipped_bytes'])} ({row['compression_ratio_vs_fp32']:.1f}×)",
            _count(row["params"]),
            f"{_count(row['macs'])} ({row['macs_ratio_vs_fp32']:.2f}×)",
            _num(100 * row["sparsity"], ".0f", "%"),
            f"{row['latency_p50_ms']:.3f} ({row['speedup_vs_fp32']:.2f}×)",
            quality_cell,
            _num(100 * row["top1_agreement"], ".0f", "%"),
            _num(row["layer_sqnr_min_db"], ".1f"),
            _num(100 * row["delegated_fraction"], ".0f", "%"),
            _num(row["compress_seconds"], ".1f"),
            mark or "",
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    notes = [f"- {row['variant']}: {row['compression_note']}" for _, row in group.iterrows() if row["compression_note"]]
    return "\n".join(lines + (["", *notes] if notes else []))


def measure(chosen: list[str]) -> tuple[str, pd.DataFrame, str]:
    """Run the plan (or the chosen models of it) → (run id, rows, the load average around it)."""
    store = RunStore(Path("results"))
    store.write_manifest({"benchmark": "compression_table", "plan": PLAN, "settings": SETTINGS.__dict__}, versions())
    load_before = os.getloadavg()[0]
    with RichReporter(Console(stderr=True)) as reporter:
        for model, variants in PLAN.items():
            if chosen and model not in chosen:
                continue
            run_sweep([model], variants, [LocalDevice()], SETTINGS, store, reporter)
    frame = store.finish()
    return store.run_id, frame, load_note(load_before, os.getloadavg()[0])


def kept_subsections(measured: set[str]) -> list[str]:
    """The current section's subsections for models this run did not measure, each saying which
    earlier run it comes from, so that measuring some models does not erase the others' figures."""
    text = RESULTS.read_text() if RESULTS.exists() else ""
    section = re.search(r"<!-- compression:start -->(.*?)<!-- compression:end -->", text, re.S)
    if section is None:
        return []
    stamp = re.search(r"_Measured (.*?) on ", section.group(1))
    run = re.search(r"^Run `([^`]+)`", section.group(1), re.M)
    origin = (
        f"_Not re-measured in the run above: from run `{run.group(1) if run else '?'}`, measured "
        f"{stamp.group(1) if stamp else 'earlier'} (that run's settings and load are in git history)._"
    )
    kept = []
    for subsection in section.group(1).split("\n### ")[1:]:
        model, _, rest = subsection.partition("\n\n")
        if model.strip() in measured or model.strip() not in PLAN:
            continue
        rest = rest.strip()
        if not rest.startswith("_Not re-measured"):
            rest = f"{origin}\n\n{rest}"
        kept.append(f"### {model.strip()}\n\n{rest}")
    return kept


def main() -> None:
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    # Model names on the command line pick models (`run_all.py compression_table` passes its own name);
    # a run id writes the section again from that saved run (an interrupted one: the cells it saved).
    saved = saved_run(sys.argv[1:])
    if saved:
        run_id, frame, notes = saved
        missing = [model for model in PLAN if model not in set(frame["model"])]
        about = [*notes, *([f"Not measured in that run: {', '.join(missing)}."] if missing else [])]
        load = " ".join([*about, "The load average of that run was not recorded here."])
    else:
        run_id, frame, load = measure([arg for arg in sys.argv[1:] if arg in PLAN])
    backend = "; ".join(
        f"{model}: {', '.join(sorted(set(group['backend'].dropna())))}"
        for model, group in frame.groupby("model", sort=False)
    )
    parts = [
        f"Run `{run_id}`: {SETTINGS.iterations} timed runs per cell after {SETTINGS.warmup} warm-up, "
        f"backends ({backend}); "
        f"executorch {versions()['executorch']}, torch {versions()['torch']}. "
        "Regenerate with `just benchmark compression_table`. " + load,
        "Columns: `.pte` size and its ratio to fp32; zipped size and fp32's zipped size divided by it "
        "(compression ratio); MACs counted with torch's flop counter; sparsity = zero conv/linear weights; "
        "worst layer dB = lowest per-layer int8 output SQNR; Pareto = optimal in quality vs latency (lat) "
        "or vs .pte size (size). Unstructured sparsity (sparse*) shrinks only the zipped file: dense XNNPACK "
        "kernels don't run faster on zeros. All three models are trained (docs/models.md) and scored on "
        "held-out labels.",
    ]
    for model, group in frame.groupby("model", sort=False):
        parts.append(f"### {model}\n\n{model_table(group)}")
    parts += kept_subsections(set(frame["model"]))
    write_section("compression", "Compression variants: size, MACs, speed and accuracy", "\n\n".join(parts))
    print(f"wrote the compression section of benchmarks/RESULTS.md from run {run_id}")


if __name__ == "__main__":
    main()
