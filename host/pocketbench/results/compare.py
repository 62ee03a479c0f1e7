"""Compare a run against a baseline run, cell by cell, on the raw latency samples.

Pure functions over numbers and DataFrames. For now: plain deltas plus a two-sided Mann-Whitney
U test on the raw samples (no normality assumption; phone latencies are skewed). The statistics
themselves live in stats.py; this module only matches cells across runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
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
    """The median of the values present (as pandas', which skips NaN); None without values."""
    if not len(values):
        return None
    array = np.asarray(values, dtype=np.float64)
    present = array[~np.isnan(array)]
    return float(np.median(present)) if present.size else math.nan


def latency_change(baseline: Sequence[float], current: Sequence[float], alpha: float = ALPHA) -> LatencyChange:
    """Delta of the medians and a two-sided Mann-Whitney U test of the two sample sets (stats.py)."""
    return latency_changes([(baseline, current)], alpha)[0]


def latency_changes(
    pairs: Sequence[tuple[Sequence[float], Sequence[float]]], alpha: float = ALPHA
) -> list[LatencyChange]:
    """latency_change of every (baseline, current) pair, the tests run together (stats.mann_whitney_ps)."""
    from pocketbench import stats

    medians = [(_median(base), _median(cur)) for base, cur in pairs]
    tested = [i for i, (base, cur) in enumerate(pairs) if len(base) >= 2 and len(cur) >= 2 and None not in medians[i]]
    p_values = dict(zip(tested, stats.mann_whitney_ps([pairs[i] for i in tested]), strict=True))
    changes = []
    for i, (base, cur) in enumerate(medians):
        if base is None or cur is None:
            changes.append(LatencyChange(None, None, None, None))
            continue
        delta = cur - base
        pct = 100.0 * delta / base if base else None
        p_value = p_values.get(i)
        changes.append(LatencyChange(delta, pct, p_value, None if p_value is None else p_value < alpha))
    return changes


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
    base_ok = base_ok[base_ok["status"] == CellStatus.OK].reset_index(drop=True)
    now = latest_attempts(current)
    now = now[now["status"] == CellStatus.OK]
    if base_ok.empty or now.empty:
        return []
    found = pd.MultiIndex.from_frame(base_ok[CELL_KEY]).get_indexer(pd.MultiIndex.from_frame(now[CELL_KEY]))
    now = now[found >= 0]
    was_kinds = timing_kinds(base_ok.iloc[found[found >= 0]])
    lines = []
    for (model, variant, device), was, is_now in zip(
        now[CELL_KEY].itertuples(index=False), was_kinds, timing_kinds(now), strict=True
    ):
        if was != is_now:
            lines.append(
                f"not compared: {model} {variant} on {device}: the baseline's timings"
                f" are {was}, this run's are {is_now}; latency and memory deltas are left out"
            )
    return lines


def compare_runs(current: pd.DataFrame, baseline: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """The current run's cells (last attempts) with COMPARE_COLUMNS against the baseline's
    ok cell of the same model, variant and device (left empty when there is none).

    Column by column rather than row by row: the matching is one index lookup, the differences
    are array arithmetic, and only the Mann-Whitney tests run per cell."""
    frame = latest_attempts(current).copy()
    base_ok = latest_attempts(baseline)
    base_ok = base_ok[base_ok["status"] == CellStatus.OK].reset_index(drop=True)
    found = pd.MultiIndex.from_frame(base_ok[CELL_KEY]).get_indexer(pd.MultiIndex.from_frame(frame[CELL_KEY]))
    samples = frame["latency_samples_ms"]
    matched = (found >= 0) & frame["status"].isin(MEASURED).to_numpy() & samples.notna().to_numpy()
    matched &= np.array([value is not None for value in samples], dtype=bool)
    ref = base_ok.iloc[found[matched]]
    same_kind = np.array(timing_kinds(ref), dtype=object) == np.array(timing_kinds(frame[matched]), dtype=object)
    pairs = [(list(base), list(now)) for base, now in zip(ref["latency_samples_ms"], samples[matched], strict=True)]
    compared = iter(latency_changes([pair for pair, same in zip(pairs, same_kind, strict=True) if same], alpha))
    # a baseline of another kind of timing is not compared: timing_mismatches says why
    changes = [next(compared) if same else LatencyChange(None, None, None, None) for same in same_kind]
    values: dict[str, Any] = {
        "baseline_run_id": ref["run_id"].to_numpy(dtype=object),
        "baseline_latency_p50_ms": np.where(same_kind, _floats(ref["latency_p50_ms"]), np.nan),
        "latency_p50_delta_ms": [c.delta_ms for c in changes],
        "latency_p50_change_pct": [c.change_pct for c in changes],
        "latency_p_value": [c.p_value for c in changes],
        "latency_change_significant": [c.significant for c in changes],
        "accuracy_delta_points": 100.0 * (_floats(frame["accuracy"][matched]) - _floats(ref["accuracy"])),
        "size_delta_bytes": _floats(frame["size_bytes"][matched]) - _floats(ref["size_bytes"]),
        "peak_rss_delta_kb": np.where(
            same_kind, _floats(frame["peak_rss_kb"][matched]) - _floats(ref["peak_rss_kb"]), np.nan
        ),
    }
    for column in COMPARE_COLUMNS:
        dtype = object if column in ("baseline_run_id", "latency_change_significant") else np.float64
        filled = np.full(len(frame), None if dtype is object else np.nan, dtype=dtype)
        filled[matched] = pd.Series(values[column], dtype=dtype).to_numpy()
        frame[column] = pd.Series(filled, index=frame.index, dtype=dtype)
    return frame


def _floats(column: pd.Series) -> np.ndarray:
    """A figure column as floats, every kind of missing value as NaN."""
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def timing_kinds(frame: pd.DataFrame) -> list[str]:
    """timing_kind of every row, computed once per distinct (emulated, how) pair."""
    columns = [c for c in ("device_emulated", "device_emulation") if c in frame]
    if not columns:
        return ["real"] * len(frame)
    known: dict[tuple[Any, ...], str] = {}
    kinds = []
    for values in zip(*(frame[c].to_numpy(dtype=object) for c in columns), strict=True):
        kind = known.get(values)
        if kind is None:  # a key holding NaN never matches itself: computed again, the same
            key = tuple(None if not isinstance(v, str) and pd.isna(v) else v for v in values)
            kind = known[values] = timing_kind(dict(zip(columns, key, strict=True)))
        kinds.append(kind)
    return kinds
