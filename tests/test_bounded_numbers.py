"""Numbers that can exist: a latency's CI never reaches below zero however the processes
disagree, and too few samples give no CI (the row says why) rather than an interval the data
cannot support. Energy's side of the same rule is in test_energy_emulated.py."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from pocketbench import stats
from pocketbench.measure.rows import latency_columns
from pocketbench.runner.process import failed_report
from pocketbench.runner.report import RunnerReport
from pocketbench.runner.schema import RunnerStatus


def test_three_disagreeing_processes_give_a_positive_ci():
    """A user's GRU model: three processes at 0.9, 1.4 and 6.1 ms. The t interval of their
    medians was [-1.361–6.350] ms; the reported CI stays above zero and still covers them."""
    rng = np.random.default_rng(1)
    groups = [list(c * (1 + 0.01 * rng.standard_normal(30))) for c in (0.9, 1.4, 6.1)]
    summary = stats.summarize(groups)
    assert 0 < summary.ci_low <= 0.9 and summary.ci_high >= 6.1 * 0.99, (summary.ci_low, summary.ci_high)
    assert any("CI" in r for r in summary.unstable_reasons)


def test_two_input_model_p50_ci_stays_positive():
    """Short calls whose processes disagree: −0.020 ms before."""
    groups = [[0.011] * 12, [0.012] * 12, [0.041] * 12]
    low, high = stats.summarize(groups).ci_low, stats.summarize(groups).ci_high
    assert 0 < low < 0.012 and high >= 0.041


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.floats(min_value=1e-4, max_value=1e4, allow_nan=False), min_size=1, max_size=8),
        min_size=1,
        max_size=5,
    )
)
def test_every_latency_ci_is_positive_or_absent(groups):
    summary = stats.summarize(groups)
    if sum(len(g) for g in groups) < stats.MIN_CI_SAMPLES:
        assert math.isnan(summary.ci_low) and math.isnan(summary.ci_high)
        assert any("too few for a 95% CI" in r for r in summary.unstable_reasons)
    else:
        assert 0 < summary.ci_low <= summary.median <= summary.ci_high


def _report(latencies_ms: list[float]) -> RunnerReport:
    """A finished runner report with these per-call times (the rest as a failed report leaves it)."""
    empty = failed_report(RunnerStatus.OK, "", "native-runner")
    return replace(
        empty,
        error=None,
        runtime_version="x",
        threads=1,
        program_load_ms=1.0,
        method_load_ms=1.0,
        first_inference_ms=1.0,
        iterations_ns=[int(v * 1e6) for v in latencies_ms],
    )


def test_too_few_samples_give_no_ci_and_say_so():
    """Three timed calls: no 95 % interval of a median exists; the row has none and says why."""
    columns = latency_columns([_report([1.0, 1.1, 1.2])])
    assert math.isnan(columns["latency_p50_ci_low_ms"]) and math.isnan(columns["latency_p50_ci_high_ms"])
    assert columns["latency_p50_ci_halfwidth"] is None
    assert "3 samples: too few for a 95% CI of the p50" in columns["unstable_reason"]
    enough = latency_columns([_report([1.0, 1.1, 1.2, 1.0, 1.05, 1.15])])
    assert 0 < enough["latency_p50_ci_low_ms"] <= enough["latency_p50_ci_high_ms"]
