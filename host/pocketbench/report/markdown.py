"""The run as GitHub-flavoured markdown (a CI comment): the same table model as the terminal's."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from pocketbench.report.table import build_tables, flat, one_line, pareto_lines, run_title, warnings
from pocketbench.results.compare import latest_attempts


def render_markdown(frame: pd.DataFrame, run_id: str, baseline_id: str | None = None, notes: Sequence[str] = ()) -> str:
    """GitHub-flavoured markdown for a CI comment: a heading, per model a header line and a
    table, then the warnings."""
    lines = [f"## {run_title(run_id, baseline_id)}", ""]
    groups = [group for _, group in latest_attempts(frame).groupby("model", sort=False)]
    for model, group in zip(build_tables(frame), groups, strict=True):
        lines.append(f"### {model.title}")
        lines.append("")
        if model.header_line:
            lines += [f"_{md_escape(model.header_line)}_", ""]
        headers = [one_line(h) for h in model.headers]
        lines.append("| " + " | ".join(headers) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|")
        lines += ["| " + " | ".join(md_escape(flat(c)) for c in row) + " |" for row in model.rows]
        lines.append("")
        lines += [f"_{md_escape(line)}_" for line in pareto_lines(group)] + ([""] if pareto_lines(group) else [])
    listed = [*notes, *warnings(frame)]
    if listed:
        lines += ["**Warnings**", ""] + [f"- ⚠ {md_escape(n)}" for n in listed] + [""]
    return "\n".join(lines)


def md_escape(text: str) -> str:
    """Text safe inside a GitHub markdown table cell or emphasis."""
    return text.replace("|", "\\|").replace("_", "\\_").replace("*", "\\*")
