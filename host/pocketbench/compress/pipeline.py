"""Apply a recipe to a model: each step type has one registered handler (module in, module out).

Handlers share a `Context`: the bundle (teacher, data), the reporter, the masks unstructured
pruning leaves for later training to respect, and `stats` that end up in the artifact manifest
and so in every result row (params, MACs, sparsity, per-layer SQNR, ...).
"""

from __future__ import annotations

import copy
import json
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from pocketbench.compress.context import Context, StopCompression
from pocketbench.compress.recipe import (
    ChannelPrune,
    Distill,
    Int4Weights,
    Prune,
    Quantize,
    QuantizeAwareTraining,
    Recalibrate,
    Recipe,
    RecipeError,
    Step,
)
from pocketbench.errors import PocketbenchError, first_line
from pocketbench.models.registry import ModelBundle
from pocketbench.progress import Reporter


class CompressionError(PocketbenchError):
    """A compression step failed on this model; the message starts with the step's name
    (`channel_prune: …`), so the row says which step it was, not that export failed."""


# The names steps go by in messages and recipe tokens.
STEP_LABELS: dict[type[Step], str] = {
    Quantize: "quantize", QuantizeAwareTraining: "qat", Int4Weights: "w4", Prune: "prune",
    ChannelPrune: "channel_prune", Distill: "distill", Recalibrate: "recalibrate",
}  # fmt: skip


Handler = Callable[[torch.nn.Module, Any, Context], torch.nn.Module]
HANDLERS: dict[type[Step], Handler] = {}


def handles(step_type: type[Step]) -> Callable[[Handler], Handler]:
    """Register the function that applies `step_type` (one per step type)."""

    def register(fn: Handler) -> Handler:
        HANDLERS[step_type] = fn
        return fn

    return register


@handles(Quantize)
def _quantize(module: torch.nn.Module, step: Quantize, ctx: Context) -> torch.nn.Module:
    from pocketbench.compress.layer_kinds import unquantized_layers
    from pocketbench.compress.quantize import quantize_pt2e

    ctx.stats["unquantized_layers"] = unquantized_layers(module)
    return quantize_pt2e(module, step, ctx)


@handles(QuantizeAwareTraining)
def _qat(module: torch.nn.Module, step: QuantizeAwareTraining, ctx: Context) -> torch.nn.Module:
    from pocketbench.compress.layer_kinds import unquantized_layers
    from pocketbench.compress.quantize import quantize_aware_training

    ctx.stats["unquantized_layers"] = unquantized_layers(module)
    return quantize_aware_training(module, step, ctx)


@handles(Int4Weights)
def _w4(module: torch.nn.Module, step: Int4Weights, ctx: Context) -> torch.nn.Module:
    from pocketbench.compress.quantize import int4_weights

    return int4_weights(module, step, ctx)


@handles(Prune)
def _prune(module: torch.nn.Module, step: Prune, ctx: Context) -> torch.nn.Module:
    from pocketbench.compress.prune import prune_unstructured

    return prune_unstructured(module, step, ctx)


@handles(ChannelPrune)
def _channel_prune(module: torch.nn.Module, step: ChannelPrune, ctx: Context) -> torch.nn.Module:
    from pocketbench.compress.prune import prune_channels

    return prune_channels(module, step, ctx)


@handles(Distill)
def _distill(module: torch.nn.Module, step: Distill, ctx: Context) -> torch.nn.Module:
    from pocketbench.compress.training import distill

    return distill(module, step, ctx)


@handles(Recalibrate)
def _recalibrate(module: torch.nn.Module, step: Recalibrate, ctx: Context) -> torch.nn.Module:
    from pocketbench.compress.batchnorm import recalibrate

    return recalibrate(module, step, ctx)


def recovery_note(recipe: Recipe) -> str:
    """What to expect of a recipe that prunes and never trains afterwards, and the recipe that recovers."""
    pruned = [i for i, s in enumerate(recipe.steps) if isinstance(s, (Prune, ChannelPrune))]
    if not pruned or any(isinstance(s, Distill) for s in recipe.steps[pruned[-1] :]):
        return ""
    tokens = recipe.name.split("+")
    graph = next((i for i, s in enumerate(recipe.steps) if s.graph_level), None)
    # The recovery token goes before the quantization token when the name ends with one.
    at = len(tokens) - 1 if graph is not None and len(tokens) > 1 else len(tokens)
    recovered = "+".join([*tokens[:at], "distill", *tokens[at:]])
    return (
        "pruned without recovery training (batch-norm recalibration only): accuracy is expected to drop; "
        f"the recovery recipe is `{recovered}`"
    )


