"""Krishnamoorthi's quantization whitepaper (arXiv 1806.08342), reproduced in direction with the
trained mobilenet_v2 → the `whitepaper` section of benchmarks/RESULTS.md.

The paper's claims for MobileNets, on ImageNet: post-training int8 with per-channel weights and
per-layer (per-tensor) activations stays within 2 % of float; per-layer weights fail badly
(depthwise convolutions whose channels have widely different weight ranges after batch-norm
folding); quantization-aware training closes the gap. Here every variant goes through the real
pipeline (PT2E quantization, ExecuTorch + XNNPACK, the local device) and is scored on the
device's outputs for the first 100 held-out digits (as `just bench` scores it). The run itself
is kept in results/ like any other.
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import pandas as pd
from _results_md import write_section
from pocketbench.devices.local import LocalDevice
from pocketbench.export import versions
from pocketbench.progress import RichReporter
from pocketbench.results import RunStore, add_relative_columns
from pocketbench.sweep import BenchSettings, run_sweep
from pocketbench_models import mobilenet_v2
from rich.console import Console

MODEL = "mobilenet_v2"  # scored on its first 100 held-out digits, as `just bench` does
VARIANTS = [
    "fp32",
    "int8",
    "int8-per-tensor",
    "int8-meanstd",
    "int8-qat",
]
# What each variant is, in the paper's terms.
SCHEME = {
    "fp32": "float",
    "int8": "post-training: per-channel weights, per-layer activations (min/max)",
    "int8-per-tensor": "post-training: per-layer weights and activations (min/max)",
    "int8-meanstd": "post-training, per-channel, ranges mean ± 2σ (the seed's rule; not in the paper)",
    "int8-qat": "quantization-aware training, per-channel weights (50 steps)",
}
# The paper's finding for each scheme on MobileNets (its Tables 2–5 and section 3).
PAPER = {
    "fp32": "baseline",
    "int8": "within 2 % of float for every CNN it tests",
    "int8-per-tensor": "fails badly on MobileNets",
    "int8-meanstd": "—",
    "int8-qat": "closes the remaining gap (within ~1 % of float)",
}
SETTINGS = BenchSettings(warmup=2, iterations=10, repetitions=1)  # accuracy is the point here


def table(frame: pd.DataFrame) -> str:
    lines = [
        "| variant | scheme | held-out accuracy (Δ pts vs fp32) | top-1 agree | worst layer dB | p50 ms | paper |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, row in frame.iterrows():
        name = row["variant"]
        if row["status"] != "ok":
            lines.append(f"| {name} | {SCHEME[name]} | *{row['status']}: {row['error']}* | | | | {PAPER[name]} |")
            continue
        delta = "" if name == "fp32" else f" ({row['accuracy_vs_fp32_points']:+.1f})"
        worst = "" if pd.isna(row["layer_sqnr_min_db"]) else f"{row['layer_sqnr_min_db']:.1f}"
        lines.append(
            f"| {name} | {SCHEME[name]} | {100 * row['accuracy']:.1f}%{delta} | {100 * row['top1_agreement']:.0f}% "
            f"| {worst} | {row['latency_p50_ms']:.2f} | {PAPER[name]} |"
        )
    return "\n".join(lines)


# One image of 100 is 1 point; differences of a few points are within sampling noise.
NOISE_POINTS = 3.0
CAVEATS = (
    "Other differences from the paper: the task (10 digit classes from blurry 8×8 images, against "
    "ImageNet's 1000 classes); 100 held-out images resolve about ±3 points; the stem and "
    f"first {mobilenet_v2.FROZEN - 1} blocks keep seeded random weights (only their batch-norm statistics "
    "come from the digits), so the depthwise layers' per-channel ranges come from Kaiming initialisation "
    "and batch-norm folding rather than from ImageNet training; QAT here is 50 steps of 8 images at lr 1e-4, "
    "not a fine-tune to convergence; and the int8 kernels are XNNPACK's, with PT2E's min/max observers."
)
# What run 20261201-010332-9cd267 showed beyond the verdicts; kept with the code so that a re-run
# contradicting it is noticed when the section is read.
DIAGNOSIS = (
    "Our reading of the large post-training loss (a hypothesis, not measured layer by layer): every "
    "conv/linear layer on its own keeps ≥ 31 dB "
    "(worst layer dB), yet the whole int8 network's output SQNR is only ~10 dB. The frozen, untrained "
    "stem and early blocks produce features whose differences between digits are small against their "
    "range (like a random-weight network's outputs), and the trained blocks learned to amplify those "
    "small differences; int8 activations with one range per tensor round them away and the error "
    "compounds. QAT, which also trains the frozen layers, recovers 30+ points. So this mobilenet_v2 is "
    "more fragile under int8 than a network trained end to end (the paper's), and its post-training "
    "int8 Δ should not be read as what int8 does to a fully trained MobileNetV2; training more of the "
    "network (fewer frozen layers, or a short end-to-end fine-tune at 224×224) is the fix, at more "
    "training time."
)


def _points(frame: pd.DataFrame, variant: str) -> float | None:
    row = frame[(frame["variant"] == variant) & (frame["status"] == "ok")]
    return None if row.empty else float(row["accuracy_vs_fp32_points"].iloc[0])


def verdicts(frame: pd.DataFrame) -> str:
    """Where ours agrees with the paper and where not, decided from the measured Δ points."""
    per_channel, per_tensor = _points(frame, "int8"), _points(frame, "int8-per-tensor")
    qat = _points(frame, "int8-qat")
    lines = []
    if per_channel is not None:
        ok = per_channel >= -2.0
        lines.append(
            f"- **Per-channel post-training int8 within 2 % of float:** {'agrees' if ok else 'does not agree'} "
            f"({per_channel:+.1f} points)."
        )
    if per_channel is not None and per_tensor is not None:
        gap = per_channel - per_tensor
        if gap > NOISE_POINTS:
            verdict = "agrees in direction"
        elif gap < -NOISE_POINTS:
            verdict = "does not agree: per-layer weights did better than per-channel here"
        else:
            verdict = "does not reproduce (the difference is within noise)"
        lines.append(
            f"- **Per-layer weights much worse than per-channel on MobileNet:** {verdict} "
            f"({per_tensor:+.1f} vs {per_channel:+.1f} points)."
        )
    if qat is not None and per_channel is not None:
        if qat >= -NOISE_POINTS:
            verdict = "agrees"
        elif qat > per_channel + NOISE_POINTS:
            verdict = "agrees in direction only: QAT narrows the gap but does not close it"
        else:
            verdict = "does not agree"
        lines.append(
            f"- **QAT closes the gap:** {verdict} "
            f"({qat:+.1f} points after QAT vs {per_channel:+.1f} post-training, per-channel weights)."
        )
    return "\n".join(lines)


def main() -> None:
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    saved = [Path("results", arg) for arg in sys.argv[1:] if Path("results", arg, "results.parquet").is_file()]
    if saved:  # `whitepaper.py RUN_ID`: write the section again from a saved run, measuring nothing
        run_id, frame = saved[0].name, add_relative_columns(pd.read_parquet(saved[0] / "results.parquet"))
    else:
        store = RunStore(Path("results"))
        store.write_manifest({"benchmark": "whitepaper", "settings": SETTINGS.__dict__}, versions())
        with RichReporter(Console(stderr=True)) as reporter:
            run_sweep([MODEL], VARIANTS, [LocalDevice()], SETTINGS, store, reporter)
        run_id, frame = store.run_id, store.finish()
    meta = mobilenet_v2.trained_model(mobilenet_v2.digits_cnn.load_split())[1].meta
    body = [
        f"Run `{run_id}`: trained mobilenet_v2 (held-out accuracy {100 * meta['held_out_accuracy']:.1f}% "
        f"when cached, trained in {meta['train_seconds']:.0f} s), every variant scored by the device's own "
        f"outputs on the first {mobilenet_v2.EVAL_IMAGES} held-out digits; "
        f"backend {', '.join(sorted(set(frame['backend'].dropna())))}; "
        f"executorch {versions()['executorch']}, torch {versions()['torch']}. "
        "Regenerate with `just benchmark whitepaper`.",
        table(frame),
    ]
    body += [verdicts(frame), DIAGNOSIS, CAVEATS]
    write_section(
        "whitepaper", "Krishnamoorthi 2018 (arXiv 1806.08342) with the trained mobilenet_v2", "\n\n".join(body)
    )
    print(f"wrote the whitepaper section of benchmarks/RESULTS.md from run {run_id}")


if __name__ == "__main__":
    main()
