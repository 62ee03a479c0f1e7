"""The HTML report's trend table: one row per cell, its p50 over the runs as an inline SVG line."""

from __future__ import annotations

import re

import pandas as pd
from pocketbench.report.sparklines import HEIGHT, PAD, WIDTH, sparkline, trend_table, trends


def _history(nights: int) -> pd.DataFrame:
    rows = []
    for night in range(nights):
        run = f"2026{night // 28 + 1:02d}{night % 28 + 1:02d}-020000-{night:06x}"
        for variant in ("fp32", "int8") if night != 1 else ("int8",):  # fp32 missed a night
            p50 = (2.0 if variant == "fp32" else 1.0) * (1.5 if night == 200 else 1.0)
            rows.append([run, "m", variant, "phone", "ok", 1, p50])
    rows.append(["20260101-020000-000000", "m", "int8", "phone", "ok", 0, 99.0])  # an earlier attempt
    rows.append(["20260101-020000-000000", "m", "once", "phone", "ok", 1, 3.0])  # one run only
    rows.append(["20260103-020000-000002", "m", "fp32", "phone", "failed", 2, None])  # measured at attempt 1
    return pd.DataFrame(rows, columns=["run_id", "model", "variant", "device", "status", "attempt", "latency_p50_ms"])


def test_each_cell_keeps_its_newest_attempt_per_run_and_cells_of_one_run_are_left_out():
    found = {t.cell: t for t in trends(_history(300))}
    assert set(found) == {("m", "fp32", "phone"), ("m", "int8", "phone")}
    int8 = found[("m", "int8", "phone")]
    assert len(int8.values) == 300 and int8.values[0] == 1.0 and int8.values.max() == 1.5  # not the 99.0 retried
    assert len(found[("m", "fp32", "phone")].values) == 299  # the missed night is a gap
    assert found[("m", "fp32", "phone")].positions[0] == 0 and 1 not in found[("m", "fp32", "phone")].positions


def test_a_one_night_spike_stays_visible_when_a_year_is_squeezed_into_the_line():
    int8 = next(t for t in trends(_history(365)) if t.variant == "int8")
    points = [tuple(map(int, p.split(","))) for p in re.search(r'points="([^"]+)"', sparkline(int8)).group(1).split()]
    assert min(y for _, y in points) == PAD  # the spike's top
    assert max(y for _, y in points) == HEIGHT - PAD
    assert all(PAD <= x < WIDTH - PAD for x, _ in points)
    assert len(points) <= 4 * WIDTH


def test_no_table_without_two_runs():
    one = _history(1)
    assert trend_table(one[one["run_id"] == one["run_id"].iloc[0]]) == ""
    assert trend_table(_history(3)).count("<svg") == 2
