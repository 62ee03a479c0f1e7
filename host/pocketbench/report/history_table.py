"""The history command's table: the newest stored rows, the whole frame a format flag away."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from rich.table import Table
from rich.text import Text

from pocketbench.atomic import folder_locked
from pocketbench.report.column_formats import fmt_number, fmt_pct

# The columns the table shows: all that history needs to read for it.
SUMMARY_COLUMNS = [
    "run_id", "model", "variant", "device", "attempt", "status", "latency_p50_ms", "peak_rss_kb", "accuracy",
]  # fmt: skip


def interrupted_runs(root: Path, run_ids: list[str]) -> set[str]:
    """The runs that stopped before they finished: marked so by the signal that stopped them, or
    killed outright (no results.parquet, and no process writing them now)."""
    stopped = set()
    for run_id in run_ids:
        folder = root / str(run_id)
        try:
            marked = "interrupted" in json.loads((folder / "manifest.json").read_text())
        except (OSError, ValueError):
            continue  # not a run this can read: history names it already
        if marked or not ((folder / "results.parquet").exists() or folder_locked(folder)):
            stopped.add(str(run_id))
    return stopped


def summary_table(shown: pd.DataFrame, rows: int, runs: int, interrupted: set[str] | None = None) -> Table:
    """One line per stored row of `shown` (the newest of the history's `rows`, from `runs` runs):
    which run, which cell, its status and headline figures. A year of nightly runs is hundreds of
    thousands of rows: the table shows the end of it and says how many it left out. A run that
    stopped before it finished reads `(interrupted)`."""
    interrupted = interrupted or set()
    hidden = rows - len(shown)
    caption = "the whole DataFrame: --format csv|parquet|json [--out FILE]"
    if hidden:
        caption = f"{hidden} older rows not shown (--limit 0 shows all); " + caption
    table = Table(
        "run",
        "model",
        "variant",
        "device",
        "attempt",
        "status",
        "p50 ms",
        "peak RSS MB",
        "accuracy",
        title=f"history: {rows} rows from {runs} run(s)",
        title_justify="left",
        caption=caption,
        caption_justify="left",
    )
    for row in shown.itertuples(index=False):
        rss = row.peak_rss_kb / 1e3 if pd.notna(row.peak_rss_kb) else None
        cells = [
            str(row.run_id) + (" (interrupted)" if str(row.run_id) in interrupted else ""),
            str(row.model), str(row.variant), str(row.device),
            str(row.attempt), str(row.status), fmt_number(row.latency_p50_ms, ".3f"), fmt_number(rss, ".1f"),
            fmt_pct(row.accuracy),
        ]  # fmt: skip
        table.add_row(*map(Text, cells))  # names are text, never markup
    return table
