"""TOML sweep files: named variants with explicit step parameters (and optionally the models).

    models = ["digits_cnn"]                      # optional; --model on the CLI wins

    [variants]
    fast = "prune50+distill+int8"                # a variant name made of tokens

    [variants.int8-meanstd-k3]                   # or explicit steps
    steps = [{ type = "quantize", observer = "meanstd", k = 3.0 }]

Every field is checked against the step's dataclass: unknown fields, wrong types and invalid
values are one-line errors naming the file, the variant, the step and the field.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pocketbench.compress.recipe import STEP_TYPES, Recipe, RecipeError, Step, parse_variant

STEP_KINDS: dict[str, type[Step]] = {cls.KIND: cls for cls in STEP_TYPES.values() if cls.KIND}


@dataclass(frozen=True)
class SweepFile:
    models: list[str]
    variants: list[Recipe]


def _accepts(annotation: Any, value: Any) -> bool:
    """Whether a TOML value fits a field annotation (ints are welcome where floats are)."""
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
        raise RecipeError(f"{where}: type {kind!r} is not one of {', '.join(sorted(STEP_KINDS))}")
    cls = STEP_KINDS[kind]
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key, value in fields.items():
        if key not in names:
            raise RecipeError(f"{where} ({kind}): unknown field {key!r}; fields are {', '.join(names)}")
        if not _accepts(hints[key], value):
            raise RecipeError(f"{where} ({kind}): field {key!r} = {value!r} is not a {_type_name(hints[key])}")
    try:
        return cls(**{k: float(v) if hints[k] in (float, float | None) else v for k, v in fields.items()})
    except RecipeError as exc:
        raise RecipeError(f"{where}: {exc}") from None


def _type_name(annotation: Any) -> str:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return " or ".join(a.__name__ for a in args) if args else annotation.__name__


def load_sweep(path: Path) -> SweepFile:
    """Parse and validate a sweep file."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise RecipeError(f"sweep file {path}: cannot read it ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"sweep file {path}: not valid TOML ({exc})") from None
    unknown = set(data) - {"models", "variants"}
    if unknown:
        raise RecipeError(
            f"sweep file {path}: unknown top-level key(s) {', '.join(sorted(unknown))}; use models, variants"
        )
    models = data.get("models", [])
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise RecipeError(f"sweep file {path}: models must be a list of model names")
    variants = data.get("variants")
    if not isinstance(variants, dict) or not variants:
        raise RecipeError(f"sweep file {path}: needs a [variants] table with at least one variant")
    return SweepFile(models=models, variants=[_variant(path, name, spec) for name, spec in variants.items()])


def _variant(path: Path, name: str, spec: Any) -> Recipe:
    where = f"sweep file {path}: variant {name!r}"
    if isinstance(spec, str):
        try:
            return Recipe(name=name, steps=parse_variant(spec).steps)
        except RecipeError as exc:
            raise RecipeError(f"{where}: {exc}") from None
    if not isinstance(spec, dict) or set(spec) != {"steps"} or not isinstance(spec["steps"], list):
        raise RecipeError(f'{where}: give a token string ("prune50+int8") or a table with only steps = [...]')
    steps = []
    for i, fields in enumerate(spec["steps"], 1):
        if not isinstance(fields, dict):
            raise RecipeError(f'{where} step {i}: each step is an inline table like {{ type = "quantize" }}')
        steps.append(build_step(fields, f"{where} step {i}"))
    try:
        return Recipe(name=name, steps=tuple(steps))
    except RecipeError as exc:  # the recipe already names the variant
        raise RecipeError(f"sweep file {path}: {exc}") from None
