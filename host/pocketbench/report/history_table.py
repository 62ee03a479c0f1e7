"""The history command's table: one line per stored row, the whole frame a format flag away."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from rich.table import Table
from rich.text import Text

from pocketbench.atomic import folder_locked
from pocketbench.report.table import fmt_number, fmt_pct


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


def summary_table(frame: pd.DataFrame, interrupted: set[str] | None = None) -> Table:
    """One line per stored row: which run (`(interrupted)` when it stopped before it finished),
    which cell, its status and headline figures."""
    interrupted = interrupted or set()
    runs = frame["run_id"].nunique()
    table = Table(
        "run", "model", "variant", "device", "attempt", "status", "p50 ms", "peak RSS MB", "accuracy",
        title=f"history: {len(frame)} rows from {runs} run(s)", title_justify="left",
        caption="the whole DataFrame: --format csv|parquet|json [--out FILE]", caption_justify="left",
    )  # fmt: skip
    for _, row in frame.iterrows():
        rss = row["peak_rss_kb"] / 1e3 if pd.notna(row["peak_rss_kb"]) else None
        cells = [
            str(row["run_id"]) + (" (interrupted)" if str(row["run_id"]) in interrupted else ""),
            str(row["model"]), str(row["variant"]), str(row["device"]),
            str(row["attempt"]), str(row["status"]), fmt_number(row["latency_p50_ms"], ".3f"), fmt_number(rss, ".1f"),
            fmt_pct(row["accuracy"]),
        ]  # fmt: skip
        table.add_row(*map(Text, cells))  # names are text, never markup
    return table
