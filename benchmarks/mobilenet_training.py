"""How long the built-in mobilenet_v2 takes to train on this computer, and what it reaches →
the `mobilenet_training` section of benchmarks/RESULTS.md.

Trains it from scratch in this process (the weights cache is not read or written), with the
default schedule and torch's default threads, timed around the whole of `train` (every cycle,
the batch-norm re-estimation and the held-out scoring), the load average beside it.
"""

from __future__ import annotations

import os
import time

import torch
from _results_md import load_note, write_section
from pocketbench.progress import RichReporter, reporting_to
from pocketbench_models import digits_cnn, mobilenet_v2
from rich.console import Console


def main() -> None:
    split = digits_cnn.load_split()
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    with RichReporter(Console(stderr=True)) as reporter, reporting_to(reporter):
        _, facts = mobilenet_v2.train(split)
    seconds = time.monotonic() - started
    load = load_note(load_before, os.getloadavg()[0])
    steps = " then ".join(
        ", ".join(f"{epochs:g} epoch(s) at {side}×{side}" for side, epochs in stages) + f" (peak lr {lr:g})"
        for lr, stages in mobilenet_v2.CYCLES
    )
    body = (
        f"`mobilenet_v2.train` from scratch, torch {torch.__version__} with {torch.get_num_threads()} threads: "
        f"**{seconds:.0f} s** ({seconds / 60:.1f} min), held-out accuracy **{100 * facts['held_out_accuracy']:.1f} %** "
        f"on {facts['held_out_images']} digits at 224×224. Schedule: {steps}; batch-norm statistics re-estimated "
        f"at 224×224 on {facts['recalibration_images']} training digits. Regenerate with "
        f"`just benchmark mobilenet_training`. {load}"
    )
    write_section("mobilenet_training", "mobilenet_v2: training time end to end", body)
    print(f"wrote the mobilenet_training section of benchmarks/RESULTS.md ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
