"""Compare a run against a baseline run, cell by cell, on the raw latency samples.

Pure functions over numbers and DataFrames. For now: plain deltas plus a two-sided Mann-Whitney
U test on the raw samples (no normality assumption; phone latencies are skewed). The statistics
themselves live in stats.py; this module only matches cells across runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pocketbench.results.cell_status import MEASURED, CellStatus
from pocketbench.results.store import CELL_KEY

ALPHA = 0.05

# Columns `compare_runs` adds to the current run's rows.
COMPARE_COLUMNS = [
    "baseline_run_id", "baseline_latency_p50_ms", "latency_p50_delta_ms", "latency_p50_change_pct",
    "latency_p_value", "latency_change_significant", "accuracy_delta_points", "size_delta_bytes",
    "peak_rss_delta_kb",
]  # fmt: skip


@dataclass(frozen=True)
class LatencyChange:
    """How a cell's latency moved from baseline to current (p50 based; p from the raw samples)."""

    delta_ms: float | None  # current p50 - baseline p50
    change_pct: float | None  # 100 * delta / baseline p50
    p_value: float | None  # None: too few samples to test
    significant: bool | None


def _median(values: Sequence[float]) -> float | None:
    return float(pd.Series(values, dtype="float64").median()) if len(values) else None


def latency_change(baseline: Sequence[float], current: Sequence[float], alpha: float = ALPHA) -> LatencyChange:
    """Delta of the medians and a two-sided Mann-Whitney U test of the two sample sets (stats.py)."""
    from pocketbench import stats

    base, cur = _median(baseline), _median(current)
    if base is None or cur is None:
        return LatencyChange(None, None, None, None)
    delta = cur - base
    pct = 100.0 * delta / base if base else None
    if len(baseline) < 2 or len(current) < 2:
        return LatencyChange(delta, pct, None, None)
    p_value = stats.mann_whitney_p(baseline, current)
    return LatencyChange(delta, pct, p_value, p_value < alpha)


def unstable_reason(samples: Sequence[float]) -> str | None:
    """Why a cell's samples look unstable (stats.unstable_reasons), or None."""
    from pocketbench import stats

    if len(samples) < 2:
        return None
    return "; ".join(stats.unstable_reasons(list(samples))) or None


def latest_attempts(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: its last attempt (earlier tries stay in the store and in history)."""
    if frame.empty:
        return frame
    attempts = frame["attempt"].fillna(1) if "attempt" in frame else pd.Series(1, index=frame.index)
    order = frame.assign(_attempt=attempts).sort_values("_attempt", kind="stable")
    last = order.drop_duplicates(CELL_KEY, keep="last").drop(columns="_attempt")
    return last.loc[[i for i in frame.index if i in last.index]]


def timing_kind(row: pd.Series | dict[str, Any]) -> str:
    """ "real", or "emulated (how)": timings of different kinds are never compared (an
    emulated arm64 phone runs every instruction through qemu; the x86_64 one runs on this host)."""
    emulated = row.get("device_emulated")
    if emulated is None or (not isinstance(emulated, str) and pd.isna(emulated)) or not bool(emulated):
        return "real"
    how = row.get("device_emulation")
    return f"emulated ({how})" if isinstance(how, str) and how else "emulated"


def timing_mismatches(current: pd.DataFrame, baseline: pd.DataFrame) -> list[str]:
    """One line per cell whose baseline was timed on another kind of device (real vs emulated)."""
    base_ok = latest_attempts(baseline)
    base_ok = base_ok[base_ok["status"] == CellStatus.OK].set_index(CELL_KEY)
    lines = []
    for _, row in latest_attempts(current).iterrows():
        key = tuple(row[c] for c in CELL_KEY)
        if row["status"] != CellStatus.OK or key not in base_ok.index:
            continue
        was, now = timing_kind(base_ok.loc[key]), timing_kind(row)
        if was != now:
            lines.append(
                f"not compared: {row['model']} {row['variant']} on {row['device']}: the baseline's timings"
                f" are {was}, this run's are {now}; latency and memory deltas are left out"
            )
    return lines


def _delta(current: Any, baseline: Any, scale: float = 1.0) -> float | None:
    if current is None or baseline is None or pd.isna(current) or pd.isna(baseline):
        return None
    return scale * (float(current) - float(baseline))


def compare_runs(current: pd.DataFrame, baseline: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """The current run's cells (last attempts) with COMPARE_COLUMNS against the baseline's
    ok cell of the same model, variant and device (left empty when there is none)."""
    frame = latest_attempts(current).copy()
    base_ok = latest_attempts(baseline)
    base_ok = base_ok[base_ok["status"] == CellStatus.OK].set_index(CELL_KEY)
    values: dict[str, list[Any]] = {c: [] for c in COMPARE_COLUMNS}
    for _, row in frame.iterrows():
        key = tuple(row[c] for c in CELL_KEY)
        ref = base_ok.loc[key] if key in base_ok.index else None
        if ref is None or row["status"] not in MEASURED or row["latency_samples_ms"] is None:
            for column in COMPARE_COLUMNS:
                values[column].append(None)
            continue
        same_kind = timing_kind(ref) == timing_kind(row)  # else: timing_mismatches says why
        change = (
            latency_change(list(ref["latency_samples_ms"]), list(row["latency_samples_ms"]), alpha)
            if same_kind
            else LatencyChange(None, None, None, None)
        )
        values["baseline_run_id"].append(ref["run_id"])
        values["baseline_latency_p50_ms"].append(ref["latency_p50_ms"] if same_kind else None)
        values["latency_p50_delta_ms"].append(change.delta_ms)
        values["latency_p50_change_pct"].append(change.change_pct)
        values["latency_p_value"].append(change.p_value)
        values["latency_change_significant"].append(change.significant)
        values["accuracy_delta_points"].append(_delta(row["accuracy"], ref["accuracy"], 100.0))
        values["size_delta_bytes"].append(_delta(row["size_bytes"], ref["size_bytes"]))
        values["peak_rss_delta_kb"].append(_delta(row["peak_rss_kb"], ref["peak_rss_kb"]) if same_kind else None)
    for column, column_values in values.items():
        dtype = "object" if column in ("baseline_run_id", "latency_change_significant") else "float64"
        frame[column] = pd.Series(column_values, index=frame.index, dtype=dtype)
    return frame
