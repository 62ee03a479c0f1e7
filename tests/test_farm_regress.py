"""Regression verdicts on synthetic histories: real statistics (scipy, ruptures), no fakes."""

import numpy as np
import pandas as pd
import pytest
from pocketbench.farm.matrix import DEFAULT_THRESHOLDS
from pocketbench.farm.regress import IMPROVEMENT, INSUFFICIENT, NO_CHANGE, REGRESSION, last_level_shift, verdicts

RNG_SEED = 20261129


def night(i, latency_ms, rng, size=1_000_000, rss=50_000.0, status="ok", n=40, noise=0.02, model="digits_cnn"):
    samples = rng.normal(latency_ms, latency_ms * noise, n)
    return {
        "run_id": f"night-{i:02d}",
        "started_at": f"2026-11-{i + 1:02d}T02:00:00+00:00",
        "device": "pixel",
        "model": model,
        "variant": "int8",
        "status": status,
        "latency_p50_ms": float(np.median(samples)) if status == "ok" else None,
        "latency_samples_ms": list(samples) if status == "ok" else None,
        "size_bytes": size if status == "ok" else None,
        "peak_rss_kb": rss * rng.normal(1, 0.01) if status == "ok" else None,
    }


def judge(rows, run_id=None, flagged=()):
    frame = pd.DataFrame(rows)
    table = verdicts(frame, run_id or rows[-1]["run_id"], DEFAULT_THRESHOLDS, flagged=flagged)
    return table.set_index("metric")


def test_a_20_percent_slowdown_is_flagged():
    rng = np.random.default_rng(RNG_SEED)
    rows = [night(i, 10.0, rng) for i in range(10)] + [night(10, 12.0, rng)]
    table = judge(rows)
    latency = table.loc["latency_p50_ms"]
    assert latency["verdict"] == REGRESSION
    assert latency["baseline_run"] == "night-09"
    assert latency["change"] == pytest.approx(0.2, abs=0.03)
    assert latency["p_value"] < 1e-6
    assert latency["change_point_run"] == "night-10"
    assert "slower" in latency["detail"]
    assert table.loc["size_bytes", "verdict"] == NO_CHANGE


def test_a_same_speed_rerun_is_not_flagged():
    rng = np.random.default_rng(RNG_SEED + 1)
    rows = [night(i, 10.0, rng) for i in range(10)] + [night(10, 10.0, rng)]
    table = judge(rows)
    assert table.loc["latency_p50_ms", "verdict"] == NO_CHANGE
    assert table.loc["peak_rss_kb", "verdict"] == NO_CHANGE


@pytest.mark.parametrize("seed", range(5))
def test_noise_only_histories_are_never_flagged(seed):
    rng = np.random.default_rng(seed)
    # Noisy nights: per-sample noise 5 %, and a night-to-night level wander of 1 %. (The false
    # alarm rate over many such histories is measured in benchmarks/farm_false_alarms.py.)
    rows = [night(i, 10.0 * rng.normal(1, 0.01), rng, noise=0.05) for i in range(20)]
    for i in range(1, 20):
        table = judge(rows, rows[i]["run_id"])
        assert set(table["verdict"]) <= {NO_CHANGE, INSUFFICIENT}, table[["verdict", "detail"]]


def test_a_flagged_run_is_never_a_baseline_so_the_regression_stays_flagged():
    rng = np.random.default_rng(RNG_SEED + 2)
    rows = [night(i, 10.0, rng) for i in range(6)] + [night(6, 12.0, rng), night(7, 12.0, rng)]
    first = judge(rows[:7])
    assert first.loc["latency_p50_ms", "verdict"] == REGRESSION
    again = judge(rows, flagged={("night-06", "pixel", "digits_cnn", "int8", "latency_p50_ms")})
    assert again.loc["latency_p50_ms", "verdict"] == REGRESSION
    assert again.loc["latency_p50_ms", "baseline_run"] == "night-05"


def test_a_slow_drift_is_caught_by_change_points():
    rng = np.random.default_rng(RNG_SEED + 3)
    # +3.5 % per night from night 8 on: no single night crosses the 5 % threshold.
    levels = [10.0] * 8 + [10.0 * 1.035**k for k in range(1, 4)]
    rows = [night(i, level, rng, noise=0.01) for i, level in enumerate(levels)]
    latency = judge(rows).loc["latency_p50_ms"]
    assert latency["change"] < 0.05
    assert latency["verdict"] == REGRESSION
    assert latency["level_change"] >= 0.05


def test_size_and_memory_growth_are_flagged_bigger_and_hungrier():
    rng = np.random.default_rng(RNG_SEED + 4)
    rows = [night(i, 10.0, rng) for i in range(6)] + [night(6, 10.0, rng, size=1_100_000, rss=60_000.0)]
    table = judge(rows)
    assert table.loc["size_bytes", "verdict"] == REGRESSION
    assert "bigger" in table.loc["size_bytes", "detail"]
    assert table.loc["peak_rss_kb", "verdict"] == REGRESSION
    assert "hungrier" in table.loc["peak_rss_kb", "detail"]
    smaller = judge([*rows[:6], night(6, 10.0, rng, size=800_000)])
    assert smaller.loc["size_bytes", "verdict"] == IMPROVEMENT


