"""Recipes: named, serializable pipelines of compression steps.

Every step is a frozen dataclass validated on construction (ValueError, never assert) and
serialized as `{"_type", "_version", "_data"}` so results store the full recipe rather than a
name to be parsed later. Variant names on the command line are `+`-joined step tokens
(`fp32`, `int8`, `int8-dynamic`, ...); each token maps to a step in `TOKENS`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from pocketbench.errors import PocketbenchError

STEP_TYPES: dict[str, type[Step]] = {}


class RecipeError(PocketbenchError, ValueError):
    """A recipe or step that cannot be built as written."""


class Step:
    """Base of every compression step. Subclasses are frozen dataclasses."""

    VERSION: ClassVar[int] = 1
    # Steps that rewrite the exported graph (quantization) must come after module-level ones.
    graph_level: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        STEP_TYPES[cls.__name__] = cls

    def to_dict(self) -> dict[str, Any]:
        return {"_type": type(self).__name__, "_version": self.VERSION, "_data": dataclasses.asdict(self)}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Step:
        cls = STEP_TYPES.get(data.get("_type", ""))
        if cls is None:
            raise RecipeError(f"unknown compression step {data.get('_type')!r} in a stored recipe")
        if data.get("_version") != cls.VERSION:
            raise RecipeError(f"{cls.__name__} v{data.get('_version')} cannot be read by v{cls.VERSION}")
        return cls(**data["_data"])


QUANT_SCHEMES = ("int8", "int8-dynamic")
OBSERVERS = ("minmax",)


@dataclass(frozen=True)
class Quantize(Step):
    """PT2E quantization with the XNNPACK quantizer (symmetric int8 weights)."""

    graph_level: ClassVar[bool] = True

    scheme: str = "int8"  # int8 (static, calibrated) | int8-dynamic (activations at run time)
    per_channel: bool = True
    observer: str = "minmax"
    calibration_batches: int = 64

    def __post_init__(self) -> None:
        if self.scheme not in QUANT_SCHEMES:
            raise RecipeError(f"quantize: scheme {self.scheme!r} is not one of {', '.join(QUANT_SCHEMES)}")
        if self.observer not in OBSERVERS:
            raise RecipeError(f"quantize: observer {self.observer!r} is not one of {', '.join(OBSERVERS)}")
        if self.calibration_batches < 1:
            raise RecipeError("quantize: calibration_batches must be at least 1")


@dataclass(frozen=True)
class Recipe:
    """A named variant: the ordered steps that turn the fp32 model into it."""

    name: str
    steps: tuple[Step, ...] = ()

    def __post_init__(self) -> None:
        seen_graph = False
        for step in self.steps:
            if seen_graph and not step.graph_level:
                raise RecipeError(f"variant {self.name!r}: {type(step).__name__} must come before quantization")
            seen_graph = seen_graph or step.graph_level
        if sum(isinstance(s, Quantize) for s in self.steps) > 1:
            raise RecipeError(f"variant {self.name!r}: quantize appears more than once")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "steps": [s.to_dict() for s in self.steps]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Recipe:
        return Recipe(name=data["name"], steps=tuple(Step.from_dict(s) for s in data["steps"]))

    @staticmethod
    def from_json(text: str) -> Recipe:
        return Recipe.from_dict(json.loads(text))


# Variant-name tokens → the step each stands for. `fp32` stands for no step at all.
TOKENS: dict[str, Callable[[], Step | None]] = {
    "fp32": lambda: None,
    "int8": lambda: Quantize(scheme="int8"),
    "int8-dynamic": lambda: Quantize(scheme="int8-dynamic"),
    "int8-per-tensor": lambda: Quantize(scheme="int8", per_channel=False),
}


def parse_variant(name: str) -> Recipe:
    """`int8` or `a+b+c` → Recipe; unknown tokens name the known ones."""
    steps = []
    for token in name.strip().split("+"):
        make = TOKENS.get(token.strip())
        if make is None:
            known = ", ".join(sorted(TOKENS))
            raise RecipeError(f"unknown variant {name!r}: token {token!r} is not one of {known} (join with +)")
        step = make()
        if step is not None:
            steps.append(step)
    return Recipe(name=name.strip(), steps=tuple(steps))


def parse_variants(spec: str) -> list[Recipe]:
    """Comma-separated variant names → recipes (duplicates rejected)."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise RecipeError("no variants given: use e.g. --variants fp32,int8")
    if len(set(names)) != len(names):
        raise RecipeError(f"variant list {spec!r} names a variant twice")
    return [parse_variant(n) for n in names]
