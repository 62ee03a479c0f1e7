"""Regression verdicts of one run against the history: pure functions over DataFrames.

For each (device, model, variant, metric) the new run is compared with the last good
nightly — the latest earlier run where that cell was measured (status ok) and was not
itself flagged as a regression, so a regression keeps being flagged until it is fixed.

Two pieces of evidence, both required to be at least `threshold` (relative) in size:
- a per-run test: Mann-Whitney U on the raw samples (latency); for a deterministic metric
  (file size) any change is exact; a noisy metric with one number per run (peak memory,
  energy) has no per-run test and relies on the change points alone;
- change points over the history of medians (PELT, l2 cost, as in `ruptures`; penalty scaled by
  the robustly estimated run-to-run noise): when the level since the newest change point
  differs from the level before it, a step or a slow drift that no single night showed is
  caught, and a one-off noisy baseline is not mistaken for a trend.

Verdicts: regression / improvement / no change / insufficient data. Bigger is worse for
every metric here (slower, bigger, hungrier).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Any

import numpy as np
import pandas as pd

from pocketbench.results.cell_status import CellStatus
from pocketbench.results.compare import timing_kinds
from pocketbench.results.verdicts import Verdict
from pocketbench.stats import mann_whitney_ps
from pocketbench.student_t import student_t_quantile

# The verdict column's values, by their old names.
REGRESSION, IMPROVEMENT = Verdict.REGRESSION, Verdict.IMPROVEMENT
NO_CHANGE, INSUFFICIENT = Verdict.NO_CHANGE, Verdict.INSUFFICIENT
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


# The raw-sample columns the per-run tests read.
SAMPLED = [m.samples for m in METRICS if m.samples]


def sample_runs(
    history: pd.DataFrame, run_id: str, flagged: Collection[tuple[str, str, str, str, str]] = ()
) -> set[str]:
    """The runs whose raw samples `verdicts` can read judging `run_id`: that run and, per cell and
    kind of timing, the newest earlier good run not flagged on a sampled metric."""
    order = run_order(history)
    if run_id not in order:
        return set()
    earlier = set(order[: order.index(run_id)])
    good = history[history["run_id"].isin(earlier) & (history["status"] == CellStatus.OK)]
    bad = {(f[0], f[1], f[2], f[3]) for f in flagged if f[4] in {m.column for m in METRICS if m.samples}}
    if bad:
        keys = zip(*(good[c].to_numpy(dtype=object) for c in ["run_id", *KEY]), strict=True)
        good = good[np.fromiter((key not in bad for key in keys), dtype=bool, count=len(good))]
    position = {run: i for i, run in enumerate(order)}
    good = good.assign(_order=good["run_id"].map(position), _kind=timing_kinds(good))
    newest = good.sort_values("_order", kind="stable").drop_duplicates([*KEY, "_kind"], keep="last")
    return {run_id, *newest["run_id"]}


def run_order(history: pd.DataFrame) -> list[str]:
    """Run ids oldest first (by each run's first cell start; run ids may be user-chosen)."""
    started = history.groupby("run_id")["started_at"].min().sort_values(kind="stable")
    return list(started.index)


def verdict_columns(match: Sequence[str] = ()) -> list[str]:
    """The history columns `verdicts` reads (with `match`); a reader may load only these."""
    used = ["run_id", "started_at", "attempt", "status", *KEY, "device_emulated", "device_emulation", *match]
    used += [c for m in METRICS for c in (m.column, m.samples) if c]
    return list(dict.fromkeys(used))


def verdicts(
    history: pd.DataFrame,
    run_id: str,
    thresholds: dict[str, float],
    alpha: float = 0.01,
    min_samples: int = 5,
    flagged: Collection[tuple[str, str, str, str, str]] = (),
    match: Sequence[str] = (),
) -> pd.DataFrame:
    """One verdict row per cell of `run_id` and metric present; `flagged` holds earlier
    (run_id, device, model, variant, metric) regressions, which never serve as baselines. An
    earlier night is a baseline only when its row has the same `match` columns (the phone's model
    and lab host: a device name moved to another phone or host starts a new history)."""
    # Only what the verdicts read: every slice below copies each column it carries.
    history = history[[c for c in verdict_columns(match) if c in history]].copy()
    if "attempt" in history:  # a retried cell: its last attempt speaks for the run
        history = history.sort_values("attempt", kind="stable").drop_duplicates(["run_id", *KEY], keep="last")
    order = run_order(history)
    if run_id not in order:
        return pd.DataFrame(columns=VERDICT_COLUMNS)
    position = {run: i for i, run in enumerate(order)}
    history = history.assign(_order=history["run_id"].map(position), _kind=timing_kinds(history))
    match = [c for c in match if c in history.columns]
    earlier = Earlier.of(history[(history["_order"] < position[run_id]) & (history["status"] == CellStatus.OK)], match)
    metrics = [m for m in METRICS if m.column in history.columns]
    bad = set(flagged)
    rows: list[dict[str, Any]] = []
    judged: list[tuple[int, Metric, dict[str, Any], Past, float]] = []  # rows judged once every test is run
    current = history[history["run_id"] == run_id].sort_values(KEY)
    for new in current.to_dict("records"):
        key = tuple(new[k] for k in KEY)
        past = earlier.cells.get(key, earlier.none)  # positions in `earlier`, in its row order
        past, unlike = _alike(earlier, past, new, match)
        if unlike:
            rows += [
                {k: new[k] for k in KEY}
                | {"metric": m.column, "verdict": Verdict.INSUFFICIENT, "p_value": None}
                | {"detail": unlike}
                for m in metrics
            ]
            continue
        kind = new["_kind"]
        same_kind = past[earlier.kinds[past] == kind]
        for metric in metrics:
            if not metric.deterministic and len(past) and not len(same_kind):
                was = earlier.kinds[past[-1]]
                rows.append(
                    {k: new[k] for k in KEY}
                    | {"metric": metric.column, "verdict": Verdict.INSUFFICIENT, "p_value": None}
                    | {"detail": f"earlier runs were timed {was}, this one {kind}: never compared"}
                )
                continue
            good = same_kind if not metric.deterministic else past
            if bad:
                good = good[[(earlier.runs[i], *key, metric.column) not in bad for i in good]]
            good = good[~np.isnan(earlier.values[metric.column][good])]
            good = good[np.argsort(earlier.order[good], kind="quicksort")]  # as sort_values("_order")
            judged.append((len(rows), metric, new, earlier.past(metric, good), thresholds.get(metric.column, 0.05)))
            rows.append({})
    tested = {i: pair for i, m, new, good, _ in judged if (pair := _samples_tested(m, new, good, min_samples))}
    p_values = dict(zip(tested, mann_whitney_ps(list(tested.values())), strict=True))  # at once, in numpy
    for i, metric, new, good, threshold in judged:
        rows[i] = _judge(metric, new, good, threshold, alpha, min_samples, p_values.get(i))
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


@dataclass(frozen=True)
class Earlier:
    """The good earlier runs' rows as arrays, with each cell's positions among them: looked up
    per cell and metric without slicing a DataFrame (a night judges thousands of figures)."""

    cells: dict[tuple[Any, ...], np.ndarray]
    none: np.ndarray
    kinds: np.ndarray
    runs: np.ndarray
    order: np.ndarray
    values: dict[str, np.ndarray]  # each metric's figures as floats (NaN: missing)
    samples: dict[str, np.ndarray]  # each sampled metric's raw samples, as stored
    alike: dict[str, np.ndarray]  # each `match` column as strings ("": missing), to compare like with like

    @classmethod
    def of(cls, frame: pd.DataFrame, match: Sequence[str] = ()) -> Earlier:
        grouped = frame.groupby(KEY, sort=False).indices if len(frame) else {}
        return cls(
            cells={tuple(key): positions for key, positions in grouped.items()},
            none=np.array([], dtype=np.intp),
            kinds=frame["_kind"].to_numpy(dtype=object),
            runs=frame["run_id"].to_numpy(dtype=object),
            order=frame["_order"].to_numpy(dtype=np.int64),
            values={m.column: _floats(frame[m.column]) for m in METRICS if m.column in frame},
            samples={
                m.samples: frame[m.samples].to_numpy(dtype=object) for m in METRICS if m.samples and m.samples in frame
            },
            alike={c: _strings(frame[c]) for c in match},
        )

    def past(self, metric: Metric, positions: np.ndarray) -> Past:
        """One metric's good runs at `positions` (oldest first)."""
        samples = self.samples.get(metric.samples) if metric.samples else None
        return Past(
            runs=list(self.runs[positions]),
            values=self.values[metric.column][positions],
            base_samples=None if samples is None or not len(positions) else samples[positions[-1]],
        )


@dataclass(frozen=True)
class Past:
    """A cell's good earlier runs for one metric, oldest first: the newest is the baseline."""

    runs: list[str]
    values: np.ndarray
    base_samples: Any


def _floats(column: pd.Series) -> np.ndarray:
    """A figure column as floats, missing values (None, NaN, pandas' NA) as NaN."""
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _strings(column: pd.Series) -> np.ndarray:
    """A column as strings, missing values as "" (a missing value equals a missing one)."""
    return column.astype("string").fillna("").to_numpy(dtype=object)


def _alike(earlier: Earlier, past: np.ndarray, new: dict[str, Any], columns: Sequence[str]) -> tuple[np.ndarray, str]:
    """The positions among `past` whose `columns` equal the new row's, and, when there were
    earlier rows but none alike, why nothing is compared."""
    if not columns or not len(past):
        return past, ""
    same = np.ones(len(past), dtype=bool)
    for column in columns:
        value = new.get(column)
        same &= earlier.alike[column][past] == ("" if value is None or pd.isna(value) else str(value))
    if same.any():
        return past[same], ""
    last = past[-1]
    was = ", ".join(f"{c.removeprefix('device_')} {_shown(c, earlier.alike[c][last])}" for c in columns)
    now = ", ".join(_shown(c, new.get(c)) for c in columns)
    return earlier.none, f"earlier runs were on {was}, this one on {now}: never compared ([regression] match)"


def _shown(column: str, value: object) -> str:
    if value is None or value == "" or pd.isna(value):
        return "this computer" if column == "device_host" else "unknown"
    return repr(str(value))


class PerRun(Enum):
    """What the per-run test says about the new run against its baseline run."""

    DIFFERS = "differs"  # Mann-Whitney below alpha, or a deterministic figure that changed
    SAME = "same"
    UNTESTABLE = "untestable"  # one noisy number per run: no per-run test, change points alone
    TOO_FEW_SAMPLES = "too few samples"


class Direction(IntEnum):
    """Which way a figure moved beyond its threshold (bigger is worse for every metric)."""

    BETTER = -1
    NONE = 0
    WORSE = 1


@dataclass(frozen=True)
class Evidence:
    """What the history says about one figure of the new run (its baseline: the last good run)."""

    value: float
    change: float  # relative to the baseline run
    per_run: PerRun
    history: np.ndarray  # the good runs' figures in the window, oldest first, the new run not included
    shift: tuple[int, float] | None  # last_level_shift over the history and the new run

    def drift(self, threshold: float) -> Direction:
        """The level since the newest change point, when that level is recent (at most
        RECENT_LEVEL runs, the new one included), against the level before it."""
        if self.shift is None or len(self.history) + 1 - self.shift[0] > RECENT_LEVEL:
            return Direction.NONE
        return _direction(self.shift[1], threshold)


def _judge(
    metric: Metric,
    new: dict[str, Any],
    good: Past,
    threshold: float,
    alpha: float,
    min_samples: int,
    p_value: float | None,
) -> dict[str, Any]:
    """One verdict row: gather the evidence, find the direction, name the verdict (`p_value`: the
    Mann-Whitney test of the raw samples, None when there are too few to test)."""
    row: dict[str, Any] = {k: new[k] for k in KEY} | {"metric": metric.column, "p_value": None}
    value = new.get(metric.column)
    if new["status"] != CellStatus.OK or value is None or pd.isna(value):
        return row | _insufficient(f"not measured in this run ({new['status']})")
    row["value"] = float(value)
    if not len(good.runs):
        return row | _insufficient("no earlier good run to compare with")
    row.update(baseline=float(good.values[-1]), baseline_run=good.runs[-1])
    row["change"] = _relative(row["value"], row["baseline"])

    per_run, row["p_value"] = _per_run_evidence(metric, new, good, alpha, p_value)
    if per_run is PerRun.TOO_FEW_SAMPLES:
        return row | _insufficient(f"fewer than {min_samples} raw samples on one side")
    history = good.values[-(HISTORY_WINDOW - 1) :]
    shift = last_level_shift(np.append(history, row["value"]), deterministic=metric.deterministic)
    if shift is not None:
        runs = [*good.runs[-(HISTORY_WINDOW - 1) :], new["run_id"]]
        row.update(change_point_run=runs[shift[0]], level_change=shift[1])
    evidence = Evidence(row["value"], row["change"], per_run, history, shift)

    direction, threshold = _direction_of(metric, evidence, threshold, alpha)
    if direction is Direction.WORSE:
        return row | {"verdict": Verdict.REGRESSION, "detail": _detail(metric.worse, row, threshold)}
    if direction is Direction.BETTER:
        return row | {"verdict": Verdict.IMPROVEMENT, "detail": _detail("better", row, threshold)}
    if per_run is PerRun.UNTESTABLE and len(history) + 1 < MIN_CHANGE_POINT_HISTORY:
        return row | _insufficient(f"one number per run: needs {MIN_CHANGE_POINT_HISTORY} good runs for change points")
    return row | {"verdict": Verdict.NO_CHANGE, "detail": _detail("within noise or threshold", row, threshold)}


def _direction_of(metric: Metric, evidence: Evidence, threshold: float, alpha: float) -> tuple[Direction, float]:
    """The direction the evidence shows, and the threshold it was held to.

    Without a per-run test only a recent level shift counts. With one, samples within one run know
    nothing of night-to-night wander: the new run must also leave the (1 - alpha) prediction
    interval of the good history, on the same side; with too few runs to know the wander, the
    threshold is doubled instead. A recent step or drift that no single night showed counts when
    tonight moves the same way."""
    drift = evidence.drift(threshold)
    if evidence.per_run is PerRun.UNTESTABLE:
        return drift, threshold
    history = evidence.history
    if len(history) < MIN_WANDER_HISTORY and not metric.deterministic:
        threshold *= 2
    direction = _direction(evidence.change, threshold) if evidence.per_run is PerRun.DIFFERS else Direction.NONE
    if direction and _direction(evidence.value - history.mean(), _prediction_band(history, alpha)) != direction:
        direction = Direction.NONE
    if direction is Direction.NONE and drift == _direction(evidence.change, 0.0):
        direction = drift
    return direction, threshold


def _insufficient(why: str) -> dict[str, Any]:
    return {"verdict": Verdict.INSUFFICIENT, "detail": why}


def _per_run_evidence(
    metric: Metric, new: dict[str, Any], good: Past, alpha: float, p_value: float | None
) -> tuple[PerRun, float | None]:
    """What the per-run test says, and its p-value when it is Mann-Whitney on raw samples."""
    if metric.deterministic:
        return (PerRun.DIFFERS if float(new[metric.column]) != float(good.values[-1]) else PerRun.SAME), None
    if metric.samples is None or metric.samples not in new:
        return PerRun.UNTESTABLE, None
    if p_value is None:
        return PerRun.TOO_FEW_SAMPLES, None
    return (PerRun.DIFFERS if p_value < alpha else PerRun.SAME), p_value


def _samples_tested(
    metric: Metric, new: dict[str, Any], good: Past, min_samples: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """The raw samples the per-run test compares (new, baseline); None when it compares none."""
    if metric.deterministic or metric.samples is None or metric.samples not in new:
        return None
    a, b = _samples(new[metric.samples]), _samples(good.base_samples)
    return (a, b) if len(a) >= min_samples and len(b) >= min_samples else None


def last_level_shift(series: np.ndarray, deterministic: bool = False) -> tuple[int, float] | None:
    """Where the history (per-run figures, oldest first, the new run last) left its last
    established level — a segment between change points longer than RECENT_LEVEL runs — as
    (index of the first run after it, relative change of the newest segment's mean against
    that level's mean). None without enough history, a change, or an established level."""
    if len(series) < MIN_CHANGE_POINT_HISTORY:
        return None
    sigma = _noise(series, deterministic)
    penalty = 4.0 * sigma**2 * np.log(len(series))
    ends = pelt_l2(series, penalty)
    segments = list(zip([0, *ends[:-1]], ends, strict=True))
    if len(segments) < 2:
        return None
    newest = segments[-1]
    for start, end in reversed(segments[:-1]):
        if end - start > RECENT_LEVEL:
            return end, _relative(series[newest[0] :].mean(), series[start:end].mean())
    return None


def pelt_l2(series: np.ndarray, penalty: float) -> list[int]:
    """Ends of the segments (the last is len(series)) that PELT with the l2 cost finds: the same
    search, pruning and tie-breaking as `ruptures.Pelt(model="l2", min_size=1, jump=1)`, with each
    step's segment costs computed at once from running sums (a night's 600 cells × metrics call it
    thousands of times; ruptures computes every cost in Python)."""
    x = np.asarray(series, dtype=float).ravel()
    n = len(x)
    centred = x - x.mean()  # running sums of squares of the level itself would cancel catastrophically
    sums = np.concatenate(([0.0], np.cumsum(centred)))
    squares = np.concatenate(([0.0], np.cumsum(centred**2)))
    total = np.zeros(n + 1)  # total[t]: the best partition of x[:t], penalties included
    previous = np.zeros(n + 1, dtype=int)
    admissible = np.array([], dtype=int)
    for end in range(1, n + 1):
        admissible = np.append(admissible, end - 1)  # each candidate segment x[t:end]
        segment = sums[end] - sums[admissible]
        costs = np.maximum(squares[end] - squares[admissible] - segment * segment / (end - admissible), 0.0)
        losses = total[admissible] + (costs + penalty)
        best = int(np.argmin(losses))  # the first of equal losses, as min() picks
        total[end], previous[end] = losses[best], admissible[best]
        admissible = admissible[losses <= total[end] + penalty]
    ends, end = [], n
    while end > 0:
        ends.append(end)
        end = int(previous[end])
    return sorted(ends)


def _prediction_band(history: np.ndarray, alpha: float) -> float:
    """Half-width of the two-sided (1 - alpha) prediction interval for one more run drawn like
    `history` (Student t: few runs give a wide band); 0 with fewer than 3 runs."""
    n = len(history)
    if n < MIN_WANDER_HISTORY:
        return 0.0
    return float(student_t_quantile(1 - alpha / 2, n - 1) * np.std(history, ddof=1) * np.sqrt(1 + 1 / n))


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


def _direction(change: float, threshold: float) -> Direction:
    if change > 0 and change >= threshold:
        return Direction.WORSE
    if change < 0 and change <= -threshold:
        return Direction.BETTER
    return Direction.NONE


def _detail(why: str, row: dict[str, Any], threshold: float) -> str:
    parts = [f"{row['change']:+.1%} vs {row['baseline_run']} ({why}; threshold {threshold:.0%})"]
    if row.get("p_value") is not None:
        parts.append(f"Mann-Whitney p={row['p_value']:.2g}")
    if row.get("change_point_run") is not None:
        parts.append(f"level {row['level_change']:+.1%} since {row['change_point_run']}")
    return ", ".join(parts)
