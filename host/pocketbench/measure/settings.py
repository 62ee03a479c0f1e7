"""How every cell is measured: one settings type for the bench command, the Python API and the farm.

Validated once, here. An error names the field (`iterations must be at least 1`), never where the
value came from: the CLI rewrites it with its flag (`--iterations`), the farm's matrix loader with
its file and key (`farm.toml: run.iterations`). Light to import (no numpy, no torch), so the CLI
can take its defaults from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from pocketbench.devices.adb.identity import CORE_CHOICES
from pocketbench.errors import PocketbenchError

if TYPE_CHECKING:
    from pocketbench.measure.adaptive import RepetitionPolicy


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


def setting(default: Any, help: str, *, flag: str | None = None, bench_only: bool = False) -> Any:
    """A measurement setting: its default and what the CLI, the API and the farm say about it.
    `help` is the `--help` text and the API's documentation; `flag` the CLI option when it is not
    `--` + the name without `_s` (`cell_budget_s` → `--cell-budget`); `bench_only` leaves it out of
    a farm matrix's `[run]` (adaptive repetitions and profiling are for one-off runs)."""
    return field(default=default, metadata={"help": help, "flag": flag, "bench_only": bench_only})


@dataclass(frozen=True)
class ProtocolSettings:
    """How each cell is measured (stored in the run manifest). A field here is a `bench` option,
    an API keyword and a farm `[run]` key at once (`settings_table`): adding a setting is one field,
    plus its rule in `_RULES` (docs/development.md shows one added)."""

    warmup: int = setting(5, "Untimed iterations before timing.")
    iterations: int = setting(50, "Timed iterations per cell.")
    min_seconds: float = setting(0.0, "Keep timing until at least this long.")
    threads: int | None = setting(
        None,
        "Runtime threads (default: the device's policy: 1 on this computer, whose multi-thread timings move with"
        " where the OS places threads; on a phone one per core of --cores. 0: the runtime's default).",
    )
    # `big` the performance cores (big and prime clusters), `prime` the fastest cluster, `all` every core.
    cores: str | None = setting(
        None,
        "Phones: the cores the runner is pinned to with taskset: big (default: the performance cores, big and"
        " prime clusters by cpu_capacity), prime (the fastest cluster) or all. See docs/phones.md.",
    )
    # None: adaptive (adaptive.py) — at least 3, more until the p50's 95 % CI half-width is within
    # `ci_target` or the cell has spent `cell_budget_s`.
    repetitions: int | None = setting(
        None,
        "Fresh runner processes per cell, interleaved across variants (default: at least 3, more until the p50's"
        " 95 % CI is within --ci-target or the cell spent --cell-budget).",
    )
    ci_target: float = setting(
        0.02, "Adaptive repetitions: the p50's 95 % CI half-width to reach, as a fraction.", bench_only=True
    )
    cell_budget_s: float = setting(
        15.0, "Adaptive repetitions: seconds of runner processes per cell at most.", bench_only=True
    )
    batch_min_ms: float = setting(
        1.0, "Time batches of calls lasting at least this long as one sample (0: every call alone)."
    )
    energy_window_s: float = setting(2.0, "Seconds of idle baseline and minimum loop when energy is measured.")
    allow_charging: bool = setting(False, "Report fuel-gauge energy even while the phone charges.")
    cooldown_timeout_s: float = setting(120.0, "Longest wait (s) for the device to cool back to idle before a cell.")
    profile: bool = setting(
        False,
        "Also trace each cell with ETDump: time per op, in and outside XNNPACK, and why.",
        bench_only=True,
    )
    profile_iterations: int = setting(20, "Inferences in each --profile trace.", bench_only=True)
    # Generative models (measure/generation.py): `iterations` counts generations.
    prompt_tokens: int = setting(128, "Generative models: prompt length P (time to first token = prefill of P).")
    decode_tokens: int = setting(
        64, "Generative models: teacher-forced decode steps N per generation (P + N ≤ context)."
    )

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise SettingsError(problems)
        for f in fields(self):  # 2 from a TOML file is 2.0 s: one type per setting in manifests
            if _type_name(f.type) == "float":
                object.__setattr__(self, f.name, float(getattr(self, f.name)))

    @property
    def policy(self) -> RepetitionPolicy:
        from pocketbench.measure.adaptive import RepetitionPolicy  # numpy: not for `pocketbench --help`

        return RepetitionPolicy(self.repetitions, ci_target=self.ci_target, budget_s=self.cell_budget_s)


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


def _type_name(annotation: Any) -> str:
    """A field's type as written ("int | None"), whether the annotation is text or the type itself."""
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))


def _problems(settings: ProtocolSettings) -> list[Problem]:
    """Every field of the wrong type or breaking its rule, in field order."""
    problems = []
    for f in fields(settings):
        value = getattr(settings, f.name)
        allowed = _TYPES[_type_name(f.type)]
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            kinds = {"int": "an integer", "float": "a number", "bool": "true or false", "str | None": "a word"}
            kind = kinds.get(_type_name(f.type), "an integer")
            problems.append(Problem(f.name, f"must be {kind}, not {type(value).__name__}", value))
            continue
        test, rule = _RULES.get(f.name, (lambda v: True, ""))
        if not test(value):
            problems.append(Problem(f.name, rule, value))
        elif isinstance(value, (int, float)) and f.name in LIMITS and not value <= LIMITS[f.name]:
            problems.append(Problem(f.name, f"must be at most {int(LIMITS[f.name])}", value))
    return problems


@dataclass(frozen=True)
class Setting:
    """One row of the settings table: what the CLI, the API and the farm matrix are built from."""

    name: str
    type: Any  # the evaluated annotation (int, float | None, …)
    default: Any
    help: str
    flag: str  # the `bench` option
    bench_only: bool  # not a farm `[run]` key


def settings_table() -> list[Setting]:
    """Every ProtocolSettings field with its metadata, in field order."""
    from typing import get_type_hints

    hints = get_type_hints(ProtocolSettings)
    return [
        Setting(
            f.name,
            hints[f.name],
            f.default,
            f.metadata["help"],
            f.metadata["flag"] or "--" + f.name.removesuffix("_s").replace("_", "-"),
            f.metadata["bench_only"],
        )
        for f in fields(ProtocolSettings)
    ]


def setting_flag(name: str) -> str:
    """The `bench` option that sets `name` (`cell_budget_s` → `--cell-budget`)."""
    return next(s.flag for s in settings_table() if s.name == name)


def farm_keys() -> tuple[str, ...]:
    """The settings a farm matrix's `[run]` table may give."""
    return tuple(s.name for s in settings_table() if not s.bench_only)


def protocol_settings(values: dict[str, Any]) -> ProtocolSettings:
    """Settings from keyword values (the API's, the CLI's): an unknown name is refused by name."""
    known = [f.name for f in fields(ProtocolSettings)]
    unknown = [name for name in values if name not in known]
    if unknown:
        raise PocketbenchError(f"unknown setting(s) {', '.join(unknown)}: the settings are {', '.join(known)}")
    return ProtocolSettings(**values)
