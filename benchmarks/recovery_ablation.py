"""What each recovery ingredient contributes after channel pruning → `recovery_<model>` sections of
benchmarks/RESULTS.md.

For each built-in (or the ones named: `python benchmarks/recovery_ablation.py digits_cnn`), the
model is channel-pruned as its `prune50+distill` recipe does, then recovered one ingredient at a
time: nothing; batch-norm recalibration; + distillation as it was before (Adam at a constant
rate of 1e-3, batch-norm frozen at the statistics it had); + the schedule (a warm-up to the recipe's peak rate
and a cosine decay, with batch-norm trained or frozen as the recipe decides, then
recalibrated). Where the model has batch-norm, the recipe is also run with batch-norm in the mode
its `auto` rule did not choose, which is how that rule was chosen. Scores are the eager PyTorch
model's on the held-out labels (the compression_table benchmark scores the lowered `.pte` files);
seconds are wall time on this machine.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
import warnings

import torch
from _results_md import load_note, write_section
from pocketbench.compress.cost import parameter_count
from pocketbench.compress.pipeline import apply_recipe
from pocketbench.compress.recipe import ChannelPrune, Distill, Recalibrate, Recipe, Step, parse_variant
from pocketbench.compress.training import batch_norm_mode, training_batches
from pocketbench.models.registry import ModelBundle, resolve
from pocketbench.progress import RichReporter
from rich.console import Console

MODELS = ("digits_cnn", "tiny_transformer", "mobilenet_v2")


def rows_for(bundle: ModelBundle) -> list[tuple[str, tuple[Step, ...]]]:
    """The ablation's recipes, built from the model's own `prune50+distill` steps."""
    steps = parse_variant("prune50+distill").steps
    prune = next(s for s in steps if isinstance(s, ChannelPrune))
    distill = next(s for s in steps if isinstance(s, Distill))
    before = dataclasses.replace(distill, schedule="constant", warmup=0.0, batch_norm="frozen", lr=1e-3)
    rows: list[tuple[str, tuple[Step, ...]]] = [
        ("none (pruned only)", (prune,)),
        ("recalibration", (prune, Recalibrate())),
        ("+ distillation (constant rate, batch-norm frozen)", (prune, Recalibrate(), before)),
        (f"+ schedule (warm-up + cosine, batch-norm {distill.batch_norm}): the recipe", steps),
    ]
    if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in bundle.module.modules()):
        first = next(iter(training_batches(bundle)()))
        chosen = batch_norm_mode(distill, int(first[0][0].shape[0]))
        for mode in {"train", "frozen"} - {chosen}:  # the recipe's row is already the other one
            rows.append(
                (
                    f"  same, batch-norm {mode}",
                    (prune, Recalibrate(), dataclasses.replace(distill, batch_norm=mode), Recalibrate()),
                )
            )
    return rows


def evaluate(bundle: ModelBundle, module: torch.nn.Module) -> tuple[float, float]:
    """(held-out accuracy, top-1 agreement with the fp32 model)."""
    with torch.no_grad():
        outputs = [module(*inputs) for inputs in bundle.eval_inputs]
        reference = [bundle.module(*inputs) for inputs in bundle.eval_inputs]
    agree = sum(int(o.argmax() == r.argmax()) for o, r in zip(outputs, reference, strict=True)) / len(outputs)
    score = bundle.score(outputs) if bundle.score else float("nan")
    return score, agree


def ablate(model: str, reporter: RichReporter) -> str:
    bundle = resolve(model).load()
    fp32, _ = evaluate(bundle, bundle.module)
    lines = [
        "| recovery | held-out accuracy (Δ pts) | top-1 agree with fp32 | params | seconds |",
        "|---|---|---|---|---|",
        f"| fp32 (unpruned) | {100 * fp32:.1f}% | 100% | {parameter_count(bundle.module) / 1e3:.0f} k | |",
    ]
    notes = []
    for label, steps in rows_for(bundle):
        started = time.perf_counter()
        result = apply_recipe(bundle, Recipe(label, steps), reporter)
        seconds = time.perf_counter() - started
        accuracy, agree = evaluate(bundle, result.module)
        lines.append(
            f"| {label} | {100 * accuracy:.1f}% ({100 * (accuracy - fp32):+.1f}) | {100 * agree:.0f}% "
            f"| {result.stats['params'] / 1e3:.0f} k | {seconds:.0f} |"
        )
        if "distill_batch_norm" in result.stats and label.startswith("+ schedule"):
            notes.append(f'The recipe\'s `batch_norm = "auto"` chose {result.stats["distill_batch_norm"]} here.')
    recipe = parse_variant("prune50+distill")
    described = "; ".join(
        f"{type(s).__name__}({', '.join(f'{k}={v!r}' for k, v in s.to_dict()['_data'].items() if v not in ('', {}))})"
        for s in recipe.steps
    )
    return "\n".join([f"`prune50+distill` = {described}.", "", *lines, "", *notes])


def _described(step: Step) -> str:
    fields = ", ".join(f"{k}={v!r}" for k, v in step.to_dict()["_data"].items() if v not in ("", {}))
    return f"{type(step).__name__}({fields})"


def main() -> None:
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    chosen = [arg for arg in sys.argv[1:] if arg in MODELS] or list(MODELS)
    with RichReporter(Console(stderr=True)) as reporter:
        for model in chosen:
            load_before = os.getloadavg()[0]
            body = ablate(model, reporter)
            note = load_note(load_before, os.getloadavg()[0])
            write_section(
                f"recovery_{model}",
                f"Recovery after channel pruning, ingredient by ingredient: {model}",
                f"{__doc__.split(chr(10) + chr(10))[1].replace(chr(10), ' ')}\n\nRegenerate with "
                f"`just benchmark recovery_ablation` (or `python benchmarks/recovery_ablation.py {model}`). "
                f"{note}\n\n{body}",
            )
            print(f"wrote the recovery_{model} section of benchmarks/RESULTS.md", flush=True)


if __name__ == "__main__":
    main()
