"""Render a run: the rich comparison table (with warnings under it) and the JSON object.

One record, many renderers: everything here reads the tidy DataFrame the results store holds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text


def _fmt(value: Any, spec: str, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "∞" + suffix
    return format(value, spec) + suffix


def _pct(value: Any, spec: str = ".1f") -> str:
    return _fmt(100 * value if value is not None and pd.notna(value) else None, spec, "%")


def _with_ratio(value: str, ratio: str) -> str:
    """`value (ratio)`; the baseline's own 1.00× is left out as noise."""
    return value if ratio in ("—", "1.00×") else f"{value} ({ratio})"


# (header, cell, shown only when it varies): a column whose cells are all "—" is always left out;
# one marked True is also left out when every row shows the same value (params of int8 = fp32's).
_COLUMNS: list[tuple[str, Any, bool]] = [
    (
        "size\n(× fp32)",
        lambda r: _with_ratio(_bytes(r["size_bytes"]), _fmt(r["size_ratio_vs_fp32"], ".2f", "×")),
        False,
    ),
    (
        "zipped\n(÷ fp32)",
        lambda r: _with_ratio(_bytes(r.get("size_zipped_bytes")), _fmt(r.get("compression_ratio_vs_fp32"), ".1f", "×")),
        False,
    ),
    ("params", lambda r: _count(r.get("params")), True),
    (
        "MACs\n(× fp32)",
        lambda r: _with_ratio(_count(r.get("macs")), _fmt(r.get("macs_ratio_vs_fp32"), ".2f", "×")),
        True,
    ),
    ("sparsity", lambda r: _pct(r.get("sparsity"), ".0f"), True),
    (
        "p50 ms\n(speedup)",
        lambda r: _with_ratio(_fmt(r["latency_p50_ms"], ".3f"), _fmt(r["speedup_vs_fp32"], ".2f", "×")),
        False,
    ),
    ("p90\nms", lambda r: _fmt(r["latency_p90_ms"], ".3f"), False),
    ("load\nms", lambda r: _fmt(r["load_ms"], ".1f"), False),
    ("1st\nms", lambda r: _fmt(r["first_inference_ms"], ".2f"), False),
    ("peak\nRSS MB", lambda r: _fmt(_kb_to_mb(r["peak_rss_kb"]), ".1f"), False),
    ("planned\nmemory", lambda r: _bytes(r["planned_memory_bytes"]), True),
    (
        "accuracy\n(Δ pts)",
        lambda r: _with_ratio(_pct(r["accuracy"]), _fmt(r["accuracy_vs_fp32_points"], "+.1f")),
        False,
    ),
    ("SQNR\ndB", lambda r: _fmt(r["sqnr_db"], ".1f"), False),
    ("top-1\nagree", lambda r: _pct(r["top1_agreement"], ".0f"), False),
    ("worst\nlayer dB", lambda r: _fmt(r.get("layer_sqnr_min_db"), ".1f"), False),
    ("deleg-\nated", lambda r: _pct(r["delegated_fraction"], ".0f"), True),
    ("compress\ns", lambda r: _fmt(r.get("compress_seconds"), ".1f"), False),
    ("Pareto", lambda r: r.get("pareto") if isinstance(r.get("pareto"), str) else "—", False),
]


def _count(value: Any) -> str:
    """Parameter or MAC counts: 226 k, 3.45 M, 301 M."""
    if value is None or pd.isna(value):
        return "—"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            scaled = value / scale
            return f"{scaled:.{0 if scaled >= 100 else 1 if scaled >= 10 else 2}f} {unit}"
    return str(int(value))


def _bytes(value: Any) -> str:
    """Human size: B, KB, MB (powers of 1000, as file managers show)."""
    if value is None or pd.isna(value):
        return "—"
    for unit, scale in (("MB", 1e6), ("KB", 1e3), ("B", 1.0)):
        if value >= scale or unit == "B":
            scaled = value / scale
            digits = 0 if scaled >= 100 or unit == "B" else 1 if scaled >= 10 else 2
            return f"{scaled:.{digits}f} {unit}"
    raise AssertionError("unreachable")


