"""Trends over runs as a table of inline SVG sparklines: one row per cell (model, variant, device).

A year of nightly runs over hundreds of cells is too many lines for one chart and too many charts
for one page. A row per cell, its p50 over the runs drawn as a small vector line written here
directly (no plotting library: hundreds of them cost milliseconds), keeps every series visible,
findable with the browser's search and the page small. Each line is drawn on its own scale (its
row gives the range); a run the cell was not measured in leaves a gap in x, so lines line up.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

import numpy as np
import pandas as pd

from pocketbench.results.cell_status import MEASURED

# What the trend table reads from history: one p50 per cell and run, never the raw samples.
TREND_COLUMNS = ["run_id", "model", "variant", "device", "status", "attempt", "latency_p50_ms"]
WIDTH, HEIGHT, PAD = 160, 24, 2  # a sparkline's box in CSS pixels; PAD keeps the stroke inside
HEADERS = ["model", "variant", "device", "runs", "first p50 ms", "min", "max", "newest", "newest vs median", "trend"]
STYLE = "svg.spark { vertical-align: middle; } svg.spark polyline { fill: none; stroke: #1f77b4; stroke-width: 1; }"


@dataclass(frozen=True)
class Trend:
    """One cell's p50 over the runs it was measured in (x: the run's place among all runs)."""

    model: str
    variant: str
    device: str
    positions: np.ndarray
    values: np.ndarray
    runs: int  # runs in the whole history: the x axis

    @property
    def cell(self) -> tuple[str, str, str]:
        return self.model, self.variant, self.device

    def newest_vs_median(self) -> str:
        """The newest p50 against the cell's median over the runs: is the newest run unusual?"""
        median = float(np.median(self.values))
        return f"{self.values[-1] / median - 1.0:+.1%}" if median > 0 else ""


def trends(history: pd.DataFrame) -> list[Trend]:
    """Each cell measured in two runs or more, in the order cells first appear (a cell's last
    attempt in a run counts)."""
    ok = history[history["status"].isin(MEASURED)].dropna(subset=["latency_p50_ms"])
    if ok.empty:
        return []
    runs = sorted(ok["run_id"].astype(str).unique())
    if len(runs) < 2:
        return []
    position = {run: i for i, run in enumerate(runs)}
    ok = ok.assign(_x=ok["run_id"].astype(str).map(position), _try=pd.to_numeric(ok["attempt"]).fillna(0))
    ok = ok.sort_values(["_x", "_try"], kind="stable")
    ok = ok.drop_duplicates(["model", "variant", "device", "_x"], keep="last")
    found = []
    for (model, variant, device), cell in ok.groupby(["model", "variant", "device"], sort=False):
        if len(cell) >= 2:
            xs = cell["_x"].to_numpy(dtype=int)
            found.append(
                Trend(str(model), str(variant), str(device), xs, cell["latency_p50_ms"].to_numpy(float), len(runs))
            )
    return found


def sparkline(trend: Trend) -> str:
    """The cell's p50 as an SVG polyline; several runs in one pixel column drawn as that
    column's low and high (a one-night spike stays visible when a year is squeezed in)."""
    low, high = float(trend.values.min()), float(trend.values.max())
    span = high - low or 1.0
    xs = np.floor(trend.positions * (WIDTH - 2 * PAD - 1) / max(trend.runs - 1, 1) + PAD).astype(int)
    ys = np.rint(HEIGHT - PAD - (trend.values - low) / span * (HEIGHT - 2 * PAD)).astype(int)
    points = []
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], len(xs)]
    # Each pixel column's runs at once (plain ints, not an array slice per column).
    columns = zip(
        xs[starts].tolist(),
        (ends - starts).tolist(),
        ys[starts].tolist(),
        np.maximum.reduceat(ys, starts).tolist(),
        np.minimum.reduceat(ys, starts).tolist(),
        ys[ends - 1].tolist(),
        strict=True,
    )
    for x, runs, first, y_max, y_min, last in columns:
        if runs == 1:
            points.append(f"{x},{first}")
        else:  # first, extremes, last: the line enters and leaves the column where the runs do
            points += [f"{x},{y}" for y in dict.fromkeys([first, y_max, y_min, last])]
    title = f"p50 {low:.4g}–{high:.4g} ms over {len(trend.values)} runs"
    return (
        f'<svg class="spark" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}">'
        f'<title>{escape(title)}</title><polyline points="{" ".join(points)}"/></svg>'
    )


def trend_table(history: pd.DataFrame) -> str:
    """The trends as one HTML table ('' when no cell has two runs)."""
    found = trends(history)
    if not found:
        return ""
    head = "".join(f"<th{' class=text' if h in ('variant', 'device') else ''}>{escape(h)}</th>" for h in HEADERS)
    rows = []
    for trend in found:
        values = trend.values
        cells = [
            *(f"<td{' class=text' if i else ''}>{escape(v)}</td>" for i, v in enumerate(trend.cell)),
            f"<td>{len(values)}</td>",
            *(f"<td>{v:.4g}</td>" for v in (values[0], values.min(), values.max(), values[-1])),
            f"<td>{trend.newest_vs_median()}</td>",
            f"<td>{sparkline(trend)}</td>",
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
