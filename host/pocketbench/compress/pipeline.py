"""Apply a recipe to a model: each step type has one registered handler (module in, module out)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch

from pocketbench.compress.recipe import Quantize, Recipe, RecipeError, Step
from pocketbench.progress import Reporter
from pocketbench.registry import ModelBundle

Handler = Callable[[torch.nn.Module, ModelBundle, Any, Reporter], torch.nn.Module]
HANDLERS: dict[type[Step], Handler] = {}


def handles(step_type: type[Step]) -> Callable[[Handler], Handler]:
    """Register the function that applies `step_type` (one per step type)."""

    def register(fn: Handler) -> Handler:
        HANDLERS[step_type] = fn
        return fn

    return register


@handles(Quantize)
def _quantize(module: torch.nn.Module, bundle: ModelBundle, step: Quantize, reporter: Reporter) -> torch.nn.Module:
    from pocketbench.compress.quantize import quantize_pt2e

    return quantize_pt2e(module, bundle, step, reporter)


def apply_recipe(bundle: ModelBundle, recipe: Recipe, reporter: Reporter | None = None) -> torch.nn.Module:
    """The compressed module for `recipe`; the bundle's own module is never modified."""
    reporter = reporter or Reporter()
    module = copy.deepcopy(bundle.module).eval()
    for step in recipe.steps:
        handler = HANDLERS.get(type(step))
        if handler is None:
            raise RecipeError(f"variant {recipe.name!r}: no handler for step {type(step).__name__}")
        module = handler(module, bundle, step, reporter)
    return module
