"""stats.py on fixed samples against scipy/numpy reference values."""

import numpy as np
import pytest
from pocketbench import stats
from scipy.stats import bootstrap, mannwhitneyu, median_abs_deviation, variation

RNG = np.random.default_rng(1234)
# A skewed latency-like sample: 3 ms with a lognormal tail.
SAMPLE = list(3.0 * RNG.lognormal(0.0, 0.05, size=200))


def test_summary_matches_numpy():
    s = stats.summarize(SAMPLE)
    data = np.array(SAMPLE)
    assert s.median == pytest.approx(np.median(data))
    assert s.p90 == pytest.approx(np.percentile(data, 90))
    assert s.p99 == pytest.approx(np.percentile(data, 99))
    assert s.cv == pytest.approx(variation(data, ddof=1))
    assert s.n == 200 and s.repetitions == 1 and s.repetition_cv is None


def test_median_ci_agrees_with_scipy_percentile_bootstrap():
    low, high = stats.median_ci(SAMPLE)
    ref = bootstrap((np.array(SAMPLE),), np.median, method="percentile", n_resamples=4000, random_state=7)
    width = ref.confidence_interval.high - ref.confidence_interval.low
    assert low == pytest.approx(ref.confidence_interval.low, abs=0.2 * width)
    assert high == pytest.approx(ref.confidence_interval.high, abs=0.2 * width)
    assert low < np.median(SAMPLE) < high


def test_bootstrap_is_seeded():
    assert stats.median_ci(SAMPLE, seed=3) == stats.median_ci(SAMPLE, seed=3)


def test_disagreeing_repetitions_widen_the_ci_and_are_flagged():
    agreeing = [SAMPLE[:70], SAMPLE[70:140], SAMPLE[140:]]
    drifting = [[v * f for v in group] for group, f in zip(agreeing, (1.0, 1.15, 0.9), strict=True)]
    lo_a, hi_a = stats.median_ci(agreeing)
    lo_d, hi_d = stats.median_ci(drifting)
    assert hi_d - lo_d > 2 * (hi_a - lo_a)
    summary = stats.summarize(drifting)
    assert summary.repetition_cv == pytest.approx(variation([np.median(g) for g in drifting], ddof=1))
    assert any("repetitions" in r for r in summary.unstable_reasons)
    assert not stats.summarize(agreeing).unstable


def test_unstable_says_why():
    spread = list(np.linspace(0.6, 1.4, 40))
    assert any(r.startswith("robust CV") for r in stats.unstable_reasons(spread))
    assert any(r.startswith("min") for r in stats.unstable_reasons([1.0] * 9 + [0.3]))
    assert stats.unstable_reasons([0.05] * 10) == ("calls under 0.1 ms: timer and scheduler noise dominate",)
    assert stats.unstable_reasons([5.0, 5.1, 4.9, 5.0, 5.05, 4.95]) == ()


def test_robust_cv_matches_scipys_normal_scaled_mad():
    data = np.array(SAMPLE)
    assert stats.robust_cv(data) == pytest.approx(median_abs_deviation(data, scale="normal") / np.median(data))
    normal = np.random.default_rng(5).normal(10.0, 1.0, 200_000)
    assert stats.robust_cv(normal) == pytest.approx(0.1, rel=0.01)  # the CV, for normal data


def test_preempted_calls_are_a_tail_note_not_instability():
    """Three preemptions in 600 calls: the sample CV passes pyperf's 10 % line, the p50 does not move."""
    rng = np.random.default_rng(8)
    calm = 1.0 + 0.01 * rng.standard_normal(600)
    preempted = np.concatenate([calm[:597], [4.0, 5.0, 6.0]])
    assert stats.cv(preempted) > stats.UNSTABLE_SPREAD
    summary = stats.summarize([preempted[:300], preempted[300:]])
    assert summary.median == pytest.approx(np.median(calm), rel=0.002)
    assert not summary.unstable, summary.unstable_reasons
    assert summary.tail_note == "3 of 600 samples over 2× the p50 (max 6 ms, 6.0×)"
    assert stats.tail_note(calm) is None


def test_a_p50_whose_ci_stays_wide_is_flagged_with_its_cause():
    """Three processes a quarter apart: the CI (floored by the processes' t interval) is far
    wider than ±5 %, and the reason names the processes' disagreement."""
    rng = np.random.default_rng(9)
    groups = [list(c * (1 + 0.005 * rng.standard_normal(100))) for c in (1.0, 1.25, 1.1)]
    summary = stats.summarize(groups)
    half = (summary.ci_high - summary.ci_low) / 2 / summary.median
    assert half > stats.UNSTABLE_CI
    assert summary.unstable_reasons[0] == f"p50's 95% CI ±{100 * half:.0f}% > ±5%"
    assert any(r.startswith("repetitions' p50 differ") for r in summary.unstable_reasons)


