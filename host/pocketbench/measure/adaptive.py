"""How many runner processes a cell gets: a fixed count, or more until its p50 has settled.

pyperf and Google Benchmark add runs until the estimate is stable; here a cell gets at least
`min_processes` fresh runner processes, then one more per round (rounds interleave the cells, so
drift still hits every variant alike) until the p50's 95 % CI half-width is within `ci_target`
of the p50, or the cell has spent `budget_s` of wall time, or `max_processes` ran. The row says
how many processes ran and why it stopped. Pure of any device: the caller says how to measure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from pocketbench import stats
from pocketbench.errors import PocketbenchError

Cell = TypeVar("Cell")

# Why a cell stopped adding processes (the `repetitions_stop` column).
FIXED, TARGET, BUDGET, MAX_PROCESSES, FAILED = "fixed", "ci_target", "budget", "max_processes", "failed"


@dataclass(frozen=True)
class RepetitionPolicy:
    """`fixed` processes per cell (--repetitions N), or adaptive when it is None."""

    fixed: int | None = None
    min_processes: int = 3
    max_processes: int = 12
    ci_target: float = 0.02  # the p50's 95 % CI half-width, as a fraction of the p50
    budget_s: float = 15.0  # wall time per cell, its processes together

    def __post_init__(self) -> None:
        if self.fixed is not None and self.fixed < 1:
            raise PocketbenchError("--repetitions must be at least 1")
        if not 0 < self.ci_target < 1:
            raise PocketbenchError("--ci-target must be a fraction in (0, 1), e.g. 0.02 for ±2 %")
        if self.budget_s <= 0:
            raise PocketbenchError("--cell-budget must be a positive number of seconds")
        if not 2 <= self.min_processes <= self.max_processes:
            raise PocketbenchError("adaptive repetitions need 2 ≤ min_processes ≤ max_processes")

    def stop(self, groups: Sequence[Sequence[float]], elapsed_s: float) -> str | None:
        """Why a cell with these per-process samples stops now, or None to add a process."""
        done = len(groups)
        if self.fixed is not None:
            return FIXED if done >= self.fixed else None
        if done < self.min_processes:
            return None
        if half_width(groups) <= self.ci_target:
            return TARGET
        if elapsed_s >= self.budget_s:
            return BUDGET
        return MAX_PROCESSES if done >= self.max_processes else None


def half_width(groups: Sequence[Sequence[float]]) -> float:
    """The p50's 95 % CI half-width over the p50 (stats.summarize's CI, process floor included)."""
    summary = stats.summarize(groups)
    return (summary.ci_high - summary.ci_low) / 2 / summary.median if summary.median > 0 else float("inf")


@dataclass
class Tracked(Generic[Cell]):
    """A cell in the loop: its wall time so far and why it stopped (None while it runs)."""

    cell: Cell
    elapsed_s: float = 0.0
    stopped: str | None = None


def repeat_until_settled(
    cells: Sequence[Cell],
    measure: Callable[[Cell, int], bool],
    groups: Callable[[Cell], Sequence[Sequence[float]]],
    policy: RepetitionPolicy,
    clock: Callable[[], float] = time.monotonic,
) -> list[Tracked[Cell]]:
    """Round after round, one more process for every cell still running (`measure(cell, round)`
    returns False when the cell failed and must stop), until each has a reason to stop."""
    tracked = [Tracked(cell) for cell in cells]
    round_ = 0
    while running := [t for t in tracked if t.stopped is None]:
        for entry in running:
            started = clock()
            ok = measure(entry.cell, round_)
            entry.elapsed_s += clock() - started
            entry.stopped = policy.stop(groups(entry.cell), entry.elapsed_s) if ok else FAILED
        round_ += 1
    return tracked
