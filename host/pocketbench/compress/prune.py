"""Pruning: unstructured (zeros in dense tensors) and structured (whole channels removed).

Unstructured pruning shrinks the zipped `.pte`, not the latency: XNNPACK's dense kernels
multiply zeros like any other number. Structured pruning with torch-pruning follows the
dependency graph (residual adds, depthwise groups, batch-norm) and removes channels for real,
so the model is smaller and faster but needs recovery training (distill or finetune).
"""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn
from torch.nn import functional as F

from pocketbench.compress.context import Context
from pocketbench.compress.recipe import ChannelPrune, Prune, RecipeError
from pocketbench.compress.stats import PRUNABLE, prunable_weights
from pocketbench.compress.training import logits, training_batches
from pocketbench.errors import first_line


def importance(module: nn.Module, step: Prune, ctx: Context) -> dict[str, torch.Tensor]:
    """Per-weight importance: |w|, or |∂L/∂w · w| with ∂L/∂w averaged over `step.batches` batches.

    The loss is cross-entropy on real labels; on unlabelled data, on the model's own top-1
    predictions (the gradient of a model's loss against itself under KL would be zero).
    """
    weights = prunable_weights(module)
    if step.criterion == "magnitude":
        return {name: w.detach().abs() for name, w in weights.items()}
    grads = {name: torch.zeros_like(w) for name, w in weights.items()}
    batches = list(itertools.islice(training_batches(ctx.bundle)(), step.batches))
    if not batches:
        raise RecipeError("prune: the gradient criterion needs training or calibration batches; the model has none")
    module.eval()  # batch-norm statistics must not move while we only measure
    for inputs, labels in ctx.reporter.track(batches, "gradient importance"):
        module.zero_grad()
        out = logits(module(*inputs))
        target = labels.reshape(-1) if labels is not None else out.argmax(dim=-1).detach()
        F.cross_entropy(out, target).backward()
        for name, w in weights.items():
            if w.grad is not None:
                grads[name] += w.grad / len(batches)
    module.zero_grad()
    return {name: (grads[name] * w.detach()).abs() for name, w in weights.items()}


def prune_unstructured(module: nn.Module, step: Prune, ctx: Context) -> nn.Module:
    """Zero the least important conv/linear weights, ranked globally across layers.

    With `sparsity`, exactly round(sparsity · N) weights are zeroed (ties broken by position);
    with `threshold`, every weight whose importance is below θ.
    """
    scores = importance(module, step, ctx)
    names = list(scores)
    flat = torch.cat([scores[n].reshape(-1) for n in names])
    keep = torch.ones_like(flat)
    if step.sparsity is not None:
        count = round(step.sparsity * flat.numel())
        keep[torch.argsort(flat, stable=True)[:count]] = 0
    else:
        keep[flat < step.threshold] = 0
    weights = prunable_weights(module)
    offset = 0
    with torch.no_grad():
        for name in names:
            w = weights[name]
            mask = keep[offset : offset + w.numel()].reshape(w.shape)
            offset += w.numel()
            ctx.masks[name] = mask * ctx.masks.get(name, torch.ones_like(mask))
            w.mul_(ctx.masks[name])
    ctx.stats["pruned_fraction"] = float(1 - keep.mean())
    return module


def _output_layer(module: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> nn.Module | None:
    """The last conv/linear layer to run: its outputs are the model's classes, never pruned."""
    order: list[nn.Module] = []
    handles = [
        m.register_forward_hook(lambda m, i, o: order.append(m)) for m in module.modules() if isinstance(m, PRUNABLE)
    ]
    try:
        with torch.no_grad():
            module(*example_inputs)
    finally:
        for handle in handles:
            handle.remove()
    return order[-1] if order else None


def _prune(module: nn.Module, example: tuple[torch.Tensor, ...], step: ChannelPrune, ignored: list[nn.Module]) -> None:
    import torch_pruning as tp

    pruner = tp.pruner.BasePruner(
        module,
        example,
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=step.ratio,
        ignored_layers=ignored,
        round_to=step.round_to,
    )
    pruner.step()


def _separately_prunable(module: nn.Module, example: tuple[torch.Tensor, ...], step: ChannelPrune) -> list[str]:
    """Layers whose channel group torch-pruning can remove on its own, tried one by one on copies.

    Used when pruning everything at once fails: e.g. attention with head counts written into
    reshapes (qkv) cannot be followed, while the feed-forward hidden layers can.
    """
    layers = [name for name, m in module.named_modules() if isinstance(m, PRUNABLE)]
    before = sum(p.numel() for p in module.parameters())
    found = []
    for name in layers[:-1]:
        trial = copy.deepcopy(module)
        modules = dict(trial.named_modules())
        try:
            _prune(trial, example, step, [modules[other] for other in layers if other != name])
            with torch.no_grad():
                trial(*example)
        except Exception:
            continue  # this layer's group is coupled to something torch-pruning cannot follow
        if sum(p.numel() for p in trial.parameters()) < before:
            found.append(name)
    return found


def prune_channels(module: nn.Module, step: ChannelPrune, ctx: Context) -> nn.Module:
    """torch-pruning's dependency-aware channel pruning by group L2 magnitude.

    The whole model at once when torch-pruning can follow it; otherwise only the layers it can
    prune on their own (listed in the stats as `channel_pruned_layers`), or a clear error.
    """
    if ctx.masks:
        raise RecipeError("channel_prune must come before unstructured prune (it changes the weight shapes)")
    example = ctx.bundle.example_inputs
    with torch.no_grad():
        reference = logits(module(*example))
    last = _output_layer(module, example)
    if last is None:
        raise RecipeError("channel_prune: this model has no conv or linear layers to prune")
    original = copy.deepcopy(module)
    try:
        with ctx.reporter.status(f"pruning {step.ratio:.0%} of channels"):
            _prune(module, example, step, [last])
            with torch.no_grad():
                module(*example)
    except Exception as exc:
        first = first_line(exc, 120)
        with ctx.reporter.status("whole-model pruning failed; probing layer by layer"):
            allowed = _separately_prunable(original, example, step)
        if not allowed:
            raise RecipeError(
                "channel_prune: torch-pruning could not prune any layer of this architecture "
                f"({type(exc).__name__}: {first})"
            ) from exc
        module = original
        named = dict(module.named_modules())
        _prune(module, example, step, [m for n, m in named.items() if isinstance(m, PRUNABLE) and n not in allowed])
        ctx.stats["channel_pruned_layers"] = allowed
    with torch.no_grad():
        pruned = logits(module(*example))
    if pruned.shape != reference.shape:
        raise RecipeError(
            f"channel_prune: pruning changed the output shape {tuple(reference.shape)} → {tuple(pruned.shape)}"
        )
    return module