def test_insufficient_data_cases():
    rng = np.random.default_rng(RNG_SEED + 5)
    only = judge([night(0, 10.0, rng)])
    assert set(only["verdict"]) == {INSUFFICIENT}
    assert "no earlier good run" in only.loc["latency_p50_ms", "detail"]
    failed = judge([night(0, 10.0, rng), night(1, 10.0, rng, status="crashed")])
    assert failed.loc["latency_p50_ms", "verdict"] == INSUFFICIENT
    few = judge([night(0, 10.0, rng, n=3), night(1, 20.0, rng, n=3)])
    assert few.loc["latency_p50_ms", "verdict"] == INSUFFICIENT
    # Peak memory has one number per run: no verdict until change points have history.
    short = judge([night(0, 10.0, rng), night(1, 10.0, rng, rss=90_000.0)])
    assert short.loc["peak_rss_kb", "verdict"] == INSUFFICIENT


def test_failed_runs_are_skipped_when_choosing_the_baseline():
    rng = np.random.default_rng(RNG_SEED + 6)
    rows = [night(0, 10.0, rng), night(1, 10.0, rng), night(2, 10.0, rng, status="device_error"), night(3, 12, rng)]
    assert judge(rows).loc["latency_p50_ms", "baseline_run"] == "night-01"


def test_level_shift_finds_a_step_and_nothing_in_flat_noise():
    rng = np.random.default_rng(RNG_SEED + 7)
    step = np.r_[rng.normal(10, 0.1, 12), rng.normal(12, 0.1, 3)]
    start, change = last_level_shift(step)
    assert start == 12
    assert change == pytest.approx(0.2, abs=0.02)
    assert last_level_shift(rng.normal(10, 0.1, 20)) is None
    assert last_level_shift(np.array([10.0, 10.0, 12.0])) is None  # too short to say


def test_emulated_and_real_timings_are_never_compared():
    rng = np.random.default_rng(RNG_SEED + 7)
    rows = [night(i, 10.0, rng) for i in range(6)]
    # The same device name, now an emulated arm64 phone 100× slower: not a regression, no verdict.
    emulated = night(6, 1000.0, rng) | {"device_emulated": True, "device_emulation": "qemu-user aarch64 on x86_64"}
    table = judge([*rows, emulated])
    latency = table.loc["latency_p50_ms"]
    assert latency["verdict"] == INSUFFICIENT
    assert "timed real, this one emulated (qemu-user aarch64 on x86_64): never compared" in latency["detail"]
    assert table.loc["peak_rss_kb", "verdict"] == INSUFFICIENT
    assert table.loc["size_bytes", "verdict"] == NO_CHANGE  # the file is the same whatever runs it
    # Two emulated nights compare with each other as usual.
    again = night(7, 1200.0, rng) | {"device_emulated": True, "device_emulation": "qemu-user aarch64 on x86_64"}
    assert judge([*rows, emulated, again]).loc["latency_p50_ms", "verdict"] != INSUFFICIENT


def test_change_points_are_those_ruptures_finds():
    """pelt_l2 is ruptures' PELT (l2, min_size 1, jump 1) computed in numpy: same breakpoints on
    flat, stepped, drifting and noisy histories of every length the verdicts use."""
    import ruptures
    from pocketbench.farm.regress import pelt_l2

    rng = np.random.default_rng(11)
    for trial in range(300):
        n = int(rng.integers(1, 31))
        level = float(rng.choice([0.5, 10.0, 1e6]))
        series = level * (1 + rng.normal(0, 0.01, n))
        if trial % 3 == 1:
            series[n // 2 :] *= 1.1
        if trial % 5 == 2:
            series = np.full(n, level)
        penalty = 4.0 * (level * float(rng.choice([0.001, 0.005, 0.02]))) ** 2 * np.log(max(n, 2))
        expected = ruptures.Pelt(model="l2", min_size=1, jump=1).fit(series.reshape(-1, 1)).predict(pen=penalty)
        assert pelt_l2(series, penalty) == expected, (trial, series, penalty)


def test_a_phone_moved_to_another_host_or_model_starts_a_new_history_unless_told_otherwise():
    rng = np.random.default_rng(RNG_SEED + 7)
    rows = [{**night(i, 10.0, rng), "device_model": "Google Pixel 8", "device_host": "lab-a"} for i in range(10)]
    moved = {**night(10, 12.0, rng), "device_model": "Google Pixel 8", "device_host": "lab-b"}
    match = ("device_model", "device_host")
    frame = pd.DataFrame([*rows, moved])
    table = verdicts(frame, "night-10", DEFAULT_THRESHOLDS, match=match).set_index("metric")
    assert set(table["verdict"]) == {INSUFFICIENT}
    assert (
        "host 'lab-a', this one on 'Google Pixel 8', 'lab-b': never compared" in table.loc["latency_p50_ms", "detail"]
    )
    # Told to compare across hosts ([regression] match = ["model"]), the slowdown is found.
    across = verdicts(frame, "night-10", DEFAULT_THRESHOLDS, match=("device_model",)).set_index("metric")
    assert across.loc["latency_p50_ms", "verdict"] == REGRESSION
    swapped = pd.DataFrame([*rows, {**moved, "device_host": "lab-a", "device_model": "Google Pixel 7"}])
    other = verdicts(swapped, "night-10", DEFAULT_THRESHOLDS, match=match).set_index("metric")
    assert other.loc["latency_p50_ms", "verdict"] == INSUFFICIENT
    # Nights before hosts were recorded and phones of this computer have no host: they match each other.
    old = pd.DataFrame([{**r, "device_host": None} for r in rows] + [{**moved, "device_host": None}])
    assert (
        verdicts(old, "night-10", DEFAULT_THRESHOLDS, match=match).set_index("metric").loc["latency_p50_ms", "verdict"]
        == REGRESSION
    )
