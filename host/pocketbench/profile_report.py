"""The `--profile` view: per model and device, where each variant's inference time goes and why
a variant is (not) faster than its baseline — as rich tables, beside the main results table."""

from __future__ import annotations

from typing import Any

import pandas as pd
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from pocketbench.profile import OUTSIDE, compare_ops, explain, op_table, summarize

TOP_OPS = 3  # ops named per variant in the split table
DIFF_ROWS = 8  # ops shown in the op-by-op table


def render_profiles(events: pd.DataFrame, baseline: str = "fp32") -> Group | None:
    """Tables for every profiled model × device (None when the run was not profiled)."""
    if events.empty:
        return None
    parts: list[Any] = []
    for (model, device), group in events.groupby(["model", "device"], sort=False):
        variants = list(dict.fromkeys(group["variant"]))
        tables = {v: op_table(group[group["variant"] == v]) for v in variants}
        summaries = {v: summarize(group[group["variant"] == v]) for v in variants}
        executes = min(s.executes for s in summaries.values())
        title = f"per-op profile: {model} on {device} (ETDump of {executes} inferences; mean of the middle half)"
        parts.append(Text(title, style="bold"))
        parts.append(_split_table(tables, summaries))
        base = baseline if baseline in variants else variants[0]
        others = [v for v in variants if v != base]
        if others:
            parts.append(_ops_table(tables, base, others))
            for variant in others:
                diff = compare_ops(tables[base], tables[variant])
                why = explain(variant, base, summaries[base], summaries[variant], diff)
                parts.append(Text("  why: " + why, style="cyan"))
    return Group(*parts)


def _split_table(tables: dict[str, pd.DataFrame], summaries: dict[str, Any]) -> Table:
    table = _table("variant", "traced ms", "in XNNPACK", "outside XNNPACK", "runtime", "top ops (share)")
    for variant, ops in tables.items():
        s = summaries[variant]
        outside = ops[ops["where"] == OUTSIDE]
        named = ", ".join(f"{r['op']}×{r['instances']}" for r in outside.to_dict("records"))
        table.add_row(
            variant,
            _ms(s.execute_ms),
            _ms_share(s.delegated_ms, s.execute_ms),
            _ms_share(s.outside_ms, s.execute_ms) + (f": {named}" if named else ""),
            _ms_share(s.runtime_ms, s.execute_ms),
            ", ".join(f"{r['op']} {r['share']:.0%}" for r in ops.head(TOP_OPS).to_dict("records")),
        )
    return table


def _ops_table(tables: dict[str, pd.DataFrame], base: str, others: list[str]) -> Table:
    """Op classes (layouts and datatypes stripped, so fp32 and int8 line up) × variants, in ms;
    the ops that cost most or changed most first."""
    stacked = pd.concat([t.assign(variant=v) for v, t in tables.items()])
    ms = stacked.pivot_table(index=["where", "op"], columns="variant", values="ms", aggfunc="sum", fill_value=0.0)
    changes = ms[others].sub(ms[base], axis=0)
    weight = pd.concat([ms[base], changes.abs().max(axis=1)], axis=1).max(axis=1)
    table = _table("op", "where", f"{base} ms", *(f"{v} ms (Δ)" for v in others))
    weight = weight[weight > 0]  # ops too short for the tracer's clock in every variant say nothing
    for where, op in weight.sort_values(ascending=False).index[:DIFF_ROWS]:
        cells = [f"{_ms(ms.at[(where, op), v])} ({_ms(changes.at[(where, op), v], '+')})" for v in others]
        table.add_row(op, where, _ms(ms.at[(where, op), base]), *cells)
    return table


def _ms(value: float, sign: str = "") -> str:
    """Milliseconds to the µs the tracer resolves: 0.000971 → 0.001, 1.4e-14 → 0."""
    text = f"{value:{sign}.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("+0", "-0", "0") else text


def _ms_share(ms: float, total: float) -> str:
    return f"{_ms(ms)} ({ms / total:.0%})" if total else _ms(ms)


def _table(*headers: str) -> Table:
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    for i, name in enumerate(headers):
        table.add_column(name, no_wrap=i == 0, justify="left" if i == 0 or name == "where" else "right")
    return table
