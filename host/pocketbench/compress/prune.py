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

from pocketbench.compress.channel_budget import sensitivity_ratios
from pocketbench.compress.context import Context
from pocketbench.compress.cost import PRUNABLE, prunable_weights
from pocketbench.compress.recipe import ChannelPrune, Prune, RecipeError
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
    elif step.threshold is not None:  # Prune holds exactly one of the two
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


def _run_order(module: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> list[nn.Module]:
    """Conv/linear layers in the order a forward pass runs them."""
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
    return order


def _output_layer(module: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> nn.Module | None:
    """The last conv/linear layer to run: its outputs are the model's classes, never pruned."""
    order = _run_order(module, example_inputs)
    return order[-1] if order else None


def protected_layers(module: nn.Module, example: tuple[torch.Tensor, ...], step: ChannelPrune) -> list[nn.Module]:
    """The output layer, and with `protect_ends` the first layer to run (the stem) too."""
    order = _run_order(module, example)
    if not order:
        raise RecipeError("channel_prune: this model has no conv or linear layers to prune")
    return [order[-1], *([order[0]] if step.protect_ends and len(order) > 1 else [])]


def prune_groups(
    module: nn.Module,
    example: tuple[torch.Tensor, ...],
    step: ChannelPrune,
    ignored: list[nn.Module],
    ratios: dict[nn.Module, float] | None = None,
) -> None:
    """torch-pruning by group L2 magnitude: `step.ratio` in every group, or with `ratios` exactly the
    groups rooted at its keys, at their ratios (the others keep their channels)."""
    import torch_pruning as tp

    pruner = tp.pruner.BasePruner(
        module,
        example,
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=0.0 if ratios else step.ratio,
        pruning_ratio_dict=ratios or None,
        max_pruning_ratio=max([step.max_ratio, step.ratio, *(ratios or {}).values()]),
        ignored_layers=ignored,
        round_to=step.round_to,
    )
    pruner.step()


def group_roots(module: nn.Module, example: tuple[torch.Tensor, ...], ignored: list[nn.Module]) -> dict[str, nn.Module]:
    """The channel groups torch-pruning would prune, by the name of the layer each is rooted at."""
    import torch_pruning as tp

    graph = tp.DependencyGraph().build_dependency(module, example_inputs=example)
    names = {m: n for n, m in module.named_modules()}
    roots = {}
    for group in graph.get_all_groups(ignored_layers=ignored, root_module_types=[nn.Conv2d, nn.Conv1d, nn.Linear]):
        root = group[0].dep.target.module
        roots[names[root]] = root
    return roots


def _separately_prunable(
    module: nn.Module, example: tuple[torch.Tensor, ...], step: ChannelPrune, protected: list[nn.Module]
) -> list[str]:
    """Layers whose channel group torch-pruning can remove on its own, tried one by one on copies.

    Used when pruning everything at once fails: e.g. attention with head counts written into
    reshapes (qkv) cannot be followed, while the feed-forward hidden layers can.
    """
    layers = [name for name, m in module.named_modules() if isinstance(m, PRUNABLE) and m not in protected]
    before = sum(p.numel() for p in module.parameters())
    found = []
    for name in layers:
        trial = copy.deepcopy(module)
        modules = dict(trial.named_modules())
        try:
            others = [n for n, m in module.named_modules() if isinstance(m, PRUNABLE) and n != name]
            ignored = [modules[other] for other in others]
            prune_groups(trial, example, step, ignored)
            with torch.no_grad():
                trial(*example)
        except Exception:
            continue  # this layer's group is coupled to something torch-pruning cannot follow
        if sum(p.numel() for p in trial.parameters()) < before:
            found.append(name)
    return found


def _prunable(module: nn.Module, example: tuple[torch.Tensor, ...], step: ChannelPrune, ctx: Context) -> list[str]:
    """Names of the layers pruned: all but the protected ones when torch-pruning follows the whole
    model (tried on a copy), else those it can prune one by one (stats: `channel_pruned_layers`)."""
    protected = protected_layers(module, example, step)
    trial = copy.deepcopy(module)
    trial_named = dict(trial.named_modules())
    names = {m: n for n, m in module.named_modules()}
    try:
        with ctx.reporter.status("following the model's channel dependencies"):
            prune_groups(trial, example, step, [trial_named[names[m]] for m in protected])
            with torch.no_grad():
                trial(*example)
        return [n for n, m in module.named_modules() if isinstance(m, PRUNABLE) and m not in protected]
    except Exception as exc:
        first = first_line(exc, 120)
        with ctx.reporter.status("whole-model pruning failed; probing layer by layer"):
            allowed = _separately_prunable(module, example, step, protected)
        if not allowed:
            raise RecipeError(
                "channel_prune: torch-pruning could not prune any layer of this architecture "
                f"({type(exc).__name__}: {first})"
            ) from exc
        ctx.stats["channel_pruned_layers"] = allowed
        return allowed


def prune_channels(module: nn.Module, step: ChannelPrune, ctx: Context) -> nn.Module:
    """torch-pruning's dependency-aware channel pruning by group L2 magnitude, with the ratio of each
    group uniform, given by name, or spread by measured sensitivity (see `ChannelPrune`).

    The stats record each group's ratio (`channel_prune_ratios`) and, when measured, its SQNR
    pruned alone (`channel_sensitivity_db`).
    """
    if ctx.masks:
        raise RecipeError("channel_prune must come before unstructured prune (it changes the weight shapes)")
    example = ctx.bundle.example_inputs
    with torch.no_grad():
        reference = logits(module(*example))
    allowed = set(_prunable(module, example, step, ctx))
    ignored: list[nn.Module] = [m for n, m in module.named_modules() if isinstance(m, PRUNABLE) and n not in allowed]
    roots = group_roots(module, example, ignored)
    unknown = sorted(set(step.ratios) - set(roots))
    if unknown:
        raise RecipeError(
            f"channel_prune: ratios name {', '.join(unknown)}, which root no prunable channel group; "
            f"groups are {', '.join(roots)}"
        )
    ratios = {name: step.ratio for name in roots}
    if step.allocation == "sensitivity":
        ratios = sensitivity_ratios(module, step, ctx, roots, ignored, prune_groups)
    ratios.update(step.ratios)
    ctx.stats["channel_prune_ratios"] = {name: round(r, 3) for name, r in ratios.items()}
    with ctx.reporter.status(f"pruning channels ({step.allocation}, mean ratio {step.ratio:.0%})"):
        prune_groups(module, example, step, ignored, {roots[n]: r for n, r in ratios.items()})
    with torch.no_grad():
        pruned = logits(module(*example))
    if pruned.shape != reference.shape:
        raise RecipeError(
            f"channel_prune: pruning changed the output shape {tuple(reference.shape)} → {tuple(pruned.shape)}"
        )
    return module
