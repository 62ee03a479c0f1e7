"""The column-wise comparison, verdict and Pareto paths give exactly what the row-by-row ones gave.

History, comparisons and verdicts were made fast by computing column by column (one index
lookup instead of a lookup per row, Mann-Whitney tests batched by sample sizes, arrays instead of
DataFrame slices per cell and metric) and by measuring a table's width from the rows that decide
it. The row-by-row comparison and Pareto marks are kept below, in the test only, as the reference;
the verdicts of a varied synthetic history are compared with those the row-by-row verdicts gave
(tests/data/golden/verdicts_reference.json).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pocketbench import stats
from pocketbench.farm.matrix import DEFAULT_THRESHOLDS
from pocketbench.farm.regress import verdicts
from pocketbench.report.column_formats import row_dicts
from pocketbench.report.table import build_tables
from pocketbench.report.terminal import _width, column_widths, fixed_table, measured_rows, rich_table
from pocketbench.results.compare import (
    COMPARE_COLUMNS,
    MEASURED,
    LatencyChange,
    compare_runs,
    latency_change,
    latest_attempts,
    timing_kind,
)
from pocketbench.results.pareto import pareto_front, pareto_marks, quality
from pocketbench.results.store import CELL_KEY, load_run
from rich.console import Console

from tests.conftest import DATA

VERDICTS_REFERENCE = DATA / "golden" / "verdicts_reference.json"


def reference_compare_runs(current: pd.DataFrame, baseline: pd.DataFrame) -> pd.DataFrame:
    """The row-by-row comparison: each cell looked up in the baseline, tested on its own."""

    def delta(now: Any, base: Any, scale: float = 1.0) -> float | None:
        return None if now is None or base is None or pd.isna(now) or pd.isna(base) else scale * (now - base)

    frame = latest_attempts(current).copy()
    base_ok = latest_attempts(baseline)
    base_ok = base_ok[base_ok["status"] == "ok"].set_index(CELL_KEY)
    values: dict[str, list[Any]] = {c: [] for c in COMPARE_COLUMNS}
    for _, row in frame.iterrows():
        key = tuple(row[c] for c in CELL_KEY)
        ref = base_ok.loc[key] if key in base_ok.index else None
        if ref is None or row["status"] not in MEASURED or row["latency_samples_ms"] is None:
            for column in COMPARE_COLUMNS:
                values[column].append(None)
            continue
        same = timing_kind(ref) == timing_kind(row)
        change = (
            latency_change(list(ref["latency_samples_ms"]), list(row["latency_samples_ms"]))
            if same
            else LatencyChange(None, None, None, None)
        )
        values["baseline_run_id"].append(ref["run_id"])
        values["baseline_latency_p50_ms"].append(ref["latency_p50_ms"] if same else None)
        values["latency_p50_delta_ms"].append(change.delta_ms)
        values["latency_p50_change_pct"].append(change.change_pct)
        values["latency_p_value"].append(change.p_value)
        values["latency_change_significant"].append(change.significant)
        values["accuracy_delta_points"].append(delta(row["accuracy"], ref["accuracy"], 100.0))
        values["size_delta_bytes"].append(delta(row["size_bytes"], ref["size_bytes"]))
        values["peak_rss_delta_kb"].append(delta(row["peak_rss_kb"], ref["peak_rss_kb"]) if same else None)
    for column, column_values in values.items():
        dtype = "object" if column in ("baseline_run_id", "latency_change_significant") else "float64"
        frame[column] = pd.Series(column_values, index=frame.index, dtype=dtype)
    return frame


def reference_pareto_marks(frame: pd.DataFrame) -> list[str | None]:
    """The row-by-row Pareto marks: each usable row read with iloc."""
    marks: list[list[str]] = [[] for _ in range(len(frame))]
    _, good = quality(frame)
    for _, group in frame.groupby("device", sort=False):
        positions = [frame.index.get_loc(i) for i in group.index]
        for label, cost in (("lat", "latency_p50_ms"), ("size", "size_bytes")):
            usable = [
                p for p in positions
                if frame.iloc[p]["status"] == "ok" and not pd.isna(good.iloc[p]) and not pd.isna(frame.iloc[p][cost])
            ]  # fmt: skip
            points = [(float(frame.iloc[p][cost]), float(good.iloc[p])) for p in usable]
            for p, optimal in zip(usable, reference_front(points), strict=True):
                if optimal:
                    marks[p].append(label)
    return [" ".join(m) or None for m in marks]


def reference_front(points: list[tuple[float, float]]) -> list[bool]:
    return [
        not any(c <= cost and g >= good and (c < cost or g > good) for j, (c, g) in enumerate(points) if j != i)
        for i, (cost, good) in enumerate(points)
    ]


def _runs() -> dict[str, pd.DataFrame]:
    runs = {name: load_run(str(DATA / name), DATA)[0] for name in ("example_run", "v1_run", "ci_run")}
    emulated = runs["example_run"].assign(device_emulated=True, device_emulation="qemu-user aarch64 on x86_64")
    return runs | {"emulated": emulated}


PAIRS = [("example_run", "v1_run"), ("ci_run", "example_run"), ("v1_run", "ci_run"), ("example_run", "example_run")]


@pytest.mark.parametrize(("current", "baseline"), [*PAIRS, ("emulated", "example_run"), ("example_run", "emulated")])
def test_compare_runs_matches_the_row_by_row_comparison(current, baseline):
    runs = _runs()
    fast, reference = compare_runs(runs[current], runs[baseline]), reference_compare_runs(runs[current], runs[baseline])
    pd.testing.assert_frame_equal(fast, reference)
    assert fast["baseline_run_id"].notna().any()  # the pairs share cells: something was compared


def test_batched_mann_whitney_gives_each_pairs_own_p_value():
    rng = np.random.default_rng(7)
    pairs = []
    for trial in range(120):
        n, m = int(rng.integers(1, 30)), int(rng.choice([1, 5, 9, 12, 12, 40]))
        a, b = rng.normal(10, 1, n), rng.normal(10 + trial % 3, 1, m)
        if trial % 4 == 1:
            a, b = np.round(a), np.round(b)  # ties
        if trial % 9 == 2:
            a, b = np.full(n, 3.0), np.full(m, 3.0)  # one constant on both sides
        if trial % 11 == 3:
            a[0] = np.nan
        pairs.append((a, b))
    # Past scipy's exact sizes the p-values are computed in numpy by scipy's formula: equal to
    # rounding, and the same decision at any level.
    np.testing.assert_allclose(stats.mann_whitney_ps(pairs), [stats.mann_whitney_p(a, b) for a, b in pairs], rtol=1e-9)


def test_pareto_marks_match_the_row_by_row_marks():
    for frame in _runs().values():
        current = latest_attempts(frame)
        for _, group in current.groupby("model", sort=False):
            assert pareto_marks(group) == reference_pareto_marks(group)
    rng = np.random.default_rng(3)
    for _ in range(40):
        n = int(rng.integers(1, 12))
        frame = pd.DataFrame(
            {
                "device": rng.choice(["a", "b"], n),
                "status": rng.choice(["ok", "ok", "ok", "crashed"], n),
                "latency_p50_ms": np.where(rng.random(n) < 0.1, np.nan, np.round(rng.random(n), 1)),
                "size_bytes": pd.array(rng.choice([100, 200, 300], n), dtype="Int64"),
                "accuracy": np.where(rng.random(n) < 0.1, np.nan, np.round(rng.random(n), 1)),
                "sqnr_db": np.round(30 * rng.random(n)),
            },
            index=rng.permutation(100)[:n],
        )
        assert pareto_marks(frame) == reference_pareto_marks(frame)
        points = list(zip(frame["latency_p50_ms"], frame["accuracy"], strict=True))
        assert pareto_front(points) == reference_front(points)


def test_a_table_measures_as_wide_from_its_widest_rows_as_from_all():
    runs = _runs()
    console = Console(width=100, color_system=None)
    for current, baseline in PAIRS:
        for table in build_tables(compare_runs(runs[current], runs[baseline])):
            widest = measured_rows(table.rows)
            for end in range(1, len(table.columns) + 1):
                columns = table.columns[:end]
                full = _width(console, console.options, rich_table(table, columns))
                assert _width(console, console.options, rich_table(table, columns, widest)) == full


def test_a_table_given_its_column_widths_draws_as_rich_measures_it():
    runs = _runs()
    for current, baseline in PAIRS:
        for table in build_tables(compare_runs(runs[current], runs[baseline])):
            widths = column_widths(table)
            for end in range(1, len(table.columns) + 1, 3):
                for width in (50, 100, 250):
                    drawn = []
                    for given in (None, widths):
                        console = Console(width=width, force_terminal=True, color_system="truecolor")
                        with console.capture() as captured:
                            console.print(rich_table(table, table.columns[:end], widths=given))
                        drawn.append(captured.get())
                    assert drawn[0] == drawn[1]


def test_a_table_drawn_line_by_line_is_what_rich_draws():
    runs = _runs()
    statuses = set()
    for current, baseline in PAIRS:
        for table in build_tables(compare_runs(runs[current], runs[baseline])):
            widths = column_widths(table)
            statuses |= set(table.statuses)
            for end in range(1, len(table.columns) + 1, 2):
                drawn = []
                for draw in (
                    rich_table(table, table.columns[:end], widths=widths),
                    fixed_table(table, table.columns[:end], widths),
                ):
                    console = Console(width=250, force_terminal=True, color_system="truecolor")
                    with console.capture() as captured:
                        console.print(draw, crop=False)
                    drawn.append(captured.get())
                assert drawn[0] == drawn[1]
    assert len(statuses) > 1  # rows in a colour of their status were drawn too


def test_row_dicts_are_to_dicts_records():
    runs = _runs()
    frames = [*runs.values(), *(compare_runs(runs[current], runs[baseline]) for current, baseline in PAIRS)]
    for frame in frames:
        fast, reference = row_dicts(frame), frame.to_dict("records")
        assert len(fast) == len(reference)
        for got, expected in zip(fast, reference, strict=True):
            assert list(got) == list(expected)
            for name, value in expected.items():
                assert type(got[name]) is type(value), name
                assert got[name] is value or got[name] == value or (value != value and got[name] != got[name]), name


def verdict_history() -> pd.DataFrame:
    """Nightly runs of several cells: noise, a step, a drift, a speed-up, a failed night, a retried cell, a
    phone that turns emulated, missing energy, a size that changes, and too few samples."""
    rng = np.random.default_rng(2027)
    rows = []
    cells = [
        (device, model, variant)
        for device in ("pixel", "tab")
        for model in ("cnn", "gru")
        for variant in ("fp32", "int8")
    ]
    for night in range(14):
        for c, (device, model, variant) in enumerate(cells):
            level = 10.0 + c
            if c == 1 and night >= 10:
                level *= 1.3  # a step
            if c == 2:
                level *= 1 + 0.02 * night  # a drift
            if c == 4 and night >= 12:
                level *= 0.7  # faster
            status = "crashed" if (c == 3 and night == 6) else "ok"
            n = 3 if (c == 5 and night == 13) else 30
            samples = rng.normal(level, 0.02 * level, n)
            row = {
                "run_id": f"night-{night:02d}",
                "started_at": f"2026-11-{night + 1:02d}T02:00:{c:02d}+00:00",
                "attempt": 1,
                "device": device,
                "model": model,
                "variant": variant,
                "status": status,
                "latency_p50_ms": float(np.median(samples)) if status == "ok" else None,
                "latency_samples_ms": list(samples) if status == "ok" else None,
                "size_bytes": (1000 + (50 if c == 4 and night >= 12 else 0)) if status == "ok" else None,
                "peak_rss_kb": 5000.0 * rng.normal(1, 0.01) * (1.5 if c == 6 and night >= 11 else 1.0),
                "energy_mj_per_inference": None if c == 7 else 2.0 * rng.normal(1, 0.02),
                "device_emulated": c == 0 and night >= 12,
                "device_emulation": "qemu-user aarch64 on x86_64" if c == 0 and night >= 12 else None,
            }
            rows.append(row)
            if c == 3 and night == 9:  # retried: the second attempt speaks for the run
                rows.append(row | {"attempt": 2, "latency_p50_ms": row["latency_p50_ms"] * 1.01})
    return pd.DataFrame(rows)


FLAGGED = {("night-11", "pixel", "cnn", "int8", "latency_p50_ms")}


def verdict_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """A verdict table as plain JSON values (every kind of missing as None)."""

    def plain(value: Any) -> Any:
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return None
        return value.item() if isinstance(value, np.generic) else str(value) if isinstance(value, str) else value

    return [{k: plain(v) for k, v in row.items()} for row in table.to_dict("records")]


def judged() -> dict[str, list[dict[str, Any]]]:
    history = verdict_history()
    return {
        run: verdict_records(verdicts(history, run, DEFAULT_THRESHOLDS, flagged=FLAGGED))
        for run in ("night-13", "night-12", "night-09", "night-02", "night-00")
    }


def test_verdicts_match_the_row_by_row_verdicts():
    reference = json.loads(VERDICTS_REFERENCE.read_text())
    got = judged()
    # The Mann-Whitney p-values are computed in numpy, the reference's by scipy: equal to rounding.
    assert {run: len(rows) for run, rows in got.items()} == {run: len(rows) for run, rows in reference.items()}
    pairs = [
        (a.pop("p_value"), b.pop("p_value")) for run in reference for a, b in zip(got[run], reference[run], strict=True)
    ]
    assert got == reference
    assert [a is None for a, _ in pairs] == [b is None for _, b in pairs]
    tested = [(a, b) for a, b in pairs if b is not None]
    assert [a for a, _ in tested] == pytest.approx([b for _, b in tested], rel=1e-12)
    kinds = {row["verdict"] for rows in got.values() for row in rows}
    assert kinds == {"regression", "improvement", "no change", "insufficient data"}  # every path taken
