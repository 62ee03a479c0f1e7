"""The run as GitHub-flavoured markdown (a CI comment): the same table model as the terminal's."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

import pandas as pd

from pocketbench.report.cautions import warnings
from pocketbench.report.column_formats import flat, one_line
from pocketbench.report.table import build_tables, run_title
from pocketbench.report.verdict_table import NOTHING_CHANGED, VerdictTable


def render_markdown(
    frame: pd.DataFrame,
    run_id: str,
    baseline_id: str | None = None,
    notes: Sequence[str] = (),
    verdicts: VerdictTable | None = None,
) -> str:
    """GitHub-flavoured markdown for a CI comment: a heading, per model a header line and a
    table, then the warnings (and a farm run's verdicts)."""
    lines = [f"## {run_title(run_id, baseline_id)}", ""]
    for model in build_tables(frame):
        lines.append(f"### {model.title}")
        lines.append("")
        if model.header_line:
            lines += [f"_{md_escape(model.header_line)}_", ""]
        lines += md_table([one_line(h) for h in model.headers], [[flat(c) for c in row] for row in model.rows])
        lines.append("")
        lines += [f"_{md_escape(line)}_" for line in model.pareto] + ([""] if model.pareto else [])
    listed = [*notes, *warnings(frame)]
    if listed:
        lines += ["**Warnings**", ""] + [f"- ⚠ {md_escape(n)}" for n in listed] + [""]
    if verdicts is not None:
        lines += verdicts_markdown(verdicts)
    return "\n".join(lines)


def verdicts_markdown(table: VerdictTable) -> list[str]:
    """A farm run's verdicts: the changes as a table, the rest counted, then what was not judged."""
    lines = [f"## {md_escape(table.title)}", ""]
    if table.folded:
        lines += [f"_{md_escape(table.header_line)}_", ""]
    if table.rows:
        lines += md_table(table.headers, [[flat(c) for c in row] for row in table.rows], left=table.text_headers)
    else:
        lines.append(NOTHING_CHANGED)
    for line in [table.counts, *table.facts]:
        lines += ["", f"_{md_escape(line)}_"]
    lines.append("")
    listed = [*table.not_judged, *table.problems]
    return lines + [f"- ⚠ {md_escape(n)}" for n in listed] + ([""] if listed else [])


def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: Collection[str] = ()) -> list[str]:
    """A markdown table: the first column and those named in `left` aligned left, figures right;
    every cell escaped (headers are ours, shown as they are)."""
    align = ["---" if i == 0 or h in left else "---:" for i, h in enumerate(headers)]
    return ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"] + [
        "| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows
    ]


def md_escape(text: str) -> str:
    """Text safe inside a GitHub markdown table cell or emphasis; a `<` that could open an HTML
    tag is escaped too, so no name becomes one (`p<0.001` stays as it is)."""
    escaped = text.replace("|", "\\|").replace("_", "\\_").replace("*", "\\*")
    return re.sub(r"<(?=[A-Za-z/!?])", r"\\<", escaped)
