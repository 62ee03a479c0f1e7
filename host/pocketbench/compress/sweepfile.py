"""TOML sweep files: named variants with explicit step parameters (and optionally the models).

    models = ["digits_cnn"]                      # optional; --model on the CLI wins

    [variants]
    fast = "prune50+distill+int8"                # a variant name made of tokens

    [variants.int8-meanstd-k3]                   # or explicit steps
    steps = [{ type = "quantize", observer = "meanstd", k = 3.0 }]

    [variants.prune40-sensitive]                 # tables for per-group fields
    steps = [
      { type = "channel_prune", ratio = 0.4, allocation = "sensitivity", ratios = { "features.3" = 0.2 } },
      { type = "recalibrate" },
      { type = "distill", epochs = 8, schedule = "cosine" },
    ]

Every field is checked against the step's dataclass: unknown fields, wrong types and invalid
values are one-line errors naming the file, the variant, the step and the field. A `[tune]`
table narrows or widens `pocketbench tune`'s search space (checked by tune/space.py); a file for
`tune` alone needs no `[variants]`.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pocketbench.compress.recipe import STEP_TYPES, Recipe, RecipeError, Step, parse_variant
from pocketbench.errors import shown
from pocketbench.names import NAME_RULE, name_problem
from pocketbench.paths import TOML_MAX_BYTES, read_bounded

# More variants or models than a run could measure in a day is a generated file gone wrong.
MAX_VARIANTS = 1_000
MAX_STEPS = 32

STEP_KINDS: dict[str, type[Step]] = {cls.KIND: cls for cls in STEP_TYPES.values() if cls.KIND}


@dataclass(frozen=True)
class SweepFile:
    models: list[str]
    variants: list[Recipe]
    tune: dict[str, Any] = dataclasses.field(default_factory=dict)  # the `[tune]` table as written


def _accepts(annotation: Any, value: Any) -> bool:
    """Whether a TOML value fits a field annotation (ints are welcome where floats are)."""
    if typing.get_origin(annotation) is dict:
        key_type, value_type = typing.get_args(annotation)
        return isinstance(value, dict) and all(
            _accepts(key_type, k) and _accepts(value_type, v) for k, v in value.items()
        )
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else ()
    if options:
        return any(_accepts(a, value) for a in options if a is not type(None))
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def build_step(fields: dict[str, Any], where: str) -> Step:
    """A step from a sweep-file table (`type` plus that step's fields)."""
    fields = dict(fields)
    kind = fields.pop("type", None)
    if kind not in STEP_KINDS:
        raise RecipeError(f"{where}: type {shown(kind)} is not one of {', '.join(sorted(STEP_KINDS))}")
    cls = STEP_KINDS[kind]
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key, value in fields.items():
        if key not in names:
            raise RecipeError(f"{where} ({kind}): unknown field {shown(key)}; fields are {', '.join(names)}")
        if not _accepts(hints[key], value):
            raise RecipeError(f"{where} ({kind}): field {key!r} = {shown(value)} is not a {_type_name(hints[key])}")
    try:
        return cls(**{k: _as_field(hints[k], v) for k, v in fields.items()})
    except RecipeError as exc:
        raise RecipeError(f"{where}: {exc}") from None


def _as_field(annotation: Any, value: Any) -> Any:
    """TOML ints become floats where the field is a float (also inside a table of floats)."""
    if typing.get_origin(annotation) is dict:
        return {k: _as_field(typing.get_args(annotation)[1], v) for k, v in value.items()}
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else ()
    floats = annotation is float or float in options
    return float(value) if floats and isinstance(value, int) and not isinstance(value, bool) else value


def _type_name(annotation: Any) -> str:
    if typing.get_origin(annotation) is dict:
        key_type, value_type = typing.get_args(annotation)
        return f"table of {_type_name(key_type)} → {_type_name(value_type)}"
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return " or ".join(a.__name__ for a in args) if args else annotation.__name__


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise RecipeError(f"cannot write {value!r} to a sweep file")


def sweep_text(variants: list[Recipe], models: list[str] | None = None) -> str:
    """A sweep file that `load_sweep` reads back as exactly these recipes (explicit steps, every field)."""
    lines = [f"models = [{', '.join(json.dumps(m) for m in models)}]", ""] if models else []
    lines.append("[variants]")
    for recipe in variants:
        lines.append(f"[variants.{json.dumps(recipe.name)}]")
        lines.append("steps = [")
        for step in recipe.steps:
            fields = {k: v for k, v in dataclasses.asdict(step).items() if v is not None}
            body = ", ".join(
                [f"type = {json.dumps(step.KIND)}", *(f"{k} = {_toml_value(v)}" for k, v in fields.items())]
            )
            lines.append(f"  {{ {body} }},")
        lines.append("]")
    return "\n".join(lines) + "\n"


def load_sweep(path: Path) -> SweepFile:
    """Parse and validate a sweep file."""
    try:
        data = tomllib.loads(read_bounded(path, TOML_MAX_BYTES, "sweep file"))
    except OSError as exc:
        raise RecipeError(f"sweep file {path}: cannot read it ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"sweep file {path}: not valid TOML ({exc})") from None
    unknown = set(data) - {"models", "variants", "tune"}
    if unknown:
        raise RecipeError(
            f"sweep file {path}: unknown top-level key(s) {', '.join(sorted(unknown))}; use models, variants, tune"
        )
    tune = data.get("tune", {})
    if not isinstance(tune, dict):
        raise RecipeError(f"sweep file {path}: tune must be a table ([tune]) of dimension = [choices]")
    models = data.get("models", [])
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise RecipeError(f"sweep file {path}: models must be a list of model names")
    if len(models) > MAX_VARIANTS:
        raise RecipeError(f"sweep file {path}: models lists {len(models)}, over the limit of {MAX_VARIANTS}")
    variants = data.get("variants", {} if tune else None)
    if not isinstance(variants, dict) or not (variants or tune):
        raise RecipeError(f"sweep file {path}: needs a [variants] table with at least one variant")
    if len(variants) > MAX_VARIANTS:
        raise RecipeError(f"sweep file {path}: [variants] has {len(variants)}, over the limit of {MAX_VARIANTS}")
    recipes = [_variant(path, name, spec) for name, spec in variants.items()]
    return SweepFile(models=models, variants=recipes, tune=tune)


def _variant(path: Path, name: str, spec: Any) -> Recipe:
    where = f"sweep file {path}: variant {shown(name)}"
    if (problem := name_problem(name)) is not None:  # it names files and rows, like a run id
        raise RecipeError(f"{where}: not a variant name ({problem}): {NAME_RULE}")
    if isinstance(spec, str):
        try:
            return Recipe(name=name, steps=parse_variant(spec).steps)
        except RecipeError as exc:
            raise RecipeError(f"{where}: {exc}") from None
    if not isinstance(spec, dict) or set(spec) != {"steps"} or not isinstance(spec["steps"], list):
        raise RecipeError(f'{where}: give a token string ("prune50+int8") or a table with only steps = [...]')
    if len(spec["steps"]) > MAX_STEPS:
        raise RecipeError(f"{where}: {len(spec['steps'])} steps, over the limit of {MAX_STEPS}")
    steps = []
    for i, fields in enumerate(spec["steps"], 1):
        if not isinstance(fields, dict):
            raise RecipeError(f'{where} step {i}: each step is an inline table like {{ type = "quantize" }}')
        steps.append(build_step(fields, f"{where} step {i}"))
    try:
        return Recipe(name=name, steps=tuple(steps))
    except RecipeError as exc:  # the recipe already names the variant
        raise RecipeError(f"sweep file {path}: {exc}") from None
