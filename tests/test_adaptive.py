"""The adaptive repetition loop on synthetic samplers: stops at the CI target when processes
agree, at the budget when they do not, at a fixed count when asked; speed states are named."""

from __future__ import annotations

import numpy as np
import pytest
from pocketbench import stats
from pocketbench.errors import PocketbenchError
from pocketbench.measure.adaptive import (
    BUDGET,
    FAILED,
    FIXED,
    TARGET,
    RepetitionPolicy,
    half_width,
    repeat_until_settled,
)


class SyntheticCell:
    """Each `measure` adds one process of 50 samples whose p50 is drawn around `center` with a
    process-to-process CV of `spread`, and takes `seconds` of a fake clock."""

    def __init__(self, clock: list[float], center: float, spread: float, seconds: float = 1.0, seed: int = 0) -> None:
        self.clock, self.center, self.spread, self.seconds = clock, center, spread, seconds
        self.rng = np.random.default_rng(seed)
        self.processes: list[list[float]] = []

    def measure(self, _round: int) -> bool:
        p50 = self.center * (1 + self.spread * self.rng.standard_normal())
        self.processes.append(list(p50 * (1 + 0.01 * self.rng.standard_normal(50))))
        self.clock[0] += self.seconds
        return True


def run(cells: list[SyntheticCell], policy: RepetitionPolicy, clock: list[float]):
    return repeat_until_settled(cells, lambda c, r: c.measure(r), lambda c: c.processes, policy, lambda: clock[0])


def test_stable_processes_stop_at_the_ci_target() -> None:
    clock = [0.0]
    cell = SyntheticCell(clock, center=1.0, spread=0.003)
    (entry,) = run([cell], RepetitionPolicy(), clock)
    assert entry.stopped == TARGET and len(cell.processes) == 3  # the minimum already settles it
    assert half_width(cell.processes) <= 0.02


def test_moderately_noisy_processes_add_processes_until_the_target() -> None:
    clock = [0.0]
    cell = SyntheticCell(clock, center=1.0, spread=0.03, seed=4)
    (entry,) = run([cell], RepetitionPolicy(budget_s=1000, max_processes=40), clock)
    assert entry.stopped == TARGET and len(cell.processes) > 3
    assert half_width(cell.processes) <= 0.02 < half_width(cell.processes[:-1])


def test_noisy_processes_stop_at_the_budget() -> None:
    clock = [0.0]
    cell = SyntheticCell(clock, center=1.0, spread=0.3, seconds=2.0)
    (entry,) = run([cell], RepetitionPolicy(budget_s=9.0), clock)
    assert entry.stopped == BUDGET and len(cell.processes) == 5 and entry.elapsed_s == pytest.approx(10.0)
    assert half_width(cell.processes) > 0.02


def test_cells_are_interleaved_and_stop_independently() -> None:
    clock, order = [0.0], []
    calm, noisy = SyntheticCell(clock, 1.0, 0.003), SyntheticCell(clock, 1.0, 0.3, seed=1)

    def measure(cell: SyntheticCell, r: int) -> bool:
        order.append(cell is calm)
        return cell.measure(r)

    tracked = repeat_until_settled(
        [calm, noisy], measure, lambda c: c.processes, RepetitionPolicy(budget_s=6.0), lambda: clock[0]
    )
    assert order[:6] == [True, False] * 3  # fp32 int8 fp32 int8 …
    assert [t.stopped for t in tracked] == [TARGET, BUDGET] and len(noisy.processes) == 6


def test_fixed_count_and_failures() -> None:
    clock = [0.0]
    cell = SyntheticCell(clock, 1.0, 0.3)
    assert run([cell], RepetitionPolicy(fixed=2), clock)[0].stopped == FIXED and len(cell.processes) == 2
    tracked = repeat_until_settled([cell], lambda c, r: False, lambda c: c.processes, RepetitionPolicy())
    assert tracked[0].stopped == FAILED


@pytest.mark.parametrize("bad", [{"fixed": 0}, {"ci_target": 0}, {"budget_s": -1}, {"min_processes": 1}])
def test_bad_policies_are_one_clear_error(bad: dict) -> None:
    with pytest.raises(PocketbenchError):
        RepetitionPolicy(**bad)


def test_bimodal_processes_give_the_two_modes_and_their_shares() -> None:
    rng = np.random.default_rng(2)
    speeds = [0.018, 0.018, 0.027, 0.018, 0.027]
    groups = [list(s * (1 + 0.005 * rng.standard_normal(50))) for s in speeds]
    summary = stats.summarize(groups)
    (slow_p50, slow_n), (fast_p50, fast_n) = sorted(summary.modes, key=lambda m: -m[0])
    assert (fast_n, slow_n) == (3, 2)
    assert fast_p50 == pytest.approx(0.018, rel=0.01) and slow_p50 == pytest.approx(0.027, rel=0.01)
    reason = next(r for r in summary.unstable_reasons if r.startswith("processes settle at two speeds"))
    assert "(3 of 5)" in reason and "(2 of 5)" in reason


def test_unimodal_processes_give_no_modes() -> None:
    rng = np.random.default_rng(3)
    groups = [list(1.0 + 0.02 * rng.standard_normal() + 0.01 * rng.standard_normal(50)) for _ in range(8)]
    assert stats.summarize(groups).modes == ()