def _kb_to_mb(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else value / 1e3


def comparison_table(frame: pd.DataFrame, title: str) -> Table:
    """Variants side by side (device column only when it varies; empty columns left out)."""
    show_device = frame["device"].nunique() > 1
    frame = frame.assign(pareto=pareto_marks(frame))
    rows = [row for _, row in frame.iterrows()]
    columns = [(name, [cell(r) for r in rows], vary) for name, cell, vary in _COLUMNS]
    columns = [
        (name, cells)
        for name, cells, vary in columns
        if any(c != "—" for c in cells) and not (vary and len(rows) > 1 and len(set(cells) - {"—"}) == 1)
    ]
    table = Table(
        title=title,
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
    table.add_column("variant", no_wrap=True)
    if show_device:
        table.add_column("device", no_wrap=True)
    for name, _ in columns:
        table.add_column(name, justify="right", overflow="fold")
    table.add_column("status", overflow="fold")
    for i, row in enumerate(rows):
        lead = [str(row["variant"])] + ([str(row["device"])] if show_device else [])
        status = "[green]ok[/]" if row["status"] == "ok" else f"[red]{row['status']}[/]"
        table.add_row(*lead, *[cells[i] for _, cells in columns], status)
    return table


def quality(frame: pd.DataFrame) -> tuple[str, pd.Series]:
    """What "better" means for a model: accuracy on real labels, else SQNR against fp32."""
    if frame["accuracy"].notna().any():
        return "accuracy", frame["accuracy"].astype(float)
    return "SQNR", frame["sqnr_db"].astype(float)


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """For (cost, quality) points: True where no other point is at least as cheap and as good
    and strictly better in one of the two."""
    front = []
    for i, (cost, good) in enumerate(points):
        dominated = any(c <= cost and g >= good and (c < cost or g > good) for j, (c, g) in enumerate(points) if j != i)
        front.append(not dominated)
    return front


def pareto_marks(frame: pd.DataFrame) -> list[str | None]:
    """Per row: "lat", "size" or "lat size" when the variant is Pareto-optimal in quality vs
    p50 latency / vs .pte size among the same device's successful rows."""
    marks: list[list[str]] = [[] for _ in range(len(frame))]
    _, good = quality(frame)
    for _, group in frame.groupby("device", sort=False):
        positions = [frame.index.get_loc(i) for i in group.index]
        for label, cost_column in (("lat", "latency_p50_ms"), ("size", "size_bytes")):
            usable = [
                p for p in positions
                if frame.iloc[p]["status"] == "ok" and pd.notna(good.iloc[p]) and pd.notna(frame.iloc[p][cost_column])
            ]  # fmt: skip
            points = [(float(frame.iloc[p][cost_column]), float(good.iloc[p])) for p in usable]
            for p, optimal in zip(usable, pareto_front(points), strict=True):
                if optimal:
                    marks[p].append(label)
    return [" ".join(m) or None for m in marks]


def warnings(frame: pd.DataFrame) -> list[str]:
    """What a reader must know before trusting the table."""
    notes = []
    failed = frame[frame["status"] != "ok"]
    for (model, device, error), group in failed.groupby(["model", "device", "error"], sort=False):
        notes.append(f"failed: {model} {', '.join(group['variant'])} on {device}: {error}")
    ok = frame[frame["status"] == "ok"]
    for _, row in ok.iterrows():
        if isinstance(row["ops_outside_delegate"], str) and row["ops_outside_delegate"]:
            notes.append(
                f"partial delegation: {row['model']} {row['variant']} runs "
                f"{row['ops_outside_delegate']} outside XNNPACK"
            )
    if (ok["backend"] == "python-runtime").any():
        notes.append(
            "measured with the ExecuTorch Python runtime: the native runner is not built (`just build-runner`)"
        )
    sparse = ok[ok["sparsity"].fillna(0).astype(float) > 0.01]
    for _, row in sparse.iterrows():
        notes.append(
            f"{row['model']} {row['variant']}: {100 * row['sparsity']:.0f}% of weights are zero, which shrinks the "
            f"zipped file ({_bytes(row['size_zipped_bytes'])}) but not the latency: dense XNNPACK kernels "
            "don't run faster on zeros"
        )
    for _, row in ok[ok["compression_note"].notna()].iterrows():
        notes.append(f"{row['model']} {row['variant']}: {row['compression_note']}")
    slow_int8 = ok[ok["variant"].astype(str).str.contains("int8") & (ok["speedup_vs_fp32"] < 1.0)]
    for device, group in slow_int8.groupby("device"):
        features = group["device_cpu_features"].dropna()
        listed = features.iloc[0] if len(features) else "unknown"
        notes.append(
            f"int8 slower than fp32 on {device} for {', '.join(sorted(set(group['model'])))}: "
            f"int8 speed depends on the CPU's int8 dot-product instructions (this one has: {listed}); "
            "on ARM phones with sdot/i8mm int8 is typically 2–3× faster"
        )
    return notes


def render(frame: pd.DataFrame, run_id: str) -> Group:
    """The table and its warnings, ready for `console.print`."""
    from pocketbench.results import to_frame

    frame = to_frame(frame.to_dict("records"))  # runs saved before a column existed show it empty
    parts: list[Any] = [Text(f"pocketbench run {run_id}", style="bold")]
    for model, group in frame.groupby("model", sort=False):
        parts.append(comparison_table(group, str(model)))
        label, _ = quality(group)
        marks = pareto_marks(group)
        for kind, cost in (("lat", "latency"), ("size", "size")):
            best = [v for v, m in zip(group["variant"], marks, strict=True) if m and kind in m.split()]
            if len(best) > 0 and len(group) > 1:
                parts.append(Text(f"  Pareto-optimal {label} vs {cost}: {', '.join(map(str, best))}", style="dim"))
    for note in warnings(frame):
        parts.append(Text("⚠ " + note, style="yellow"))
    return Group(*parts)


def run_json(run_id: str, folder: Path, frame: pd.DataFrame) -> dict[str, Any]:
    """The run as one JSON-ready object: {"run_id", "results_dir", "rows": [...]}."""
    rows = json.loads(frame.to_json(orient="records", double_precision=15))
    for row in rows:
        if isinstance(row.get("recipe"), str):
            row["recipe"] = json.loads(row["recipe"])
    return {"run_id": run_id, "results_dir": str(folder), "rows": rows}
