"""Spreading a channel-pruning budget over the groups by measured sensitivity.

Uniform ratios are rarely best: some groups (often the first layers, depthwise stages or a
bottleneck) lose much more of the output when pruned than others. Each group is pruned alone at
the budget ratio on a copy, its batch-norm statistics are re-estimated (as the recipe will do),
and the SQNR of the model's output against the unpruned model's is measured on training
batches — like AMC's reward, without any fine-tuning. Groups then get ratios proportional to that
SQNR (a robust group gives more), scaled so the mean ratio weighted by the parameters each group
removes equals the budget, and capped at `max_ratio`.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pocketbench import stats
from pocketbench.compress.batchnorm import reestimate
from pocketbench.compress.context import Context
from pocketbench.compress.cost import parameter_count
from pocketbench.compress.fingerprint import sources_digest, tensors_digest, weights_digest
from pocketbench.compress.recipe import ChannelPrune
from pocketbench.compress.sensitivity_store import stored_sensitivity
from pocketbench.compress.training import logits, training_batches
from pocketbench.stats import sqnr_db

# Batches that re-estimate batch-norm statistics in each trial (the measurement uses others).
TRIAL_RECALIBRATION_BATCHES = 4
# The code a stored sensitivity depends on (with pocketbench.stats): this pass, how groups are
# pruned and recalibrated, the batches and the parameter count.
_CODE = ("channel_budget.py", "prune.py", "batchnorm.py", "training.py", "cost.py", "sensitivity_store.py")


# prune.prune_groups: (module, example inputs, step, ignored layers, {group root: ratio}) → None
PruneGroups = Callable[
    [nn.Module, tuple[torch.Tensor, ...], ChannelPrune, list[nn.Module], dict[nn.Module, float]], None
]


def group_sensitivity(
    module: nn.Module,
    step: ChannelPrune,
    ctx: Context,
    roots: dict[str, nn.Module],
    ignored: list[nn.Module],
    prune_groups: PruneGroups,
) -> dict[str, tuple[float, int]]:
    """Per group root name: (output SQNR in dB with that group alone pruned at `step.ratio`,
    parameters it removes) — read from the cache when this module, data and step were measured
    before (stats: `channel_sensitivity_reused`)."""
    source = training_batches(ctx.bundle)
    batches = [tuple(x) for x, _ in itertools.islice(source(), TRIAL_RECALIBRATION_BATCHES + step.sensitivity_batches)]
    names = {m: n for n, m in module.named_modules()}
    parts = {
        "weights": weights_digest(module),
        "layout": hashlib.sha256(repr(module).encode()).hexdigest(),
        "batches": tensors_digest(t for b in batches for t in b),
        "example": tensors_digest(ctx.bundle.example_inputs),
        "step": {k: getattr(step, k) for k in ("ratio", "round_to", "max_ratio", "sensitivity_batches")},
        "recalibration_batches": TRIAL_RECALIBRATION_BATCHES,
        "groups": list(roots),
        "ignored": sorted(names[m] for m in ignored),
        "code": sources_digest([*(Path(__file__).with_name(f) for f in _CODE), Path(stats.__file__)]),
        "versions": {"torch": torch.__version__, "torch_pruning": metadata.version("torch-pruning")},
    }

    def measure_now() -> dict[str, tuple[float, int]]:
        """Prune each group alone on a copy, recalibrate, and measure the output against the module's."""
        measure, recalibrate_on = batches[-step.sensitivity_batches :], batches[: -step.sensitivity_batches] or batches
        with torch.no_grad():
            reference = [logits(module.eval()(*b)).numpy() for b in measure]
        before = parameter_count(module)
        result = {}
        for name in ctx.reporter.track(list(roots), "channel-pruning sensitivity", total=len(roots)):
            trial = copy.deepcopy(module)
            trial_named = dict(trial.named_modules())
            others = [trial_named[names[m]] for m in ignored]
            prune_groups(trial, ctx.bundle.example_inputs, step, others, {trial_named[name]: step.ratio})
            reestimate(trial, recalibrate_on)
            with torch.no_grad():
                pruned = [logits(trial.eval()(*b)).numpy() for b in measure]
            sqnr = sqnr_db(np.concatenate(reference), np.concatenate(pruned))
            result[name] = (round(float(sqnr), 2), before - parameter_count(trial))
        return result

    result, reused = stored_sensitivity(parts, list(roots), measure_now, ctx.reporter)
    ctx.stats["channel_sensitivity_reused"] = reused
    return result


def allocate(sensitivity: dict[str, tuple[float, int]], budget: float, cap: float) -> dict[str, float]:
    """Ratios ∝ max(SQNR, 0), scaled (bisection) so Σ removed·ratio / Σ removed = budget, each ≤ cap.

    `removed` is what a group gives at the budget ratio; a group that removes nothing keeps the
    budget ratio (it costs nothing either way).
    """
    names = list(sensitivity)
    tolerance = np.array([min(max(sensitivity[n][0], 0.0), 100.0) for n in names])  # inf: no change at all
    weight = np.array([float(sensitivity[n][1]) for n in names])
    if weight.sum() == 0 or tolerance.max() == 0:
        return {n: budget for n in names}

    def ratios(scale: float) -> np.ndarray:
        return np.minimum(cap, scale * tolerance)

    low, high = 0.0, cap / max(float(tolerance[tolerance > 0].min()), 1e-9)
    for _ in range(60):
        middle = (low + high) / 2
        if float((ratios(middle) * weight).sum() / weight.sum()) < budget:
            low = middle
        else:
            high = middle
    chosen = ratios(high)
    return {n: (float(r) if weight[i] > 0 else budget) for i, (n, r) in enumerate(zip(names, chosen, strict=True))}


def sensitivity_ratios(
    module: nn.Module,
    step: ChannelPrune,
    ctx: Context,
    roots: dict[str, nn.Module],
    ignored: list[nn.Module],
    prune_groups: PruneGroups,
) -> dict[str, float]:
    """Measure every group's sensitivity and spread `step.ratio` over them (stats keep both)."""
    sensitivity = group_sensitivity(module, step, ctx, roots, ignored, prune_groups)
    ctx.stats["channel_sensitivity_db"] = {name: db for name, (db, _) in sensitivity.items()}
    return allocate(sensitivity, step.ratio, step.max_ratio)
