"""How every cell is measured: one settings type for the bench command, the Python API and the farm.

Validated once, here. An error names the field (`iterations must be at least 1`), never where the
value came from: the CLI rewrites it with its flag (`--iterations`), the farm's matrix loader with
its file and key (`farm.toml: run.iterations`). Light to import (no numpy, no torch), so the CLI
can take its defaults from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from pocketbench.devices.adb.identity import CORE_CHOICES
from pocketbench.errors import PocketbenchError

if TYPE_CHECKING:
    from pocketbench.measure.adaptive import RepetitionPolicy
    from pocketbench.models.registry import ModelData


@dataclass(frozen=True)
class Problem:
    """One invalid setting: its field, the rule it breaks, and the value given."""

    field: str
    rule: str  # reads after the field's name: "must be at least 1"
    value: Any


class SettingsError(PocketbenchError):
    """Invalid protocol settings; `problems` lists every one, so a caller can name its own source."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__(self.naming(lambda name: name))

    def naming(self, where: Callable[[str], str]) -> str:
        """The problems as one line, each field named by `where` (a CLI flag, a TOML key)."""
        return "; ".join(f"{where(p.field)} {p.rule}" for p in self.problems)


# llama.cpp's llama-bench tests (`--llama-bench`): a prompt of 512 tokens (pp512), 128 generated (tg128).
LLAMA_BENCH = (512, 128)


@dataclass(frozen=True)
class ProtocolSettings:
    """How each cell is measured (stored in the run manifest)."""

    warmup: int = 5
    iterations: int = 50
    min_seconds: float = 0.0
    # None: the device's policy (devices/base.resolve_threads: 1 on the local device, one per
    # pinned core on a phone); 0: the runtime's default; N: N threads.
    threads: int | None = None
    # A phone's cores the runner is pinned to (and, with `threads` None, one thread each): `big` the
    # performance cores (big and prime clusters), `prime` the fastest cluster, `all` every core;
    # None: `big` (devices/adb/identity.py says how clusters are named). This computer ignores it.
    cores: str | None = None
    # Fresh runner processes per cell; None: adaptive (adaptive.py) — at least 3, more until the
    # p50's 95 % CI half-width is within `ci_target` or the cell has spent `cell_budget_s`.
    repetitions: int | None = None
    ci_target: float = 0.02
    cell_budget_s: float = 15.0
    # Calibrated samples: each timed sample is a batch of calls lasting ≥ this (0: single calls).
    batch_min_ms: float = 1.0
    energy_window_s: float = 2.0  # idle window and minimum loop length when energy is measured
    allow_charging: bool = False
    cooldown_timeout_s: float = 120.0
    profile: bool = False  # one more runner process per cell with ETDump on (profile.py)
    profile_iterations: int = 20
    # Generative models (measure/generation.py): a prompt of this many tokens, then this many
    # teacher-forced decode steps per timed generation; `iterations` counts generations.
    prompt_tokens: int = 128
    decode_tokens: int = 64
    # `hf:` checkpoints (models/hf.py): a text file for a language model's prompt and perplexity
    # windows, a folder of images in one folder per label for a classifier's accuracy; None: their
    # defaults (held-out stdlib sources; noise images, no accuracy).
    text: str | None = None
    images: str | None = None

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise SettingsError(problems)
        for f in fields(self):  # 2 from a TOML file is 2.0 s: one type per setting in manifests
            if f.type == "float":
                object.__setattr__(self, f.name, float(getattr(self, f.name)))

    @property
    def policy(self) -> RepetitionPolicy:
        from pocketbench.measure.adaptive import RepetitionPolicy  # numpy: not for `pocketbench --help`

        return RepetitionPolicy(self.repetitions, ci_target=self.ci_target, budget_s=self.cell_budget_s)

    @property
    def model_data(self) -> ModelData:
        """What an `hf:` checkpoint is prompted, scored and sized with (its cache: P + N slots)."""
        from pathlib import Path

        from pocketbench.models.registry import ModelData

        return ModelData(
            text=Path(self.text).expanduser() if self.text else None,
            images=Path(self.images).expanduser() if self.images else None,
            context=self.prompt_tokens + self.decode_tokens,
        )


# Each field's rule: a test on a value of the right type, and what it says when the value fails.
_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "warmup": (lambda v: v >= 0, "cannot be negative"),
    "iterations": (lambda v: v >= 1, "must be at least 1"),
    "min_seconds": (lambda v: v >= 0, "cannot be negative"),
    "threads": (lambda v: v is None or v >= 0, "cannot be negative (0: the runtime's default)"),
    "cores": (lambda v: v is None or v in CORE_CHOICES, f"must be one of {', '.join(CORE_CHOICES)}"),
    "repetitions": (lambda v: v is None or v >= 1, "must be at least 1"),
    "ci_target": (lambda v: 0 < v < 1, "must be a fraction in (0, 1), e.g. 0.02 for ±2 %"),
    "cell_budget_s": (lambda v: v > 0, "must be a positive number of seconds"),
    "batch_min_ms": (lambda v: 0 <= v <= 10_000, "must be in [0, 10000] ms (0: time single calls)"),
    "energy_window_s": (lambda v: v > 0, "must be a positive number of seconds"),
    "cooldown_timeout_s": (lambda v: v >= 0, "cannot be negative"),
    "profile_iterations": (lambda v: v >= 1, "must be at least 1"),
    "prompt_tokens": (lambda v: v >= 1, "must be at least 1"),
    "decode_tokens": (lambda v: v >= 1, "must be at least 1"),
}
# The most of each count and duration a run can carry out (a cell of 2^63 iterations is a typo,
# not a plan): refused where it is given, naming the field and the limit.
LIMITS: dict[str, float] = {
    "warmup": 100_000, "iterations": 1_000_000, "min_seconds": 3600, "threads": 256, "repetitions": 1000,
    "cell_budget_s": 86_400, "energy_window_s": 600, "cooldown_timeout_s": 3600, "profile_iterations": 100_000,
    "prompt_tokens": 1_000_000, "decode_tokens": 1_000_000,
}  # fmt: skip
_TYPES = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "int | None": (int, type(None)),
    "str | None": (str, type(None)),
}


def _problems(settings: ProtocolSettings) -> list[Problem]:
    """Every field of the wrong type or breaking its rule, in field order."""
    problems = []
    for f in fields(settings):
        value = getattr(settings, f.name)
        allowed = _TYPES[str(f.type)]
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            kinds = {"int": "an integer", "float": "a number", "bool": "true or false", "str | None": "a word"}
            kind = kinds.get(str(f.type), "an integer")
            problems.append(Problem(f.name, f"must be {kind}, not {type(value).__name__}", value))
            continue
        test, rule = _RULES.get(f.name, (lambda v: True, ""))
        if not test(value):
            problems.append(Problem(f.name, rule, value))
        elif isinstance(value, (int, float)) and f.name in LIMITS and not value <= LIMITS[f.name]:
            problems.append(Problem(f.name, f"must be at most {int(LIMITS[f.name])}", value))
    return problems
