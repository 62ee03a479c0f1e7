"""Training data for steps that train, and the distillation loop (also plain fine-tuning at α = 0).

Deterministic by construction: a fixed seed, the bundle's own (seeded) batch order and CPU
kernels, so the cached artifact of a recipe is the one the recipe would rebuild.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn
from torch.nn import functional as F

from pocketbench.compress.context import Context
from pocketbench.compress.recipe import Distill, RecipeError
from pocketbench.models.registry import ModelBundle

Batches = Callable[[], Iterable[tuple[tuple[torch.Tensor, ...], torch.Tensor | None]]]


def labelled_batches(bundle: ModelBundle) -> Batches | None:
    """The bundle's training batches when they carry real labels, else None."""
    if bundle.train_batches is None:
        return None
    first = next(iter(bundle.train_batches()), None)
    return bundle.train_batches if first is not None and first[1] is not None else None


def training_batches(bundle: ModelBundle) -> Batches:
    """Training batches (labels may be None); without any, the calibration inputs, unlabelled."""
    if bundle.train_batches is not None:
        return bundle.train_batches

    def unlabelled() -> Iterator[tuple[tuple[torch.Tensor, ...], None]]:
        for inputs in bundle.calibration():
            yield tuple(inputs), None

    return unlabelled


def logits(output: object) -> torch.Tensor:
    """The first output, as (samples, classes) so the loss reads the last dim as classes."""
    tensor = output[0] if isinstance(output, (tuple, list)) else output
    if not isinstance(tensor, torch.Tensor) or tensor.dim() == 0:
        raise RecipeError(f"training needs a model whose first output is a logits tensor, got {type(tensor).__name__}")
    return tensor.reshape(-1, tensor.shape[-1])


def distillation_loss(
    student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor | None, temperature: float, alpha: float
) -> torch.Tensor:
    """α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) + (1 − α)·CE(z_s, y); soft term only without labels.

    The T² keeps the soft term's gradients on the same scale as CE's whatever T (Hinton et al.).
    """
    soft = F.kl_div(
        F.log_softmax(student / temperature, dim=-1), F.softmax(teacher / temperature, dim=-1), reduction="batchmean"
    ) * (temperature**2)
    if labels is None:
        return soft
    return alpha * soft + (1 - alpha) * F.cross_entropy(student, labels.reshape(-1))


def apply_masks(module: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Keep pruned weights at zero (training would otherwise regrow them)."""
    if not masks:
        return
    params = dict(module.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].mul_(mask)


def _student(module: nn.Module, step: Distill) -> nn.Module:
    if not step.student:
        return module
    from pocketbench.models.registry import resolve

    return copy.deepcopy(resolve(step.student).load().module)


def _freeze_batchnorm(module: nn.Module) -> None:
    """Batch-norm keeps the teacher's statistics: small or unlabelled batches would skew them."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def distill(module: nn.Module, step: Distill, ctx: Context) -> nn.Module:
    """Train the student on the teacher's soft targets (and real labels where there are any)."""
    source = training_batches(ctx.bundle)
    teacher = ctx.bundle.module.eval()
    torch.manual_seed(step.seed)
    student = _student(module, step)
    if step.student and ctx.masks:
        raise RecipeError("distill: a separate student architecture cannot keep the pruning masks; prune after it")
    optimizer = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=step.lr)
    batches_per_epoch = sum(1 for _ in source())
    if batches_per_epoch == 0:
        raise RecipeError("distill: the model gave no training or calibration batches")
    labelled = labelled_batches(ctx.bundle) is not None
    title = "distilling" if step.alpha > 0 or not labelled else "fine-tuning"
    total = batches_per_epoch * step.epochs
    epochs = (batch for _ in range(step.epochs) for batch in source())
    student.train()
    _freeze_batchnorm(student)
    for inputs, labels in ctx.reporter.track(epochs, f"{title} ({step.epochs} epochs)", total=total):
        with torch.no_grad():
            target = logits(teacher(*inputs))
        loss = distillation_loss(logits(student(*inputs)), target, labels, step.temperature, step.alpha)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        apply_masks(student, ctx.masks)
    ctx.stats["distill_final_loss"] = round(float(loss.detach()), 5)
    return student.eval()
