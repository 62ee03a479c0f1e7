"""Statistics over raw latency samples: pure functions, seeded, no I/O.

Phones are noisy, so every figure carries its uncertainty: the median with a bootstrap 95 %
CI, p90/p99, the coefficient of variation, an "unstable" flag that says why the p50 cannot be
trusted (pyperf's checks, judged on the p50 and the bulk of the samples, not on their tails), and
A/B speedups that are only reported as a ratio when they are significant.

Samples may come in groups (one per runner process, i.e. repetition). The bootstrap then
resamples groups first and samples within each group second, so the CI widens when the
repetitions disagree with each other, which is the noise users actually see run to run.

Every interval stays inside what a latency can be (> 0). The percentile bootstrap's ends are
medians of resampled latencies, so they are latencies. Its floor, the processes' t interval, is
taken on the log of the per-process medians and mapped back (a geometric interval): a plain t
interval over three disagreeing processes reached below zero (`[-1.361–6.350] ms`), while the
log-scale one widens upwards as far as the data say and never crosses zero — process medians
differ by a factor more than by an offset, so the log scale is also the better model of them.
With fewer samples than any 95 % interval of a median can be built from, there is no CI (NaN)
and the cell says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pocketbench.student_t import student_t_quantile

CONFIDENCE = 0.95
ALPHA = 0.05
N_BOOTSTRAP = 2000
SEED = 0
# Resampling costs samples × replicates: a 2 s energy loop of a 10 µs model is 200 000 samples,
# 3 GB of indices. A group larger than this is resampled as this many evenly spaced quantiles
# of itself — the same distribution, coarser — so its CI is the one that many samples would
# give: a little wider than the full sample's, never narrower.
MAX_RESAMPLED = 2000
# pyperf warns when the standard deviation reaches 10 % of the mean. Its samples are loop
# averages; ours are single calls or short batches, where one preemption in 500 samples doubles
# the standard deviation and says nothing about the p50 (measured: sample CV 12-44 % in cells
# whose p50 repeated to 1 % run to run). So the spread judged is the robust one, the MAD scaled
# to a normal's standard deviation, over the median: it sees the bulk of the samples, not a tail.
UNSTABLE_SPREAD = 0.10
MAD_TO_STD = 1.482602218505602  # 1 / Φ⁻¹(3/4): a normal's MAD times this is its standard deviation
# The p50's 95 % CI half-width, over the p50, beyond which the p50 itself is not known; the
# adaptive loop aims at 2 % (measure/adaptive.py), so a cell flagged here ran out of time or
# processes far from it.
UNSTABLE_CI = 0.05
# Between fresh processes the p50 should agree far better than single calls do: beyond this the
# processes' disagreement is named as the cause of a wide CI (and the threads hint is given).
UNSTABLE_REPETITION_CV = 0.05
# pyperf: "min/max far from the mean". A min far below the median is measuring something else
# (a call that skipped work) and flags the cell; a max far above it is a preemption or a slow
# call, which the p50 ignores: it is reported as a tail note, not as instability.
FAR_MIN_RATIO = 0.5
FAR_MAX_RATIO = 2.0
# pyperf warns below 1 ms because it times loops with a coarse clock; the runner reads a ns
# steady clock around every single call, so only calls this short are dominated by the timer
# and the scheduler tick.
SHORT_MS = 0.1
# A distribution-free 95 % CI of a median needs n samples with 1 - 2·0.5ⁿ ≥ 0.95 (the chance that
# the median lies between the smallest and largest sample): n ≥ 6. With fewer, any interval
# printed would claim more confidence than the data hold.
MIN_CI_SAMPLES = 6

Samples = Sequence[float] | np.ndarray  # one group of latencies (ms)
Groups = Sequence[Samples]


@dataclass(frozen=True)
class Summary:
    """A cell's latency: median with its CI, tails, spread and whether to trust it."""

    n: int
    repetitions: int
    median: float
    ci_low: float
    ci_high: float
    p90: float
    p99: float
    mean: float
    std: float
    cv: float
    repetition_cv: float | None  # CV of the per-repetition medians (None with one repetition)
    minimum: float
    maximum: float
    unstable_reasons: tuple[str, ...]
    # Processes settled at two speeds: (p50 of the mode, processes in it) for each; () otherwise.
    modes: tuple[tuple[float, int], ...] = ()
    robust_cv: float = 0.0  # the MAD scaled to a standard deviation, over the median
    tail_note: str | None = None  # samples far above the p50 (preemptions), which it ignores

    @property
    def unstable(self) -> bool:
        return bool(self.unstable_reasons)


