"""The `--profile` view: per model and device, where each variant's inference time goes and why
a variant is (not) faster than its baseline — built once as plain rows, shown as rich tables in
the terminal and as markdown in `report --format md`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from pocketbench.measure.etdump import OUTSIDE, ProfileSummary, compare_ops, explain, op_table, summarize
from pocketbench.report.column_formats import TextColumn
from pocketbench.report.markdown import md_escape, md_table
from pocketbench.report.terminal import REPORTS_HINT, FittedTable, rows_table

TOP_OPS = 3  # ops named per variant in the split table
DIFF_ROWS = 8  # ops shown in the op-by-op table
# Priorities as for the results table: who keeps a place in a narrow terminal (0 always).
SPLIT_COLUMNS = (
    TextColumn("variant", "variant", 0),
    TextColumn("traced ms", "traced ms", 0),
    TextColumn("in XNNPACK", "in XNNPACK", 1),
    TextColumn("outside XNNPACK", "outside XNNPACK", 1, prose=True),  # names the ops it holds
    TextColumn("runtime", "runtime", 2),
    TextColumn("top ops", "top ops (share)", 3, prose=True),
)
SPLIT_HEADERS = tuple(column.header for column in SPLIT_COLUMNS)


@dataclass(frozen=True)
class ProfileSection:
    """One model on one device: the split per variant, ops against the baseline, the why lines."""

    title: str
    split: list[list[str]]
    ops_headers: list[str]
    ops: list[list[str]]
    whys: list[str]


def profile_sections(events: pd.DataFrame, baseline: str = "fp32") -> list[ProfileSection]:
    """A section for every profiled model × device (none when the run was not profiled)."""
    if events.empty:
        return []
    sections = []
    for (model, device), group in events.groupby(["model", "device"], sort=False):
        variants = list(dict.fromkeys(group["variant"]))
        tables = {v: op_table(group[group["variant"] == v]) for v in variants}
        summaries = {v: summarize(group[group["variant"] == v]) for v in variants}
        executes = min(s.executes for s in summaries.values())
        base = baseline if baseline in variants else variants[0]
        others = [v for v in variants if v != base]
        whys = [explain(v, base, summaries[base], summaries[v], compare_ops(tables[base], tables[v])) for v in others]
        sections.append(
            ProfileSection(
                title=f"per-op profile: {model} on {device} (ETDump of {executes} inferences; mean of the middle half)",
                split=[_split_row(v, tables[v], summaries[v]) for v in variants],
                ops_headers=["op", "where", f"{base} ms", *(f"{v} ms (Δ)" for v in others)],
                ops=_ops_rows(tables, base, others) if others else [],
                whys=whys,
            )
        )
    return sections


def render_profiles(events: pd.DataFrame, baseline: str = "fp32") -> Group | None:
    """The sections as rich tables in the terminal's width (None when the run was not profiled)."""
    parts: list[RenderableType] = []
    for section in profile_sections(events, baseline):
        parts += [Text(section.title, style="bold"), _fitted(SPLIT_COLUMNS, section.split)]
        if section.ops:
            # The op, the baseline and the first variant always; then the other variants; then where.
            ops_columns = [
                TextColumn(h.split(" ")[0], h, 2 if h == "where" else 1 if i > 3 else 0)
                for i, h in enumerate(section.ops_headers)
            ]
            parts.append(_fitted(ops_columns, section.ops))
        parts += [Text("  why: " + why, style="cyan") for why in section.whys]
    return Group(*parts) if parts else None


def profiles_markdown(events: pd.DataFrame, baseline: str = "fp32") -> str:
    """The sections as markdown (empty when the run was not profiled)."""
    lines: list[str] = []
    for section in profile_sections(events, baseline):
        lines += [f"### {md_escape(section.title)}", "", *md_table(SPLIT_HEADERS, section.split, left=("where",)), ""]
        if section.ops:
            lines += [*md_table(section.ops_headers, section.ops, left=("where",)), ""]
        lines += [f"- why: {md_escape(why)}" for why in section.whys] + ([""] if section.whys else [])
    return "\n".join(lines)


def _split_row(variant: str, ops: pd.DataFrame, summary: ProfileSummary) -> list[str]:
    outside = ops[ops["where"] == OUTSIDE]
    named = ", ".join(f"{r['op']}×{r['instances']}" for r in outside.to_dict("records"))
    return [
        variant,
        _ms(summary.execute_ms),
        _ms_share(summary.delegated_ms, summary.execute_ms),
        _ms_share(summary.outside_ms, summary.execute_ms) + (f": {named}" if named else ""),
        _ms_share(summary.runtime_ms, summary.execute_ms),
        ", ".join(f"{r['op']} {r['share']:.0%}" for r in ops.head(TOP_OPS).to_dict("records")),
    ]


def _ops_rows(tables: dict[str, pd.DataFrame], base: str, others: list[str]) -> list[list[str]]:
    """Op classes (layouts and datatypes stripped, so fp32 and int8 line up) × variants, in ms;
    the ops that cost most or changed most first."""
    stacked = pd.concat([t.assign(variant=v) for v, t in tables.items()])
    ms = stacked.pivot_table(index=["where", "op"], columns="variant", values="ms", aggfunc="sum", fill_value=0.0)
    changes = ms[others].sub(ms[base], axis=0)
    weight = pd.concat([ms[base], changes.abs().max(axis=1)], axis=1).max(axis=1)
    weight = weight[weight > 0]  # ops too short for the tracer's clock in every variant say nothing
    rows = []
    for where, op in weight.sort_values(ascending=False).index[:DIFF_ROWS]:
        cells = [f"{_ms(ms.at[(where, op), v])} ({_ms(changes.at[(where, op), v], '+')})" for v in others]
        rows.append([op, where, _ms(ms.at[(where, op), base]), *cells])
    return rows


def _ms(value: float, sign: str = "") -> str:
    """Milliseconds to the µs the tracer resolves: 0.000971 → 0.001, 1.4e-14 → 0."""
    text = f"{value:{sign}.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("+0", "-0", "0") else text


def _ms_share(ms: float, total: float) -> str:
    return f"{_ms(ms)} ({ms / total:.0%})" if total else _ms(ms)


def _fitted(columns: Sequence[TextColumn], rows: list[list[str]]) -> FittedTable:
    """A profile table that keeps to the terminal's width: op names and figures whole, the op
    lists wrapped between items, the least important columns left out (and named)."""
    left = {columns[0].header, "where", *(column.header for column in columns if column.prose)}

    def draw(shown: Sequence[TextColumn], narrowest: bool) -> Table:
        return rows_table(columns, rows, shown, narrowest, left)

    return FittedTable(columns, draw, hint=lambda _: REPORTS_HINT)
