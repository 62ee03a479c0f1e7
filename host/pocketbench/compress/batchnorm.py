"""Batch-norm recalibration: running statistics re-estimated for the network as it now is.

Pruning removes channels and training moves weights; the running mean and variance a batch-norm
keeps were measured on the network before either, so at inference it normalises with numbers
that belong to another network. Re-estimating them on training data, without any gradient step
(AdaBN), recovers much of a pruning loss for the price of a few forward passes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn import functional as F

from pocketbench.compress.context import Context
from pocketbench.compress.recipe import Recalibrate
from pocketbench.compress.training import Batches, logits, training_batches

BatchNorm = nn.modules.batchnorm._BatchNorm


def batch_norms(module: nn.Module) -> list[BatchNorm]:
    return [m for m in module.modules() if isinstance(m, BatchNorm) and m.track_running_stats]


def reestimate(module: nn.Module, inputs: Iterable[tuple[torch.Tensor, ...]]) -> int:
    """Replace every batch-norm's running statistics by their plain average over `inputs`.

    Everything else stays in eval mode (dropout off); returns how many batches were used.
    """
    norms = batch_norms(module)
    saved = [(m.momentum, m.training) for m in norms]
    module.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: every batch weighs the same
        m.train()
    used = 0
    try:
        with torch.no_grad():
            for batch in inputs:
                module(*batch)
                used += 1
    finally:
        for m, (momentum, training) in zip(norms, saved, strict=True):
            m.momentum = momentum
            m.train(training)
        module.eval()
    return used


def teacher_divergence(module: nn.Module, teacher: nn.Module, inputs: list[tuple[torch.Tensor, ...]]) -> float:
    """Mean KL(teacher ‖ module) of the output distributions over `inputs` (eval mode, no gradient)."""
    total = 0.0
    with torch.no_grad():
        for batch in inputs:
            student, target = logits(module.eval()(*batch)), logits(teacher.eval()(*batch))
            total += float(
                F.kl_div(F.log_softmax(student, -1), F.log_softmax(target, -1), log_target=True, reduction="batchmean")
            )
    return total / max(1, len(inputs))


def recalibrate(module: nn.Module, step: Recalibrate, ctx: Context) -> nn.Module:
    """Re-estimate batch-norm statistics (see `Recalibrate`); with `check`, keep them only where they help."""
    if not batch_norms(module):
        _record(ctx, "no batch-norm")
        return module
    inputs = _inputs(training_batches(ctx.bundle), step.batches)
    if not inputs:
        _record(ctx, "no training or calibration batches")
        return module
    before = {k: v.clone() for k, v in module.state_dict().items()}
    # The check reads batches the estimate did not use when there are enough of them.
    held = inputs[-max(1, len(inputs) // 4) :] if len(inputs) >= 4 else inputs
    fit = inputs[: len(inputs) - len(held)] if len(inputs) >= 4 else inputs
    old = teacher_divergence(module, ctx.bundle.module, held) if step.check else float("nan")
    reestimate(module, ctx.reporter.track(fit, "recalibrating batch-norm", total=len(fit)))
    if not step.check:
        _record(ctx, f"yes, on {len(fit)} batches")
        return module
    new = teacher_divergence(module, ctx.bundle.module, held)
    kept = new <= old
    if not kept:
        module.load_state_dict(before)
    _record(
        ctx,
        f"{'yes' if kept else 'no, kept the previous statistics'}: KL to the original model "
        f"{old:.3g} → {new:.3g} on {len(held)} held-back batches",
    )
    return module


def _record(ctx: Context, outcome: str) -> None:
    """One entry per recalibration in the recipe, in order (a recipe may recalibrate twice)."""
    ctx.stats.setdefault("recalibration", []).append(outcome)


def _inputs(source: Batches, count: int) -> list[tuple[torch.Tensor, ...]]:
    return [tuple(inputs) for inputs, _ in itertools.islice(source(), count)]