@dataclass(frozen=True)
class Speedup:
    """baseline median / variant median, its CI, and whether the difference is real."""

    ratio: float
    ci_low: float
    ci_high: float
    p_value: float
    significant: bool

    def label(self) -> str:
        """`1.83×` when significant, else `n.s.`: a ratio near 1 that is noise is not shown."""
        return f"{self.ratio:.2f}×" if self.significant else "n.s."


def _groups(samples: Samples | Groups) -> list[np.ndarray]:
    """Accept flat samples (one group) or a list of groups; drop empty groups."""
    if len(samples) and isinstance(samples[0], (Sequence, np.ndarray)):
        groups = [np.asarray(g, dtype=np.float64) for g in samples]
    else:
        groups = [np.asarray(samples, dtype=np.float64)]
    groups = [g for g in groups if g.size]
    if not groups:
        raise ValueError("statistics need at least one sample")
    return groups


def bootstrap_medians(samples: Samples | Groups, n_boot: int = N_BOOTSTRAP, seed: int = SEED) -> np.ndarray:
    """`n_boot` bootstrap replicates of the median (hierarchical over groups)."""
    groups = [_thinned(g) for g in _groups(samples)]
    rng = np.random.default_rng(seed)
    if len(groups) == 1:
        data = groups[0]
        picks = rng.integers(0, data.size, size=(n_boot, data.size))
        return np.median(data[picks], axis=1)
    return _hierarchical_medians(groups, n_boot, rng)


# Values drawn at once by the vectorised bootstrap (a chunk of replicates at a time): 32 MB.
CHUNK_VALUES = 4_000_000


