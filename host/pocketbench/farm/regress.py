"""Regression verdicts of one run against the history: pure functions over DataFrames.

For each (device, model, variant, metric) the new run is compared with the last good
nightly — the latest earlier run where that cell was measured (status ok) and was not
itself flagged as a regression, so a regression keeps being flagged until it is fixed.

Two pieces of evidence, both required to be at least `threshold` (relative) in size:
- a per-run test: Mann-Whitney U on the raw samples (latency); for a deterministic metric
  (file size) any change is exact; a noisy metric with one number per run (peak memory,
  energy) has no per-run test and relies on the change points alone;
- change points over the history of medians (PELT from `ruptures`, l2 cost, penalty scaled by
  the robustly estimated run-to-run noise): when the level since the newest change point
  differs from the level before it, a step or a slow drift that no single night showed is
  caught, and a one-off noisy baseline is not mistaken for a trend.

Verdicts: regression / improvement / no change / insufficient data. Bigger is worse for
every metric here (slower, bigger, hungrier).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pocketbench.results.compare import timing_kind

REGRESSION, IMPROVEMENT, NO_CHANGE, INSUFFICIENT = "regression", "improvement", "no change", "insufficient data"
KEY = ["device", "model", "variant"]
VERDICT_COLUMNS = [
    *KEY, "metric", "verdict", "value", "baseline", "change", "p_value", "baseline_run", "change_point_run",
    "level_change", "detail",
]  # fmt: skip
MIN_CHANGE_POINT_HISTORY = 4  # good runs (new one included) before change points mean anything
HISTORY_WINDOW = 30  # newest good runs considered for change points
MIN_WANDER_HISTORY = 3  # good runs needed to estimate night-to-night wander
RECENT_LEVEL = 3  # a level shift counts while its level spans at most this many runs (new one included)


@dataclass(frozen=True)
class Metric:
    column: str  # the per-run figure (a median for sampled metrics)
    worse: str  # what a rise means, for the summary
    samples: str | None = None  # raw samples column for the per-run test
    deterministic: bool = False  # same input → same value (no noise at all)


METRICS = (
    Metric("latency_p50_ms", "slower", samples="latency_samples_ms"),
    Metric("size_bytes", "bigger", deterministic=True),
    Metric("peak_rss_kb", "hungrier"),
    Metric("energy_mj_per_inference", "hungrier"),
)


def run_order(history: pd.DataFrame) -> list[str]:
    """Run ids oldest first (by each run's first cell start; run ids may be user-chosen)."""
    started = history.groupby("run_id")["started_at"].min().sort_values(kind="stable")
    return list(started.index)


def verdicts(
    history: pd.DataFrame,
    run_id: str,
    thresholds: dict[str, float],
    alpha: float = 0.01,
    min_samples: int = 5,
    flagged: Collection[tuple[str, str, str, str, str]] = (),
) -> pd.DataFrame:
    """One verdict row per cell of `run_id` and metric present; `flagged` holds earlier
    (run_id, device, model, variant, metric) regressions, which never serve as baselines."""
    if "attempt" in history:  # a retried cell: its last attempt speaks for the run
        history = history.sort_values("attempt", kind="stable").drop_duplicates(["run_id", *KEY], keep="last")
    order = run_order(history)
    if run_id not in order:
        return pd.DataFrame(columns=VERDICT_COLUMNS)
    position = {run: i for i, run in enumerate(order)}
    history = history.assign(_order=history["run_id"].map(position))
    earlier = history[(history["_order"] < position[run_id]) & (history["status"] == "ok")]
    bad = set(flagged)
    rows = []
    current = history[history["run_id"] == run_id]
    for _, new in current.sort_values(KEY).iterrows():
        key = tuple(new[k] for k in KEY)
        past = earlier[(earlier["device"] == key[0]) & (earlier["model"] == key[1]) & (earlier["variant"] == key[2])]
        kind = timing_kind(new)
        same_kind = past[[timing_kind(r) == kind for _, r in past.iterrows()]] if len(past) else past
        for metric in METRICS:
            if metric.column not in history.columns:
                continue
            if not metric.deterministic and len(past) and same_kind.empty:
                was = timing_kind(past.iloc[-1])
                rows.append(
                    {k: new[k] for k in KEY}
                    | {"metric": metric.column, "verdict": INSUFFICIENT, "p_value": None}
                    | {"detail": f"earlier runs were timed {was}, this one {kind}: never compared"}
                )
                continue
            past_metric = same_kind if not metric.deterministic else past
            keep = [(r, *key, metric.column) not in bad for r in past_metric["run_id"]]
            usable = pd.Series(keep, index=past_metric.index, dtype=bool)
            good = past_metric[usable]
            good = good[good[metric.column].notna()].sort_values("_order")
            rows.append(_judge(metric, new, good, thresholds.get(metric.column, 0.05), alpha, min_samples))
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


def _judge(
    metric: Metric, new: pd.Series, good: pd.DataFrame, threshold: float, alpha: float, min_samples: int
) -> dict[str, Any]:
    row: dict[str, Any] = {k: new[k] for k in KEY} | {"metric": metric.column, "p_value": None}
    value = new.get(metric.column)
    if new["status"] != "ok" or value is None or pd.isna(value):
        return row | {"verdict": INSUFFICIENT, "detail": f"not measured in this run ({new['status']})"}
    row["value"] = float(value)
    if good.empty:
        return row | {"verdict": INSUFFICIENT, "detail": "no earlier good run to compare with"}
    base = good.iloc[-1]
    row.update(baseline=float(base[metric.column]), baseline_run=base["run_id"])
    row["change"] = _relative(row["value"], row["baseline"])

    per_run = _per_run_evidence(metric, new, base, alpha, min_samples, row)
    if per_run is None:
        return row | {"verdict": INSUFFICIENT,
                      "detail": f"fewer than {min_samples} raw samples on one side"}  # fmt: skip
    series = np.append(good[metric.column].to_numpy(dtype=float)[-HISTORY_WINDOW + 1 :], row["value"])
    runs = [*good["run_id"].tolist()[-HISTORY_WINDOW + 1 :], new["run_id"]]
    shift = last_level_shift(series, deterministic=metric.deterministic)
    if shift is not None:
        row.update(change_point_run=runs[shift[0]], level_change=shift[1])

    drift = 0
    if shift is not None and len(series) - shift[0] <= RECENT_LEVEL:
        drift = _direction(shift[1], threshold)
    if per_run == "untestable":
        direction = drift
    else:
        # Samples within one run know nothing of night-to-night wander: the new run must also
        # leave the (1 - alpha) prediction interval of the good history, on the same side;
        # with too few runs to know the wander, the threshold is doubled instead.
        history = series[:-1]
        if len(history) < MIN_WANDER_HISTORY and not metric.deterministic:
            threshold *= 2
        direction = _direction(row["change"], threshold) if per_run else 0
        if direction and _direction(row["value"] - history.mean(), _prediction_band(history, alpha)) != direction:
            direction = 0
        if direction == 0 and drift == _direction(row["change"], 0.0):
            direction = drift  # a step or drift no single night showed, and tonight moves the same way
    if direction > 0:
        verdict, why = REGRESSION, metric.worse
    elif direction < 0:
        verdict, why = IMPROVEMENT, "better"
    elif per_run == "untestable" and len(series) < MIN_CHANGE_POINT_HISTORY:
        return row | {
            "verdict": INSUFFICIENT,
            "detail": f"one number per run: needs {MIN_CHANGE_POINT_HISTORY} good runs for change points",
        }
    else:
        verdict, why = NO_CHANGE, "within noise or threshold"
    return row | {"verdict": verdict, "detail": _detail(why, row, threshold)}


def _per_run_evidence(
    metric: Metric, new: pd.Series, base: pd.Series, alpha: float, min_samples: int, row: dict[str, Any]
) -> bool | str | None:
    """True/False: the per-run test says the runs differ or not; "untestable": no per-run
    test exists for this metric; None: too few samples to test."""
    if metric.deterministic:
        return row["value"] != row["baseline"]
    if metric.samples is None or metric.samples not in new.index:
        return "untestable"
    a, b = _samples(new[metric.samples]), _samples(base[metric.samples])
    if len(a) < min_samples or len(b) < min_samples:
        return None
    from scipy.stats import mannwhitneyu

    row["p_value"] = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    return row["p_value"] < alpha


def last_level_shift(series: np.ndarray, deterministic: bool = False) -> tuple[int, float] | None:
    """Where the history (per-run figures, oldest first, the new run last) left its last
    established level — a segment between change points longer than RECENT_LEVEL runs — as
    (index of the first run after it, relative change of the newest segment's mean against
    that level's mean). None without enough history, a change, or an established level."""
    if len(series) < MIN_CHANGE_POINT_HISTORY:
        return None
    import ruptures

    sigma = _noise(series, deterministic)
    penalty = 4.0 * sigma**2 * np.log(len(series))
    ends = ruptures.Pelt(model="l2", min_size=1, jump=1).fit(series.reshape(-1, 1)).predict(pen=penalty)
    segments = list(zip([0, *ends[:-1]], ends, strict=True))
    if len(segments) < 2:
        return None
    newest = segments[-1]
    for start, end in reversed(segments[:-1]):
        if end - start > RECENT_LEVEL:
            return end, _relative(series[newest[0] :].mean(), series[start:end].mean())
    return None


def _prediction_band(history: np.ndarray, alpha: float) -> float:
    """Half-width of the two-sided (1 - alpha) prediction interval for one more run drawn like
    `history` (Student t: few runs give a wide band); 0 with fewer than 3 runs."""
    n = len(history)
    if n < MIN_WANDER_HISTORY:
        return 0.0
    from scipy.stats import t

    return float(t.ppf(1 - alpha / 2, n - 1) * np.std(history, ddof=1) * np.sqrt(1 + 1 / n))


def _noise(series: np.ndarray, deterministic: bool) -> float:
    """Run-to-run noise of a history from successive differences (robust to the steps
    themselves), floored at 0.5 % of the level so a flat history does not make every
    wobble a change (for deterministic figures: 0.1 %)."""
    diffs = np.diff(series)
    sigma = 1.4826 * float(np.median(np.abs(diffs - np.median(diffs)))) / np.sqrt(2) if len(diffs) else 0.0
    floor = (0.001 if deterministic else 0.005) * float(np.median(np.abs(series)))
    return max(sigma, floor, 1e-12)


def _samples(value: Any) -> np.ndarray:
    if value is None or (np.isscalar(value) and pd.isna(value)):
        return np.array([])
    return np.asarray(value, dtype=float)


def _relative(value: float, baseline: float) -> float:
    return float("inf") if baseline == 0 else float(value) / float(baseline) - 1.0


def _direction(change: float, threshold: float) -> int:
    if change > 0 and change >= threshold:
        return 1
    if change < 0 and change <= -threshold:
        return -1
    return 0


def _detail(why: str, row: dict[str, Any], threshold: float) -> str:
    parts = [f"{row['change']:+.1%} vs {row['baseline_run']} ({why}; threshold {threshold:.0%})"]
    if row.get("p_value") is not None:
        parts.append(f"Mann-Whitney p={row['p_value']:.2g}")
    if row.get("change_point_run") is not None:
        parts.append(f"level {row['level_change']:+.1%} since {row['change_point_run']}")
    return ", ".join(parts)


def significant_regressions(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["verdict"] == REGRESSION]
