"""What a search is asked for: the objective, the constraints, the budget and where trials live.

Validated here, before any work: every problem is named by its field (`max_accuracy_drop must be
…`); the CLI rewrites the names as its flags. Light to import (no optuna, no torch).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from pocketbench.errors import PocketbenchError
from pocketbench.measure.settings import Problem, ProtocolSettings, SettingsError

# objective → (the row column it minimises, its unit, the factor from the column to that unit)
OBJECTIVES: dict[str, tuple[str, str, float]] = {
    "latency": ("latency_p50_ms", "ms", 1.0),
    "energy": ("energy_mj_per_inference", "mJ", 1.0),
    "size": ("size_bytes", "MB", 1e-6),
}
DEFAULT_TRIALS = 25
# Storages Optuna reaches through SQLAlchemy (a file, or a server several hosts share).
STORAGE_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg2", "postgresql+psycopg", "mysql", "mysql+pymysql")
# The short protocol each trial is measured with: enough to rank recipes, not to publish them
# (the front is measured again with the full default protocol beside the baselines).
TRIAL_PROTOCOL = ProtocolSettings(warmup=2, iterations=20, cell_budget_s=3.0, ci_target=0.05)


@dataclass(frozen=True)
class TuneSettings:
    """A search: maximise accuracy and minimise `objective` under the constraints."""

    objective: str = "latency"
    max_accuracy_drop: float = 1.0  # points below the fp32 model's accuracy
    max_size_mb: float | None = None
    max_latency_ms: float | None = None
    trials: int | None = None  # finished trials in the study (all workers); None with no time: DEFAULT_TRIALS
    # Seconds this invocation may take, the hand-written recipes, the search and the front together:
    # a trial expected to end after it is not started (it is queued for a resume).
    time_s: float | None = None
    seed: int = 0
    storage: str | None = None  # SQLAlchemy URL; None: results/<run-id>/tune.db
    study: str | None = None  # None: "tune" (a study of its own in the run's SQLite file)
    allow_mixed_devices: bool = False
    # Points distillation is credited with when a pruned model is screened before it: a trial
    # whose accuracy before distillation is further below the floor than this is pruned.
    recovery_credit: float = 20.0
    trial_protocol: ProtocolSettings = TRIAL_PROTOCOL
    front_protocol: ProtocolSettings = field(default_factory=ProtocolSettings)
    max_front: int = 8  # front members re-measured (spread over the accuracy range when more)

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise SettingsError(problems)

    @property
    def budget_trials(self) -> int | None:
        return DEFAULT_TRIALS if self.trials is None and self.time_s is None else self.trials

    def to_config(self) -> dict[str, Any]:
        config = asdict(self)
        config["trial_protocol"] = asdict(self.trial_protocol)
        config["front_protocol"] = asdict(self.front_protocol)
        return config


def _problems(s: TuneSettings) -> list[Problem]:
    out = []
    if s.objective not in OBJECTIVES:
        out.append(Problem("objective", f"must be one of {', '.join(OBJECTIVES)}, not {s.objective!r}", s.objective))
    if not _number(s.max_accuracy_drop) or not 0 <= s.max_accuracy_drop <= 100:
        out.append(Problem("max_accuracy_drop", "must be points in [0, 100], e.g. 1", s.max_accuracy_drop))
    for name in ("max_size_mb", "max_latency_ms"):
        value = getattr(s, name)
        if value is not None and (not _number(value) or value <= 0):
            out.append(Problem(name, "must be a positive number", value))
    if s.trials is not None and (isinstance(s.trials, bool) or not isinstance(s.trials, int) or s.trials < 1):
        out.append(Problem("trials", "must be at least 1", s.trials))
    if s.time_s is not None and (not _number(s.time_s) or s.time_s <= 0):
        out.append(Problem("time_s", "must be a positive duration, e.g. 60m", s.time_s))
    if s.storage is not None and s.storage.split(":", 1)[0] not in STORAGE_SCHEMES:
        out.append(Problem("storage", f"must be an SQLAlchemy URL ({', '.join(STORAGE_SCHEMES[:2])}://…)", s.storage))
    if s.study is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", s.study):
        out.append(Problem("study", "must be letters, digits, '.', '_' or '-' (at most 100)", s.study))
    if s.storage is not None and s.study is None:
        out.append(Problem("study", "must be named with a shared storage, so every host joins the same one", None))
    if not _number(s.recovery_credit) or s.recovery_credit < 0:
        out.append(Problem("recovery_credit", "cannot be negative", s.recovery_credit))
    if isinstance(s.max_front, bool) or not isinstance(s.max_front, int) or s.max_front < 1:
        out.append(Problem("max_front", "must be at least 1", s.max_front))
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float:
    """`90s`, `60m`, `1h30m` or plain seconds → seconds."""
    spec = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", spec):
        seconds = float(spec)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)([smh])", spec)
        if not parts or "".join(n + u for n, u in parts) != spec:
            raise PocketbenchError(f"--time {text!r}: give a duration like 90s, 60m or 1h30m")
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise PocketbenchError(f"--time {text!r}: the budget must be longer than zero")
    return seconds