def _hierarchical_medians(groups: list[np.ndarray], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Each replicate draws as many groups as there are, with replacement, then each drawn group's
    own size of samples from it, with replacement, and takes the median of all it drew.
    Vectorised: the adaptive loop asks after every runner process, and a Python loop over 2000
    replicates cost 35-116 ms a call (3-12 processes; now 11-58 ms). Groups of unequal size are
    padded with NaN, and the padding is never drawn."""
    count = len(groups)
    sizes = np.array([g.size for g in groups])
    width = int(sizes.max())
    padded = np.full((count, width), np.nan)
    for i, group in enumerate(groups):
        padded[i, : group.size] = group
    equal = bool((sizes == width).all())
    replicates = np.empty(n_boot)
    chunk = max(1, CHUNK_VALUES // (count * width))
    for start in range(0, n_boot, chunk):
        n = min(chunk, n_boot - start)
        chosen = rng.integers(0, count, size=(n, count))
        drawn = sizes[chosen][..., None]  # each drawn group's size, (n, count, 1)
        picks = (rng.random((n, count, width)) * drawn).astype(np.int64)  # < its size
        values = padded[chosen[..., None], picks]
        if not equal:  # a group drawn fewer than `width` times: drop the draws past its size
            values = np.where(np.arange(width) < drawn, values, np.nan)
        flat = values.reshape(n, -1)
        replicates[start : start + n] = np.median(flat, axis=1) if equal else np.nanmedian(flat, axis=1)
    return replicates


def _thinned(group: np.ndarray) -> np.ndarray:
    """At most MAX_RESAMPLED values standing for `group`: itself, or its evenly spaced quantiles."""
    if group.size <= MAX_RESAMPLED:
        return group
    return np.quantile(group, np.linspace(0, 1, MAX_RESAMPLED))


def too_few_for_ci(samples: Samples | Groups) -> str | None:
    """Why no 95 % CI of the median can be given for these samples, or None when one can."""
    n = sum(g.size for g in _groups(samples))
    if n >= MIN_CI_SAMPLES:
        return None
    return f"{n} sample{'s' if n != 1 else ''}: too few for a 95% CI of the p50 (needs {MIN_CI_SAMPLES})"


def median_ci(
    samples: Samples | Groups, confidence: float = CONFIDENCE, n_boot: int = N_BOOTSTRAP, seed: int = SEED
) -> tuple[float, float]:
    """Percentile-bootstrap CI of the median; (NaN, NaN) with too few samples for one."""
    if too_few_for_ci(samples) is not None:
        return math.nan, math.nan
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(bootstrap_medians(samples, n_boot, seed), [tail, 100 - tail])
    return float(low), float(high)


def process_interval(groups: Groups, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Student-t interval of the per-process medians on the log scale, mapped back: the geometric
    mean's interval (None with one process, or a median that is not positive).

    The floor under the bootstrap CI: with few processes the hierarchical bootstrap can land all
    its replicates near the majority's speed, giving a CI narrower than the processes' own
    disagreement implies. No reported CI is narrower than this one. On the log scale it is a
    factor either side of the geometric mean, so it stays above zero however the processes
    disagree."""
    medians = np.asarray([float(np.median(g)) for g in groups])
    if medians.size < 2 or not (medians > 0).all():
        return None
    logs = np.log(medians)
    quantile = student_t_quantile(0.5 + confidence / 2, medians.size - 1)
    half = float(quantile * logs.std(ddof=1) / math.sqrt(medians.size))
    centre = float(logs.mean())
    return math.exp(centre - half), math.exp(centre + half)


# Two speed states: the largest gap between sorted process medians is at least this fraction of
# the p50 and this many times the widest spread inside either side of it.
MODE_GAP = 0.10
MODE_SEPARATION = 3.0


def speed_modes(groups: Groups) -> tuple[tuple[float, int], ...]:
    """The two speeds processes settled at, as (p50 of the mode, processes), when they split in
    two clearly apart (three processes at least); () when they agree."""
    medians = np.sort([float(np.median(g)) for g in groups])
    if medians.size < 3:
        return ()
    gaps = np.diff(medians)
    cut = int(np.argmax(gaps)) + 1
    low, high = medians[:cut], medians[cut:]
    within = max(np.ptp(low), np.ptp(high))
    if gaps[cut - 1] < MODE_GAP * float(np.median(medians)) or gaps[cut - 1] < MODE_SEPARATION * within:
        return ()
    return (float(np.median(low)), int(low.size)), (float(np.median(high)), int(high.size))


def describe_modes(modes: tuple[tuple[float, int], ...]) -> str:
    """`processes settle at two speeds: 0.018 ms (2 of 3), 0.027 ms (1 of 3)`."""
    total = sum(n for _, n in modes)
    speeds = ", ".join(f"{p50:.3g} ms ({n} of {total})" for p50, n in modes)
    return f"processes settle at two speeds: {speeds}"


def cv(values: Samples) -> float:
    """Coefficient of variation: sample std (ddof=1) over the mean; 0 for fewer than 2 values."""
    data = np.asarray(values, dtype=np.float64)
    if data.size < 2 or data.mean() == 0:
        return 0.0
    return float(data.std(ddof=1) / data.mean())


def robust_cv(values: Samples) -> float:
    """1.4826 × MAD / median: the spread of the bulk of the samples, as a CV would be for normal
    data, which a few preempted calls do not move; 0 for fewer than 2 values."""
    data = np.asarray(values, dtype=np.float64)
    median = float(np.median(data)) if data.size else 0.0
    if data.size < 2 or median == 0:
        return 0.0
    return float(MAD_TO_STD * np.median(np.abs(data - median)) / median)


def p50_ci_too_wide(halfwidth: float) -> bool:
    """The p50's 95 % CI half-width (a fraction of the p50, the row's `latency_p50_ci_halfwidth`)
    is too wide to trust. The unstable reasons then name its causes, two speeds among them, so a
    report that reads the row says the two speeds once."""
    return halfwidth > UNSTABLE_CI


def unstable_reasons(
    samples: Samples | Groups,
    batched: bool = False,
    ci: tuple[float, float] | None = None,
) -> tuple[str, ...]:
    """Why a cell's p50 should not be trusted; empty when it can be. `batched`: each sample times
    a calibrated batch of calls, so short calls are not timer noise. `ci`: the p50's 95 % CI
    (summarize's; computed here when not given). A wide CI names its cause: processes that
    disagree, two speeds, or samples that are spread throughout."""
    groups = _groups(samples)
    data = np.concatenate(groups)
    median = float(np.median(data))
    reasons = []
    if (too_few := too_few_for_ci(groups)) is not None:
        reasons.append(too_few)
    low, high = ci if ci is not None else _reported_ci(groups)
    half = (high - low) / 2 / median if median > 0 and not too_few else 0.0
    if p50_ci_too_wide(half):
        reasons.append(f"p50's 95% CI ±{100 * half:.0f}% > ±{100 * UNSTABLE_CI:.0f}%")
        if len(groups) > 1 and (between := cv([float(np.median(g)) for g in groups])) >= UNSTABLE_REPETITION_CV:
            reasons.append(f"repetitions' p50 differ by CV {100 * between:.0f}%")
        if modes := speed_modes(groups):
            reasons.append(describe_modes(modes))
    spread = robust_cv(data)
    if spread >= UNSTABLE_SPREAD:
        reasons.append(f"robust CV {100 * spread:.0f}% ≥ {100 * UNSTABLE_SPREAD:.0f}%")
    if median > 0 and data.min() < FAR_MIN_RATIO * median:
        reasons.append(f"min {data.min():.3g} ms is under {FAR_MIN_RATIO:g}× the median")
    if median < SHORT_MS and not batched:
        reasons.append(f"calls under {SHORT_MS:g} ms: timer and scheduler noise dominate")
    return tuple(reasons)


def tail_note(samples: Samples | Groups) -> str | None:
    """`3 of 600 samples over 2× the p50 (max 6.3 ms, 3.7×)`: preempted or slow calls, which move
    the mean, the CV and the p99 but not the p50; None when no sample is that far out."""
    data = np.concatenate(_groups(samples))
    median = float(np.median(data))
    far = int(np.count_nonzero(data > FAR_MAX_RATIO * median)) if median > 0 else 0
    if not far:
        return None
    return (
        f"{far} of {data.size} samples over {FAR_MAX_RATIO:g}× the p50 "
        f"(max {data.max():.3g} ms, {data.max() / median:.1f}×)"
    )


def _reported_ci(groups: list[np.ndarray], seed: int = SEED) -> tuple[float, float]:
    """The p50's CI as reported: the hierarchical bootstrap's, widened to the processes' t
    interval when that is wider."""
    low, high = median_ci(groups, seed=seed)
    floor = process_interval(groups)
    if floor is not None and not math.isnan(low):
        low, high = min(low, floor[0]), max(high, floor[1])
    return low, high


def summarize(samples: Samples | Groups, seed: int = SEED, batched: bool = False) -> Summary:
    """Everything a cell's latency row carries, from its raw samples (ms). The median's CI is the
    hierarchical bootstrap's, widened to the processes' log-scale t interval when that is wider;
    NaN (and an unstable reason saying why) with too few samples for any."""
    groups = _groups(samples)
    data = np.concatenate(groups)
    low, high = _reported_ci(groups, seed)
    p50, p90, p99 = np.percentile(data, [50, 90, 99])
    return Summary(
        n=int(data.size),
        repetitions=len(groups),
        median=float(p50),
        ci_low=low,
        ci_high=high,
        p90=float(p90),
        p99=float(p99),
        mean=float(data.mean()),
        std=float(data.std(ddof=1)) if data.size > 1 else 0.0,
        cv=cv(data),
        repetition_cv=cv([float(np.median(g)) for g in groups]) if len(groups) > 1 else None,
        minimum=float(data.min()),
        maximum=float(data.max()),
        unstable_reasons=unstable_reasons(groups, batched=batched, ci=(low, high)),
        modes=speed_modes(groups),
        robust_cv=robust_cv(data),
        tail_note=tail_note(groups),
    )


# Sizes up to which scipy's Mann-Whitney may compute the exact distribution (its "auto" method).
EXACT_MANN_WHITNEY = 8


def mann_whitney_p(a: Samples, b: Samples) -> float:
    """Two-sided Mann-Whitney U p-value (1.0 when both are the same constant)."""
    from scipy.stats import mannwhitneyu

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.size < 2 or y.size < 2:
        return 1.0
    if np.all(x == x[0]) and np.all(y == x[0]):
        return 1.0
    p = float(mannwhitneyu(x, y, alternative="two-sided").pvalue)
    return 1.0 if math.isnan(p) else p


def mann_whitney_ps(pairs: Sequence[tuple[Samples, Samples]]) -> list[float]:
    """mann_whitney_p of every pair. Pairs past the size where scipy switches to the normal
    approximation are tested here in numpy (scipy's formula: tie-corrected variance, continuity
    correction), the same two sizes at once: a report or a night of verdicts compares hundreds
    of cells, and importing scipy.stats alone costs more than all their tests."""
    ps: list[float | None] = [None] * len(pairs)
    batches: dict[tuple[int, int], list[int]] = {}
    arrays = [(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)) for a, b in pairs]
    for i, (x, y) in enumerate(arrays):
        exact = x.size <= EXACT_MANN_WHITNEY or y.size <= EXACT_MANN_WHITNEY
        if exact or x.ndim != 1 or y.ndim != 1 or np.isnan(x).any() or np.isnan(y).any():
            ps[i] = mann_whitney_p(x, y)
        else:
            batches.setdefault((x.size, y.size), []).append(i)
    for members in batches.values():
        xs, ys = (np.stack([arrays[i][side] for i in members]) for side in (0, 1))
        for i, p in zip(members, _mann_whitney_normal(xs, ys), strict=True):
            x, y = arrays[i]
            constant = np.all(x == x[0]) and np.all(y == x[0])
            ps[i] = 1.0 if constant or math.isnan(p) else float(p)
    return [float(p) for p in ps if p is not None]


