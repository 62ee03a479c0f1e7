"""The search space of `pocketbench tune`: one table of dimensions, each an existing recipe field.

Each `Dimension` names its choices and what a chosen value sets in the recipe: a patch of step
fields keyed by the step's slot in `STEP_ORDER` (a sweep-file step kind, or a second place for
one: `{"quantize": {"observer": "histogram"}}`). A trial's recipe is the patches merged per slot
and built through the sweep file's validated step builder, in `STEP_ORDER`; so a new dimension
(a recovery step, a per-group prune ratio) is one entry here, and a `[tune]` table in a sweep
file narrows or widens a dimension by name:

    [tune]
    prune_ratio = [0.0, 0.3, 0.5]        # channels removed (0: no pruning)
    quantization = ["int8", "w4"]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pocketbench.compress.recipe import ALLOCATIONS, OBSERVERS, Distill, Recipe, RecipeError, Step
from pocketbench.compress.sweepfile import build_step

Choice = float | int | str
Patch = dict[str, dict[str, Any]]  # step slot (see STEP_ORDER) → that step's fields


@dataclass(frozen=True)
class Dimension:
    """One searched choice: its name (the Optuna parameter and the `[tune]` key), its default
    choices, the step fields a value sets, its part of the variant name ("" adds none), and when
    it applies (given the choices made before it)."""

    name: str
    choices: tuple[Choice, ...]
    doc: str
    patch: Callable[[Any], Patch]
    label: Callable[[Any], str]
    applies: Callable[[Mapping[str, Any]], bool] = lambda chosen: True


def _quantization(value: str) -> Patch:
    patches: dict[str, Patch] = {
        "none": {},
        "int8": {"quantize": {"scheme": "int8"}},
        "int8-dynamic": {"quantize": {"scheme": "int8-dynamic"}},
        "w4": {"w4": {}},
    }
    return patches[value]


def _observer(value: str) -> Patch:
    if value == "meanstd-auto":
        return {"quantize": {"observer": "meanstd", "k": "auto"}}
    return {"quantize": {"observer": value}}


SPACE: tuple[Dimension, ...] = (
    Dimension(
        "prune_ratio",
        (0.0, 0.25, 0.5, 0.6, 0.7, 0.75),
        "fraction of channels structured pruning removes (0: no pruning); batch-norm is recalibrated after",
        lambda v: {"channel_prune": {"ratio": float(v)}, "recalibrate": {}} if v > 0 else {},
        lambda v: f"p{round(100 * v):d}" if v > 0 else "",
    ),
    Dimension(
        "prune_allocation",
        ALLOCATIONS,
        "how the pruning budget is spread over the channel groups: by measured sensitivity, or the same everywhere",
        lambda v: {"channel_prune": {"allocation": v}},
        lambda v: "uniform" if v == "uniform" else "",
        lambda chosen: chosen.get("prune_ratio", 0) > 0,
    ),
    Dimension(
        "distill_epochs",
        (0, 1, 2, 3, 5),
        "epochs of distillation from the fp32 model after pruning (0: none), batch-norm recalibrated after it",
        lambda v: {"distill": {"epochs": int(v)}, "recalibrate_after_distill": {}} if v > 0 else {},
        lambda v: f"d{v}" if v > 0 else "",
        lambda chosen: chosen.get("prune_ratio", 0) > 0,
    ),
    Dimension(
        "quantization",
        ("none", "int8", "int8-dynamic", "w4"),
        "none (fp32), static int8, int8 with activations quantized at run time, or 4-bit linear weights",
        _quantization,
        lambda v: "" if v == "none" else str(v),
    ),
    Dimension(
        "observer",
        (*OBSERVERS, "meanstd-auto"),
        "how static int8 estimates activation ranges (meanstd-auto: mean ± k·σ with k searched per layer)",
        _observer,
        lambda v: "" if v == "minmax" else str(v),
        lambda chosen: chosen.get("quantization") == "int8",
    ),
    Dimension(
        "keep_fp32",
        (0, 1, 2),
        "how many of the most int8-sensitive layers stay in fp32",
        lambda v: {"quantize": {"keep_fp32": int(v)}},
        lambda v: f"k{v}" if v > 0 else "",
        lambda chosen: chosen.get("quantization") == "int8",
    ),
)
# The order steps run in: module-level steps first, quantization last (Recipe checks it too).
# Recovery recalibrates after pruning and again after distillation, as the hand-written `distill`
# token does, so the space holds the compression table's recipes step for step (a trial equal to
# one reuses its artifact).
STEP_ORDER = ("channel_prune", "recalibrate", "distill", "recalibrate_after_distill", "quantize", "w4")
SLOT_KINDS = {"recalibrate_after_distill": "recalibrate"}  # a slot that is not itself a step kind
DIMENSIONS = {d.name: d for d in SPACE}


@dataclass(frozen=True)
class Space:
    """The dimensions with the choices this search uses (the defaults, or a `[tune]` table's)."""

    choices: dict[str, tuple[Choice, ...]]

    @staticmethod
    def default() -> Space:
        return Space({d.name: d.choices for d in SPACE})

    def dimensions(self) -> list[Dimension]:
        return [d for d in SPACE if d.name in self.choices]

    def size(self) -> int:
        """How many distinct recipes the space holds."""
        return len({recipe_key(r) for r in self.enumerate()})

    def enumerate(self) -> list[Recipe]:
        """Every recipe of the space (small spaces only: used to say when a search has seen them all)."""
        return [recipe_from(p) for p in self.every_choice()]

    def every_choice(self) -> list[dict[str, Any]]:
        """Every trial's choices the space allows (only the dimensions that apply)."""
        partial: list[dict[str, Any]] = [{}]
        for dim in self.dimensions():
            grown = []
            for chosen in partial:
                options = self.choices[dim.name] if dim.applies(chosen) else (None,)
                grown += [{**chosen, dim.name: v} if v is not None else chosen for v in options]
            partial = grown
        return partial

    def choices_of(self, recipe: Recipe) -> dict[str, Any] | None:
        """The choices that make `recipe` (same steps, any name), or None when the space lacks it."""
        key = recipe_key(recipe)
        return next((c for c in self.every_choice() if recipe_key(recipe_from(c)) == key), None)

    def pushed_further(self, chosen: Mapping[str, Any], count: int = 2) -> list[dict[str, Any]]:
        """`chosen` with the next `count` larger prune ratios of the space, all else kept: where a
        search starts from a good recipe (more channels removed is smaller, faster and cheaper)."""
        ratio = float(chosen.get("prune_ratio", 0.0))
        larger = sorted(float(r) for r in self.choices.get("prune_ratio", ()) if float(r) > ratio)[:count]
        recovery: dict[str, Any] = {}
        if ratio == 0:  # a recipe that did not prune: prune with the hand-written recovery where offered
            allocations, epochs = self.choices.get("prune_allocation", ()), self.choices.get("distill_epochs", ())
            recovery |= {"prune_allocation": "sensitivity"} if "sensitivity" in allocations else {}
            recovery |= {"distill_epochs": Distill().epochs} if Distill().epochs in epochs else {}
        return [{**chosen, **recovery, "prune_ratio": r} for r in larger]

    def describe(self) -> list[tuple[str, str, str]]:
        """(dimension, choices, what it is) for docs and errors."""
        return [(d.name, ", ".join(map(str, self.choices[d.name])), d.doc) for d in self.dimensions()]


def recipe_from(chosen: Mapping[str, Any]) -> Recipe:
    """The recipe a trial's choices make (dimensions that do not apply are ignored)."""
    fields: dict[str, dict[str, Any]] = {}
    taken: dict[str, Any] = {}
    for dim in SPACE:
        if dim.name in chosen and dim.applies(taken):
            taken[dim.name] = chosen[dim.name]
            for kind, values in dim.patch(chosen[dim.name]).items():
                fields.setdefault(kind, {}).update(values)
    steps: list[Step] = [_step(slot, fields[slot], "tune") for slot in _ordered(fields)]
    return Recipe(name=variant_name(taken), steps=tuple(steps))


def _step(slot: str, fields: Mapping[str, Any], where: str) -> Step:
    kind = SLOT_KINDS.get(slot, slot)
    return build_step({"type": kind, **fields}, f"{where}: {kind}")


def _ordered(fields: Mapping[str, Any]) -> list[str]:
    unknown = [k for k in fields if k not in STEP_ORDER]
    if unknown:
        raise RecipeError(f"tune: step kind(s) {', '.join(unknown)} have no place in STEP_ORDER")
    return [k for k in STEP_ORDER if k in fields]


def variant_name(chosen: Mapping[str, Any]) -> str:
    """A readable name from the choices, unique per recipe: `tuned-p50-d2-int8-histogram-k1`."""
    parts = [DIMENSIONS[name].label(value) for name, value in chosen.items()]
    return "tuned-" + ("-".join(p for p in parts if p) or "fp32")


def recipe_key(recipe: Recipe) -> str:
    """What makes two recipes the same work (their steps, not their names)."""
    return Recipe(name="x", steps=recipe.steps).to_json()


def narrow(table: Mapping[str, Any], where: str) -> Space:
    """The space a sweep file's `[tune]` table asks for: each key a dimension, each value its list
    of choices (fewer to narrow, others to widen); every choice is checked by building its step."""
    choices = dict(Space.default().choices)
    for name, values in table.items():
        dim = DIMENSIONS.get(name)
        if dim is None:
            raise RecipeError(f"{where}: [tune] {name!r} is not a dimension; dimensions are {', '.join(DIMENSIONS)}")
        if not isinstance(values, list) or not values:
            raise RecipeError(f"{where}: [tune] {name} must be a non-empty list of choices, e.g. {list(dim.choices)}")
        kinds = {type(c) for c in dim.choices}
        for value in values:
            if isinstance(value, bool) or not _fits(value, kinds):
                wanted = " or ".join(sorted(k.__name__ for k in kinds))
                raise RecipeError(f"{where}: [tune] {name} choice {value!r} is not a {wanted}")
            if dim.name == "quantization" and value not in dim.choices:
                known = ", ".join(map(str, dim.choices))
                raise RecipeError(f"{where}: [tune] quantization {value!r} is not one of {known}")
            try:
                for slot, fields in dim.patch(value).items():
                    _step(slot, fields, f"{where}: [tune] {name} = {value!r}")
            except RecipeError as exc:
                raise RecipeError(str(exc)) from None
        if len(set(values)) != len(values):
            raise RecipeError(f"{where}: [tune] {name} names a choice twice")
        choices[name] = tuple(float(v) if float in kinds else v for v in values)
    return Space(choices)


def _fits(value: Any, kinds: set[type]) -> bool:
    if float in kinds:
        return isinstance(value, (int, float)) and math.isfinite(value)
    return any(isinstance(value, k) for k in kinds)
