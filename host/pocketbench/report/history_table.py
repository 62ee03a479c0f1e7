"""The history command's table: one line per stored row, the whole frame a format flag away."""

from __future__ import annotations

import pandas as pd
from rich.table import Table
from rich.text import Text

from pocketbench.report.table import fmt_number, fmt_pct


def summary_table(frame: pd.DataFrame) -> Table:
    """One line per stored row: which run, which cell, its status and headline figures."""
    runs = frame["run_id"].nunique()
    table = Table(
        "run", "model", "variant", "device", "attempt", "status", "p50 ms", "peak RSS MB", "accuracy",
        title=f"history: {len(frame)} rows from {runs} run(s)", title_justify="left",
        caption="the whole DataFrame: --format csv|parquet|json [--out FILE]", caption_justify="left",
    )  # fmt: skip
    for _, row in frame.iterrows():
        rss = row["peak_rss_kb"] / 1e3 if pd.notna(row["peak_rss_kb"]) else None
        cells = [
            str(row["run_id"]), str(row["model"]), str(row["variant"]), str(row["device"]),
            str(row["attempt"]), str(row["status"]), fmt_number(row["latency_p50_ms"], ".3f"), fmt_number(rss, ".1f"),
            fmt_pct(row["accuracy"]),
        ]  # fmt: skip
        table.add_row(*map(Text, cells))  # names are text, never markup
    return table