def test_mann_whitney_matches_scipy():
    a, b = SAMPLE[:100], [v * 1.1 for v in SAMPLE[100:]]
    assert stats.mann_whitney_p(a, b) == pytest.approx(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def test_a_real_speedup_is_significant_with_a_ci_around_it():
    fast = [v / 2 for v in SAMPLE[100:]]
    result = stats.speedup(SAMPLE[:100], fast)
    assert result.significant
    assert result.ci_low < result.ratio < result.ci_high
    assert result.ratio == pytest.approx(np.median(SAMPLE[:100]) / np.median(fast))
    assert result.label() == f"{result.ratio:.2f}×"


def test_a_variant_against_itself_is_not_significant():
    same = stats.speedup(SAMPLE, SAMPLE)
    assert not same.significant and same.ratio == 1.0 and same.label() == "n.s."
    # Two independent runs of the same variant: same distribution, different draws.
    other = list(3.0 * np.random.default_rng(99).lognormal(0.0, 0.05, size=200))
    assert not stats.speedup(SAMPLE, other).significant


def test_drift_between_repetitions_is_not_a_speedup():
    base = [SAMPLE[:70], SAMPLE[70:140], SAMPLE[140:]]
    # A 3 % "speedup" that is really repetition-to-repetition drift of ±10 %.
    variant = [[v / 1.03 * f for v in g] for g, f in zip(base, (1.1, 0.9, 1.0), strict=True)]
    assert not stats.speedup(base, variant).significant


def test_no_samples_is_an_error():
    with pytest.raises(ValueError, match="at least one sample"):
        stats.summarize([])


def test_a_huge_group_is_resampled_through_its_quantiles_and_the_ci_is_not_narrower():
    """A 2 s energy loop of a 10 µs model: 300 000 samples must not need 300 000 × 2000 indices."""
    rng = np.random.default_rng(3)
    huge = rng.lognormal(mean=0.0, sigma=0.1, size=300_000)
    low, high = stats.median_ci(huge)
    assert low < np.median(huge) < high
    # Never narrower than the full sample's CI (which scipy can compute here with a few replicates).
    full = bootstrap((huge,), np.median, n_resamples=50, method="percentile", random_state=0).confidence_interval
    assert high - low >= 0.9 * (full.high - full.low)
    assert stats.speedup([huge[:150_000]], [huge[150_000:]]).significant is False


def test_process_interval_is_scipys_t_interval_of_the_log_process_medians() -> None:
    from scipy import stats as scipy_stats

    rng = np.random.default_rng(5)
    groups = [list(c + 0.01 * rng.standard_normal(40)) for c in (1.0, 1.04, 0.97, 1.02)]
    logs = np.log([float(np.median(g)) for g in groups])
    low, high = scipy_stats.t.interval(0.95, len(logs) - 1, loc=np.mean(logs), scale=scipy_stats.sem(logs))
    assert stats.process_interval(groups) == pytest.approx((np.exp(low), np.exp(high)), rel=1e-12)
    assert stats.process_interval(groups[:1]) is None


def test_ci_is_never_narrower_than_the_processes_disagreement() -> None:
    """Three processes, two at one speed: the bootstrap alone lands most replicates on the
    majority; the reported CI still spans the processes' t interval."""
    rng = np.random.default_rng(6)
    groups = [list(c * (1 + 0.002 * rng.standard_normal(200))) for c in (1.0, 1.0, 1.3)]
    low, high = stats.process_interval(groups)
    summary = stats.summarize(groups)
    assert summary.ci_low <= low and summary.ci_high >= high
    boot_low, boot_high = stats.median_ci(groups)
    assert high - low > boot_high - boot_low  # the floor is what widened it here


def test_batched_short_calls_are_not_flagged_as_timer_noise() -> None:
    rng = np.random.default_rng(7)
    samples = list(0.02 * (1 + 0.01 * rng.standard_normal(100)))
    assert any("timer and scheduler" in r for r in stats.unstable_reasons(samples))
    assert not stats.unstable_reasons(samples, batched=True)


def _reference_hierarchical_medians(groups, n_boot, rng):
    """The hierarchical bootstrap written plainly, one replicate at a time."""
    replicates = []
    for _ in range(n_boot):
        chosen = rng.integers(0, len(groups), size=len(groups))
        drawn = [groups[g][rng.integers(0, len(groups[g]), size=len(groups[g]))] for g in chosen]
        replicates.append(np.median(np.concatenate(drawn)))
    return np.array(replicates)


@pytest.mark.parametrize("sizes", [(50, 50, 50, 50), (50, 20, 200, 7)])
def test_the_vectorised_hierarchical_bootstrap_matches_the_plain_one(sizes):
    rng = np.random.default_rng(11)
    groups = [c * (1 + 0.02 * rng.standard_normal(n)) for c, n in zip((1.0, 1.06, 0.97, 1.02), sizes, strict=True)]
    ours = stats.bootstrap_medians(groups, n_boot=4000, seed=3)
    plain = _reference_hierarchical_medians(groups, 4000, np.random.default_rng(4))
    width = np.percentile(plain, 97.5) - np.percentile(plain, 2.5)
    for q in (2.5, 50, 97.5):
        assert np.percentile(ours, q) == pytest.approx(np.percentile(plain, q), abs=0.1 * width)
    assert np.all(np.isfinite(ours))
