"""A run's plan, stated before it starts: every name checked, how many cells, and about how long
they will take. Nothing here imports torch, so a mistyped name is answered at once.

The estimate is built from what is known here: an artifact already in the cache costs no export;
a cell measured in an earlier run took about as long as its recorded figures say (its p50 over the
protocol's calls, its load time, its export time); anything never seen gets the protocol's own
bound (the adaptive cell budget, or the fixed repetitions' minimum time). It is a plan, not a
promise: the line says how many cells it knew from earlier runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pocketbench.compress.recipe import Recipe, parse_variant
from pocketbench.errors import PocketbenchError, first_line, shown
from pocketbench.measure.settings import ProtocolSettings
from pocketbench.models.registry import resolve
from pocketbench.names import NAME_RULE, name_problem, slug
from pocketbench.paths import cache_dir
from pocketbench.results.cell_status import CellStatus

# Above either of these, a run started from a terminal waits for --yes: a typo in a list should
# cost a second, not an afternoon. Scripts (no terminal) are not asked.
CONFIRM_CELLS = 100
CONFIRM_SECONDS = 30 * 60
# What a cell costs when nothing is known about it: a first export of a small model, and the
# start of one runner process (spawn, load, warm-up) on this computer or a phone.
UNKNOWN_EXPORT_S = 20.0
PROCESS_OVERHEAD_S = 0.5
# The adaptive loop's least number of processes (measure/adaptive.py's minimum).
MIN_PROCESSES = 3


@dataclass(frozen=True)
class Plan:
    cells: int
    seconds: float
    known: int  # cells whose figures came from an earlier run
    cached: int  # (model, variant) artifacts already in the cache

    @property
    def big(self) -> bool:
        return self.cells > CONFIRM_CELLS or self.seconds > CONFIRM_SECONDS

    @property
    def duration(self) -> str:
        """`8 min`, `2.5 h`."""
        return _duration(self.seconds)

    def describe(self) -> str:
        """`plan: 12 cells, about 8 min (4 measured in earlier runs, 6 artifacts cached)`."""
        return (
            f"plan: {self.cells} cell(s), about {self.duration} "
            f"({self.known} measured in earlier runs, {self.cached} artifact(s) cached)"
        )


def estimate(
    cells: Sequence[tuple[str, str, str | None]],
    settings: ProtocolSettings,
    results: Path,
    cache: Path | None = None,
) -> Plan:
    """The plan for `cells` as (model, variant, device or None when not known yet)."""
    earlier = _earlier_rows(results)
    artifacts = cache_dir() / "artifacts" if cache is None else cache / "artifacts"
    built: dict[tuple[str, str], bool] = {}
    seconds, known = 0.0, 0
    for model, variant, device in cells:
        pair = (model, variant)
        if pair not in built:
            built[pair] = any(artifacts.glob(f"{slug(model)}-{slug(variant)}-*/model.pte"))
            seconds += 0.0 if built[pair] else _export_seconds(earlier.get(pair))
        row = earlier.get((model, variant, device)) if device is not None else None
        row = row or earlier.get(pair)
        known += row is not None
        seconds += measure_seconds(row, settings)
    return Plan(len(cells), seconds, known, sum(built.values()))


def _earlier_rows(results: Path) -> dict[tuple[str, ...], dict[str, object]]:
    """The last ok row of each (model, variant, device) and (model, variant) in earlier runs;
    empty when there are none or they cannot be read (an estimate never stops a run)."""
    try:
        from pocketbench.results.history import load_history

        frame = load_history(results)
    except Exception:  # a damaged results folder is history's to report, not the plan's
        return {}
    if frame.empty or "status" not in frame:
        return {}
    rows: dict[tuple[str, ...], dict[str, object]] = {}
    for row in frame[frame["status"] == CellStatus.OK].to_dict("records"):
        model, variant, device = str(row["model"]), str(row["variant"]), str(row["device"])
        rows[(model, variant, device)] = rows[(model, variant)] = row
    return rows


def _export_seconds(row: dict[str, object] | None) -> float:
    if row is None:
        return UNKNOWN_EXPORT_S
    total = sum(_number(row.get(k)) for k in ("compress_seconds", "export_seconds"))
    return total or UNKNOWN_EXPORT_S


def measure_seconds(row: dict[str, object] | None, settings: ProtocolSettings) -> float:
    """One cell's runner processes: each times warm-up and iterations (at least min_seconds)."""
    processes = settings.repetitions or MIN_PROCESSES
    if row is None:
        if settings.repetitions is None:
            return settings.cell_budget_s  # adaptive: it stops at its budget at the latest
        return processes * (settings.min_seconds + PROCESS_OVERHEAD_S + 1.0)
    per_call_s = _number(row.get("latency_p50_ms")) / 1e3
    loop_s = max(settings.min_seconds, (settings.warmup + settings.iterations) * per_call_s)
    process_s = loop_s + _number(row.get("load_ms")) / 1e3 + PROCESS_OVERHEAD_S
    observed = _number(row.get("repetitions")) if settings.repetitions is None else 0.0
    return max(processes, observed) * process_s


def _number(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) and number > 0 else 0.0


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# What one run may be asked for: more is a mistake (a generated list gone wrong), refused at once.
MAX_MODELS = 1_000
MAX_VARIANTS = 1_000
MAX_MODEL_REF = 1_024  # a built-in name, file.py:factory or module:factory


def check_names(models: Sequence[str], variants: Sequence[str | Recipe]) -> None:
    """Resolve every model and parse every variant before any device work: one error lists
    every bad name (a factory that raises when called is still a failed row, found later).
    A variant's name becomes part of file names and rows, so it follows the run-id rule."""
    if len(models) > MAX_MODELS or len(variants) > MAX_VARIANTS:
        raise PocketbenchError(
            f"{len(models)} models × {len(variants)} variants: the limit is {MAX_MODELS} models and"
            f" {MAX_VARIANTS} variants per run; split it"
        )
    problems = []
    for name in dict.fromkeys(models):
        if len(name) > MAX_MODEL_REF:
            problems.append(f"model {shown(name)} is over {MAX_MODEL_REF} characters")
            continue
        try:
            resolve(name)
        except PocketbenchError as exc:
            problems.append(first_line(exc))
    for variant in dict.fromkeys(v if isinstance(v, str) else v.name for v in variants):
        if (problem := name_problem(variant)) is not None:
            problems.append(f"variant {shown(variant)}: {problem} ({NAME_RULE})")
            continue
        if not any(isinstance(v, Recipe) and v.name == variant for v in variants):
            try:
                parse_variant(variant)
            except PocketbenchError as exc:
                problems.append(first_line(exc))
    if problems:
        raise PocketbenchError(f"{len(problems)} bad name(s), nothing was run: " + " | ".join(problems))