@dataclass(frozen=True)
class Compressed:
    """The compressed module and what the steps measured on the way."""

    module: torch.nn.Module
    stats: dict[str, Any]


# Module-level results per source model after each leading run of steps, keyed by those steps:
# `prune50`, `prune50+distill` and `prune50+distill+int8` in one sweep prune once and train once.
# Steps are seeded, so reuse is exact.
@dataclass(frozen=True)
class _Prefix:
    module: torch.nn.Module
    masks: dict[str, torch.Tensor]
    stats: dict[str, Any]


_PREFIXES: weakref.WeakKeyDictionary[torch.nn.Module, OrderedDict[str, _Prefix]] = weakref.WeakKeyDictionary()
_PREFIXES_PER_MODEL = 8


def _prefix_key(steps: list[Step]) -> str:
    return json.dumps([s.to_dict() for s in steps], sort_keys=True)


def _run(module: torch.nn.Module, steps: list[Step], ctx: Context, recipe: Recipe) -> torch.nn.Module:
    for step in steps:
        handler = HANDLERS.get(type(step))
        if handler is None:
            raise RecipeError(f"variant {recipe.name!r}: no handler for step {type(step).__name__}")
        label = STEP_LABELS.get(type(step), type(step).__name__)
        try:
            module = handler(module, step, ctx)
        except StopCompression:  # a watcher abandoned the recipe: not a failure of the step
            raise
        except Exception as exc:  # torch-pruning, torchao, training: any of them may fail on a model
            message = first_line(exc)
            if not isinstance(exc, PocketbenchError):
                message = f"{type(exc).__name__}: {message}"
            raise CompressionError(message if message.startswith(f"{label}:") else f"{label}: {message}") from exc
    return module


def apply_recipe(bundle: ModelBundle, recipe: Recipe, reporter: Reporter | None = None) -> Compressed:
    """The compressed module for `recipe`; the bundle's own module is never modified.

    Params, MACs and sparsity are counted once the module-level steps are done (quantization
    changes none of them), so they describe the variant's architecture.
    """
    from pocketbench.compress.cost import model_stats

    reporter = reporter or Reporter()
    split = next((i for i, s in enumerate(recipe.steps) if s.graph_level), len(recipe.steps))
    module_steps, graph_steps = list(recipe.steps[:split]), list(recipe.steps[split:])
    done = _PREFIXES.setdefault(bundle.module, OrderedDict())
    # The longest run of leading steps already computed (prune50+distill starts from prune50's result).
    reused = next((n for n in range(len(module_steps), 0, -1) if _prefix_key(module_steps[:n]) in done), 0)
    if reused:
        cached = copy.deepcopy(done[_prefix_key(module_steps[:reused])])
        module, ctx = cached.module, Context(bundle, reporter, cached.masks, cached.stats)
        ctx.stats["module_steps_reused"] = reused  # their time is in `module_steps_seconds`, not this run's
    else:
        module, ctx = copy.deepcopy(bundle.module).eval(), Context(bundle=bundle, reporter=reporter)
    for n in range(reused + 1, len(module_steps) + 1):
        started = time.perf_counter()
        module = _run(module, [module_steps[n - 1]], ctx, recipe).eval()
        ctx.stats["module_steps_seconds"] = round(
            ctx.stats.get("module_steps_seconds", 0) + time.perf_counter() - started, 1
        )
        done[_prefix_key(module_steps[:n])] = copy.deepcopy(_Prefix(module, ctx.masks, ctx.stats))
        done.move_to_end(_prefix_key(module_steps[:n]))
        while len(done) > _PREFIXES_PER_MODEL:
            done.popitem(last=False)
    ctx.stats.update(model_stats(module, bundle.example_inputs))
    if recovery_note(recipe):  # after the cache: recipes sharing a prefix name different recoveries
        ctx.stats["recovery_note"] = recovery_note(recipe)
    module = _run(module, graph_steps, ctx, recipe)
    return Compressed(module=module, stats=ctx.stats)