def _mann_whitney_normal(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Two-sided Mann-Whitney p-values of each row pair of xs and ys (no NaN) by the normal
    approximation with tie correction and continuity correction, as scipy's asymptotic method."""
    n1, n2 = xs.shape[1], ys.shape[1]
    n = n1 + n2
    both = np.concatenate([xs, ys], axis=1)
    rank_sums, tie_terms = np.empty(len(both)), np.empty(len(both))
    for row, values in enumerate(both):
        _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
        average = np.cumsum(counts) - (counts - 1) / 2.0  # ties share their average rank
        rank_sums[row] = average[inverse[:n1]].sum()
        tie_terms[row] = float((counts.astype(np.float64) ** 3 - counts).sum())
    u1 = rank_sums - n1 * (n1 + 1) / 2.0
    u = np.maximum(u1, n1 * n2 - u1)
    sigma = np.sqrt(n1 * n2 / 12.0 * ((n + 1) - tie_terms / (n * (n - 1))))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (u - n1 * n2 / 2.0 - 0.5) / sigma
    p = np.array([math.erfc(v / math.sqrt(2.0)) if not math.isnan(v) else math.nan for v in z])
    return np.clip(p, 0.0, 1.0)


def speedup(
    baseline: Samples | Groups,
    variant: Samples | Groups,
    alpha: float = ALPHA,
    seed: int = SEED,
) -> Speedup:
    """How many times faster `variant` is than `baseline` (latencies in ms).

    Significant only when both agree: Mann-Whitney U on the pooled samples says the
    distributions differ, and the bootstrap CI of the ratio of medians excludes 1. The
    second check keeps repetitions that disagree (drift) from passing as a real difference.
    """
    base, var = _groups(baseline), _groups(variant)
    ratio = float(np.median(np.concatenate(base)) / np.median(np.concatenate(var)))
    replicates = bootstrap_medians(base, seed=seed) / bootstrap_medians(var, seed=seed + 1)
    tail = alpha / 2 * 100
    low, high = (float(v) for v in np.percentile(replicates, [tail, 100 - tail]))
    p = mann_whitney_p(np.concatenate(base), np.concatenate(var))
    return Speedup(ratio, low, high, p, significant=p < alpha and not low <= 1.0 <= high)


def sqnr_db(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB (inf when identical)."""
    reference = reference.astype(np.float64)
    noise = np.sum((reference - candidate.astype(np.float64)) ** 2)
    signal = np.sum(reference**2)
    if noise == 0:
        return float("inf")
    if signal == 0:
        return float("-inf")
    return float(10 * np.log10(signal / noise))
