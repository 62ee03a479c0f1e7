"""One self-contained HTML page: the report tables, warnings and plots embedded as base64 PNG.

Nothing is fetched when it is opened: no scripts, no fonts, no CDN; it can be mailed or
attached to a CI run as a single file.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Sequence
from html import escape
from typing import Any

import pandas as pd

from pocketbench.report import plots
from pocketbench.report.cautions import warnings
from pocketbench.report.column_formats import flat, one_line
from pocketbench.report.profile_view import SPLIT_HEADERS, profile_sections
from pocketbench.report.sparklines import STYLE as SPARKLINE_STYLE
from pocketbench.report.sparklines import trend_table
from pocketbench.report.table import build_tables
from pocketbench.report.verdict_table import NOTHING_CHANGED, VerdictTable
from pocketbench.results.cell_status import MEASURED, CellStatus
from pocketbench.results.compare import latest_attempts

STYLE = (
    """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 80em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.7em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.failed td { color: #b00; }
tr.partial td { color: #8a6d00; }
tr.regression td { color: #b00; font-weight: bold; }
tr.improvement td { color: #070; }
td.text, th.text { text-align: left; }
.folded { color: #555; font-style: italic; }
.warnings li { color: #8a6d00; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figcaption { font-size: 0.8em; color: #555; text-align: center; }
code { font-size: 0.9em; }
"""
    + SPARKLINE_STYLE
)
# Energy column names later measurement work writes; bars appear for whichever is present.
ENERGY_COLUMNS = {"energy_mj_per_inference": ("mJ per inference", 1.0)}
MEMORY_COLUMNS = {"peak_rss_kb": ("MB", 1e-3), "planned_memory_bytes": ("KB", 1e-3)}
PARETO_PANELS: list[plots.Panel] = [("accuracy", "accuracy", True, 1.0), ("size_bytes", ".pte size (KB)", False, 1e-3)]


def render_html(
    frame: pd.DataFrame,
    manifest: dict[str, Any],
    baseline: pd.DataFrame | None = None,
    baseline_id: str | None = None,
    history: pd.DataFrame | None = None,
    notes: Sequence[str] = (),
    profiles: pd.DataFrame | None = None,
    verdicts: VerdictTable | None = None,
) -> str:
    """The page for one run (optionally compared to a baseline, with the history for trends, the
    run's `--profile` events, and a farm run's verdicts)."""
    run_id = str(manifest.get("run_id"))
    current = latest_attempts(frame)
    title = f"pocketbench run {run_id}" + (f" vs baseline {baseline_id}" if baseline_id else "")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        _run_facts(manifest),
    ]
    for table in build_tables(frame):
        parts.append(f"<h2>{escape(table.title)}</h2>")
        if table.header_line:
            parts.append(f'<p class="folded">{escape(table.header_line)}</p>')
        parts.append(_table_html(table.headers, table.rows, [_row_class(status) for status in table.statuses]))
    listed = [*notes, *warnings(frame)]
    if listed:
        parts.append('<h2>Warnings</h2><ul class="warnings">')
        parts += [f"<li>⚠ {escape(n)}</li>" for n in listed]
        parts.append("</ul>")
    if verdicts is not None:
        parts += verdicts_html(verdicts)
    if profiles is not None:
        parts += _profiles_html(profiles)
    energy = any(c in current and current[c].notna().any() for c in ENERGY_COLUMNS)
    costs = "memory and energy" if energy else "memory"
    sections = [
        ("Search: trials and the front", plots.search(frame)),
        ("Latency distributions", plots.latency_distributions(current, baseline)),
        ("Accuracy and size vs latency", plots.pareto(current, PARETO_PANELS)),
        (costs.capitalize(), plots.bars(current, {**MEMORY_COLUMNS, **ENERGY_COLUMNS}, costs)),
    ]
    for heading, figures in sections:
        if figures:
            parts.append(f"<h2>{escape(heading)}</h2>")
            parts += [_figure(caption, png) for caption, png in figures]
    trend = trend_table(history) if history is not None else ""
    if trend:
        parts += ["<h2>Trends over runs: p50 latency of each cell</h2>", trend]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _run_facts(manifest: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in (manifest.get("versions") or {}).items())
    host = (manifest.get("host") or {}).get("node", "")
    facts = [
        ("created", manifest.get("created")),
        ("git", manifest.get("git_sha")),
        ("host", host),
        ("versions", versions),
    ]
    shown = " · ".join(f"{name} <code>{escape(str(value))}</code>" for name, value in facts if value)
    return f'<p class="folded">{shown}</p>'


def _table_html(
    headers: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str], text: Collection[str] = ()
) -> str:
    """A table; `classes` per row ("" for none); columns named in `text` hold words (left-aligned)."""
    aligned = [" class=text" if i > 0 and h in text else "" for i, h in enumerate(headers)]
    head = "".join(f"<th{a}>{escape(one_line(h))}</th>" for h, a in zip(headers, aligned, strict=True))
    body = "".join(
        f"<tr{f' class={c}' if c else ''}>"
        + "".join(f"<td{a}>{escape(flat(v))}</td>" for v, a in zip(row, aligned, strict=True))
        + "</tr>"
        for row, c in zip(rows, classes, strict=True)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _row_class(status: str) -> str:
    return "" if status == CellStatus.OK else "partial" if status in MEASURED else "failed"


def verdicts_html(table: VerdictTable) -> list[str]:
    """A farm run's verdicts: the changes as a table, the rest counted, then what was not judged."""
    parts = [f"<h2>{escape(table.title)}</h2>"]
    if table.folded:
        parts.append(f'<p class="folded">{escape(table.header_line)}</p>')
    if table.rows:
        classes = [verdict.name.lower() for verdict in table.verdicts]
        parts.append(_table_html(table.headers, table.rows, classes, table.text_headers))
    else:
        parts.append(f"<p>{escape(NOTHING_CHANGED)}</p>")
    parts += [f'<p class="folded">{escape(line)}</p>' for line in [table.counts, *table.facts]]
    listed = [*table.not_judged, *table.problems]
    if listed:
        parts += ['<ul class="warnings">', *(f"<li>⚠ {escape(n)}</li>" for n in listed), "</ul>"]
    return parts


def _profiles_html(events: pd.DataFrame) -> list[str]:
    parts = []
    for section in profile_sections(events):
        parts.append(f"<h2>{escape(section.title)}</h2>")
        parts.append(_table_html(SPLIT_HEADERS, section.split, [""] * len(section.split)))
        if section.ops:
            parts.append(_table_html(section.ops_headers, section.ops, [""] * len(section.ops)))
        parts += ["<ul>", *(f"<li>why: {escape(why)}</li>" for why in section.whys), "</ul>"]
    return parts


def _figure(caption: str, png: bytes) -> str:
    data = base64.b64encode(png).decode()
    return (
        f'<figure><img alt="{escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )
