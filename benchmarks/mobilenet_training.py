"""How long the built-in mobilenet_v2 takes to train on this computer, and what it reaches →
the `mobilenet_training` section of benchmarks/RESULTS.md.

Trains it from scratch exactly as a first `just bench` does (`cached_weights`, which times the
whole of `train`: every cycle, the batch-norm re-estimation and the held-out scoring). When the
weights cache has no weights for the current code yet, they are trained into it (so the run also
warms the cache for `just bench`); when it has, they are trained again into a temporary cache and
the real one is left as it is. The load average and the threads are written beside the figure.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from _results_md import load_note, write_section
from pocketbench.paths import cache_dir
from pocketbench.progress import RichReporter, reporting_to
from pocketbench_models import digits_cnn, mobilenet_v2
from pocketbench_models._trained import cached_weights
from rich.console import Console


def main() -> None:
    split = digits_cnn.load_split()
    key = mobilenet_v2.cache_key(split)
    cached = (cache_dir() / "weights" / f"mobilenet_v2-{key}.pt").exists()
    load_before = os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory() as scratch,
        RichReporter(Console(stderr=True)) as reporter,
        reporting_to(reporter),
    ):
        trained = cached_weights(
            "mobilenet_v2", key, lambda: mobilenet_v2.train(split), Path(scratch) if cached else None
        )
    load = load_note(load_before, os.getloadavg()[0])
    facts, seconds = trained.meta, float(trained.meta["train_seconds"])
    steps = " then ".join(
        ", ".join(f"{epochs:g} epoch(s) at {side}×{side}" for side, epochs in stages) + f" (peak lr {lr:g})"
        for lr, stages in mobilenet_v2.CYCLES
    )
    body = (
        f"`mobilenet_v2.train` from scratch, torch {torch.__version__} with {facts['threads']} thread(s): "
        f"**{seconds:.0f} s** ({seconds / 60:.1f} min), held-out accuracy **{100 * facts['held_out_accuracy']:.1f} %** "
        f"on {facts['held_out_images']} digits at 224×224. Schedule: {steps}; batch-norm statistics re-estimated "
        f"at 224×224 on {facts['recalibration_images']} training digits. Regenerate with "
        f"`just benchmark mobilenet_training`. {load}"
    )
    write_section("mobilenet_training", "mobilenet_v2: training time end to end", body)
    print(f"wrote the mobilenet_training section of benchmarks/RESULTS.md ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
