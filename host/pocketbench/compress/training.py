"""Training data for steps that train, and the distillation loop (also plain fine-tuning at α = 0).

Deterministic by construction: a fixed seed, the bundle's own (seeded) batch order and CPU
kernels, so the cached artifact of a recipe is the one the recipe would rebuild.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn
from torch.nn import functional as F

from pocketbench.compress.context import Context, epoch_done
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


def batch_norm_mode(step: Distill, batch_size: int) -> str:
    """ "train" or "frozen": `auto` trains batch-norm only on batches big enough for their statistics."""
    if step.batch_norm != "auto":
        return step.batch_norm
    return "train" if batch_size >= Distill.MIN_BATCH_NORM_BATCH else "frozen"


def _set_batchnorm_mode(module: nn.Module, mode: str) -> None:
    """Frozen: batch-norm normalises with its running statistics and does not update them."""
    module.train()
    if mode == "frozen":
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def lr_factor(step: Distill, done: int, total: int) -> float:
    """The learning rate's multiplier after `done` of `total` steps: linear warm-up, then cosine or flat."""
    warm = round(step.warmup * total)
    if done < warm:
        return (done + 1) / (warm + 1)
    if step.schedule == "constant":
        return 1.0
    progress = (done - warm) / max(1, total - warm)
    return 0.5 * (1 + math.cos(math.pi * progress))


def _resized(inputs: tuple[torch.Tensor, ...], scale: float) -> tuple[torch.Tensor, ...]:
    """Image batches (N, C, H, W floats) resized by `scale`; other inputs as they are."""
    if scale == 1:
        return inputs
    return tuple(
        F.interpolate(t, scale_factor=scale, mode="bilinear", align_corners=False, antialias=True)
        if t.dim() == 4 and t.is_floating_point()
        else t
        for t in inputs
    )


class _Targets:
    """The teacher's outputs per training batch, computed once: most bundles give the same batches
    every epoch, and a teacher forward pass costs a third of a student step. Batches are matched by
    a digest of their inputs, so a bundle that shuffles anew each epoch is still exact."""

    def __init__(self, teacher: nn.Module) -> None:
        self.teacher = teacher
        self.cache: dict[int, tuple[bytes, torch.Tensor]] = {}

    def __call__(self, index: int, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        digest = _digest(inputs)
        hit = self.cache.get(index)
        if hit is not None and hit[0] == digest:
            return hit[1]
        with torch.no_grad():
            out = logits(self.teacher(*inputs))
        self.cache[index] = (digest, out)
        return out


def _digest(inputs: tuple[torch.Tensor, ...]) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for tensor in inputs:
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.digest()


def distill(module: nn.Module, step: Distill, ctx: Context) -> nn.Module:
    """Train the student on the teacher's soft targets (and real labels where there are any)."""
    source = training_batches(ctx.bundle)
    teacher = ctx.bundle.module.eval()
    torch.manual_seed(step.seed)
    student = _student(module, step)
    if step.student and ctx.masks:
        raise RecipeError("distill: a separate student architecture cannot keep the pruning masks; prune after it")
    first = next(iter(source()), None)
    if first is None:
        raise RecipeError("distill: the model gave no training or calibration batches")
    batches_per_epoch = sum(1 for _ in source())
    mode = batch_norm_mode(step, int(first[0][0].shape[0]))
    ctx.stats["distill_batch_norm"] = mode
    parameters = [p for p in student.parameters() if p.requires_grad]
    lr = step.lr if step.lr is not None else float(ctx.bundle.extra.get("recovery_lr", Distill.DEFAULT_LR))
    ctx.stats["distill_lr"] = lr
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=step.weight_decay)
    total = batches_per_epoch * step.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda done: lr_factor(step, done, total))
    labelled = labelled_batches(ctx.bundle) is not None
    title = "distilling" if step.alpha > 0 or not labelled else "fine-tuning"
    targets = _Targets(teacher)
    epochs = ((index, batch) for _ in range(step.epochs) for index, batch in enumerate(source()))
    _set_batchnorm_mode(student, mode)
    loss = torch.zeros(())
    for index, (inputs, labels) in ctx.reporter.track(epochs, f"{title} ({step.epochs} epochs)", total=total):
        target = targets(index, tuple(inputs))
        out = logits(student(*_resized(tuple(inputs), step.input_scale)))
        loss = distillation_loss(out, target, labels, step.temperature, step.alpha)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        apply_masks(student, ctx.masks)
        if index == batches_per_epoch - 1:  # an epoch done: a watcher (a search) may stop here
            epoch_done(schedule.last_epoch // batches_per_epoch, step.epochs, student)
            _set_batchnorm_mode(student, mode)
    ctx.stats["distill_final_loss"] = round(float(loss.detach()), 5)
    return student.eval()
