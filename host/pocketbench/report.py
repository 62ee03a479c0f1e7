"""Render a run: one table model per model, drawn by every renderer (rich, markdown, JSON, HTML).

One record, many renderers: `build_tables` turns the tidy DataFrame (optionally with the
comparison columns of compare.py) into `ReportTable`s; columns that do not vary are folded into
a header line; `warnings` lists what a reader must know before trusting the numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from pocketbench.compare import latest_attempts, unstable_reason

EMPTY = "—"


def missing(value: Any) -> bool:
    """None, NaN or pandas' NA (nullable integer columns)."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def fmt_number(value: Any, spec: str, suffix: str = "") -> str:
    if missing(value):
        return EMPTY
    if isinstance(value, float) and math.isinf(value):
        return "∞" + suffix
    return format(value, spec) + suffix


def fmt_pct(value: Any, spec: str = ".1f") -> str:
    return fmt_number(None if missing(value) else 100 * value, spec, "%")


def _with_ratio(value: str, ratio: str) -> str:
    """`value (ratio)`; the baseline's own 1.00× is left out as noise."""
    return value if ratio in (EMPTY, "1.00×") else f"{value} ({ratio})"


def _bytes(value: Any) -> str:
    """Human size: B, KB, MB (powers of 1000, as file managers show)."""
    if missing(value):
        return EMPTY
    for unit, scale in (("MB", 1e6), ("KB", 1e3), ("B", 1.0)):
        if abs(value) >= scale or unit == "B":
            scaled = value / scale
            digits = 0 if abs(scaled) >= 100 or unit == "B" else 1 if abs(scaled) >= 10 else 2
            return f"{scaled:.{digits}f} {unit}"
    raise AssertionError("unreachable")


def _kb_to_mb(value: Any) -> float | None:
    return None if missing(value) else value / 1e3


def _get(row: pd.Series, column: str) -> Any:
    """A cell of a column that later work may add (None when absent)."""
    return row[column] if column in row.index else None


def _versus_baseline(row: pd.Series) -> str:
    """`+3.1% (p=0.020)` when significant, `+0.4% (n.s.)` when not, `—` without a baseline."""
    pct = _get(row, "latency_p50_change_pct")
    if pct is None or pd.isna(pct):
        return EMPTY
    p_value = _get(row, "latency_p_value")
    if p_value is None or pd.isna(p_value):
        return f"{pct:+.1f}% (untested)"
    if not _get(row, "latency_change_significant"):
        return f"{pct:+.1f}% (n.s.)"
    return f"{pct:+.1f}% (p<0.001)" if p_value < 0.001 else f"{pct:+.1f}% (p={p_value:.3f})"


def _p50(row: pd.Series) -> str:
    """`1.234 [1.221–1.250]`: the median with its bootstrap CI over the repetitions."""
    p50, low, high = row["latency_p50_ms"], _get(row, "latency_p50_ci_low_ms"), _get(row, "latency_p50_ci_high_ms")
    if missing(low) or missing(high):
        return fmt_number(p50, ".3f")
    return f"{fmt_number(p50, '.3f')} [{low:.3f}–{high:.3f}]"


def _speedup(row: pd.Series) -> str:
    """`2.31× [2.2–2.4]` when significant, `n.s.` when the difference is noise; blank for fp32."""
    if row["variant"] == "fp32" or missing(row["speedup_vs_fp32"]):
        return EMPTY
    significant = _get(row, "speedup_significant")
    if missing(significant):
        return fmt_number(row["speedup_vs_fp32"], ".2f", "×")
    if not significant:
        return "n.s."
    return f"{row['speedup_vs_fp32']:.2f}× [{row['speedup_ci_low']:.2f}–{row['speedup_ci_high']:.2f}]"


def _memory(row: pd.Series) -> str:
    """Peak RSS+swap and its growth over the process before the model loaded."""
    peak, delta = _get(row, "peak_rss_swap_kb"), _get(row, "rss_delta_kb")
    if missing(peak):
        return EMPTY
    return f"{peak / 1e3:.1f}" + ("" if missing(delta) else f" (+{delta / 1e3:.1f})")


def _energy(row: pd.Series) -> str:
    """`0.123 ± 0.004`, or `n/a` (the reason is under the table)."""
    value, err = _get(row, "energy_mj_per_inference"), _get(row, "energy_mj_per_inference_err")
    if missing(value):
        return EMPTY if missing(_get(row, "energy_status")) else "n/a"
    return f"{value:.3g} ± {err:.2g}" if not missing(err) else f"{value:.3g}"


def _temps(row: pd.Series) -> str:
    start, end = _get(row, "temp_start_c"), _get(row, "temp_end_c")
    return EMPTY if missing(start) or missing(end) else f"{start:.0f}→{end:.0f}"


def _flags(row: pd.Series) -> str:
    flags = [name for name in ("unstable", "throttled") if _truthy(_get(row, name))]
    return " ".join(flags) or EMPTY


Cell = Callable[[pd.Series], str]
# (header, cell) per measured column; a line break in a header is a space outside rich.
MEASURES: list[tuple[str, Cell]] = [
    ("size\n(× fp32)", lambda r: _with_ratio(_bytes(r["size_bytes"]), fmt_number(r["size_ratio_vs_fp32"], ".2f", "×"))),
    (
        "zipped\n(÷ fp32)",
        lambda r: _with_ratio(
            _bytes(_get(r, "size_zipped_bytes")), fmt_number(_get(r, "compression_ratio_vs_fp32"), ".1f", "×")
        ),
    ),
    ("params", lambda r: _count(_get(r, "params"))),
    (
        "MACs\n(× fp32)",
        lambda r: _with_ratio(_count(_get(r, "macs")), fmt_number(_get(r, "macs_ratio_vs_fp32"), ".2f", "×")),
    ),
    ("sparsity", lambda r: fmt_pct(_get(r, "sparsity"), ".0f")),
    ("p50 ms\n[95% CI]", lambda r: _p50(r)),
    ("speedup\nvs fp32", lambda r: _speedup(r)),
    ("p50 vs\nbaseline", _versus_baseline),
    ("p90\nms", lambda r: fmt_number(r["latency_p90_ms"], ".3f")),
    ("load\nms", lambda r: fmt_number(r["load_ms"], ".1f")),
    ("1st\nms", lambda r: fmt_number(r["first_inference_ms"], ".2f")),
    ("peak\nRSS MB", lambda r: fmt_number(_kb_to_mb(r["peak_rss_kb"]), ".1f")),
    ("planned\nmemory", lambda r: _bytes(r["planned_memory_bytes"])),
    ("peak+swap\nΔ base MB", lambda r: _memory(r)),
    ("energy\nmJ/inf", lambda r: _energy(r)),
    ("temp °C\nstart→end", lambda r: _temps(r)),
    ("flags", lambda r: _flags(r)),
    (
        "accuracy\n(Δ pts)",
        lambda r: _with_ratio(fmt_pct(r["accuracy"]), fmt_number(r["accuracy_vs_fp32_points"], "+.1f")),
    ),
    ("Δ acc pts vs\nbaseline", lambda r: fmt_number(_get(r, "accuracy_delta_points"), "+.1f")),
    ("SQNR\ndB", lambda r: fmt_number(r["sqnr_db"], ".1f")),
    ("top-1\nagree", lambda r: fmt_pct(r["top1_agreement"], ".0f")),
    ("worst\nlayer dB", lambda r: fmt_number(_get(r, "layer_sqnr_min_db"), ".1f")),
    ("deleg-\nated", lambda r: fmt_pct(r["delegated_fraction"], ".0f")),
    ("compress\ns", lambda r: fmt_number(_get(r, "compress_seconds"), ".1f")),
    ("Pareto", lambda r: _pareto_cell(r)),
]
# Who and how it was measured: shown as a column only when it varies within the table.
CONTEXT: list[tuple[str, Cell]] = [
    ("device", lambda r: str(r["device"])),
    ("device model", lambda r: _text(r["device_model"])),
    ("cpu", lambda r: _text(r["device_cpu"])),
    ("backend", lambda r: _text(r["backend"])),
    ("runtime", lambda r: _text(r["runtime_version"])),
    ("threads", lambda r: _text(r["threads"])),
    ("iterations", lambda r: _text(r["iterations"])),
]
STATUS: list[tuple[str, Cell]] = [("status", lambda r: str(r["status"]))]


def _count(value: Any) -> str:
    """Parameter or MAC counts: 226 k, 3.45 M, 301 M."""
    if missing(value):
        return EMPTY
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            scaled = value / scale
            return f"{scaled:.{0 if scaled >= 100 else 1 if scaled >= 10 else 2}f} {unit}"
    return str(int(value))


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
                if frame.iloc[p]["status"] == "ok" and not missing(good.iloc[p])
                and not missing(frame.iloc[p][cost_column])
            ]  # fmt: skip
            points = [(float(frame.iloc[p][cost_column]), float(good.iloc[p])) for p in usable]
            for p, optimal in zip(usable, pareto_front(points), strict=True):
                if optimal:
                    marks[p].append(label)
    return [" ".join(m) or None for m in marks]


def _pareto_cell(row: pd.Series) -> str:
    """`lat`, `size`, `lat size`; `·` for a measured variant that is dominated in both."""
    mark = _get(row, "pareto")
    if isinstance(mark, str):
        return mark
    return "·" if row["status"] == "ok" else EMPTY


def pareto_lines(frame: pd.DataFrame) -> list[str]:
    """`Pareto-optimal accuracy vs latency: a, b` (and vs size) for one model's rows."""
    if len(frame) < 2:
        return []
    label, _ = quality(frame)
    marks = pareto_marks(frame)
    lines = []
    for kind, cost in (("lat", "latency"), ("size", "size")):
        best = [str(v) for v, m in zip(frame["variant"], marks, strict=True) if m and kind in m.split()]
        if best:
            lines.append(f"Pareto-optimal {label} vs {cost}: {', '.join(best)}")
    return lines


def one_line(header: str) -> str:
    """A two-line rich header on one line (`deleg-\nated` → `delegated`)."""
    return header.replace("-\n", "").replace("\n", " ")


def _text(value: Any) -> str:
    if missing(value):
        return EMPTY
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class ReportTable:
    """One model's variants: what every renderer draws."""

    title: str
    folded: list[tuple[str, str]]  # (name, value) of columns that do not vary: the header line
    headers: list[str]
    rows: list[list[str]]
    statuses: list[str]

    @property
    def header_line(self) -> str:
        return " · ".join(f"{name} {value}" for name, value in self.folded)


def build_table(frame: pd.DataFrame, title: str) -> ReportTable:
    """Variant first; empty columns dropped; columns with one value (over two or more rows, or
    any context column) folded into the header line."""
    frame = frame.assign(pareto=pareto_marks(frame))
    rows = [row for _, row in frame.iterrows()]
    folded: list[tuple[str, str]] = []
    kept: list[tuple[str, list[str]]] = []
    for name, cell in CONTEXT + MEASURES + STATUS:
        cells = [cell(r) for r in rows]
        if all(c == EMPTY for c in cells):
            continue
        shown = [c for c in cells if c != EMPTY]  # a failed row's blanks do not make a column vary
        if len(set(shown)) == 1 and (len(shown) > 1 or (name, cell) not in MEASURES):
            folded.append((one_line(name), shown[0]))
        else:
            kept.append((name, cells))
    headers = ["variant", *(name for name, _ in kept)]
    table_rows = [[str(r["variant"]), *(cells[i] for _, cells in kept)] for i, r in enumerate(rows)]
    return ReportTable(title, folded, headers, table_rows, [str(r["status"]) for r in rows])


def build_tables(frame: pd.DataFrame) -> list[ReportTable]:
    """One table per model, in the order the run measured them (last attempt of each cell)."""
    current = latest_attempts(frame)
    return [build_table(group, str(model)) for model, group in current.groupby("model", sort=False)]


def _cell_name(row: pd.Series) -> str:
    return f"{row['model']} {row['variant']} on {row['device']}"


def _truthy(value: Any) -> bool:
    return not missing(value) and bool(value)


def warnings(frame: pd.DataFrame) -> list[str]:
    """What a reader must know before trusting the table (absent columns simply warn of nothing)."""
    notes = []
    current = latest_attempts(frame)
    failed = current[current["status"] != "ok"]
    for (model, device, error), group in failed.groupby(["model", "device", "error"], sort=False, dropna=False):
        notes.append(f"failed: {model} {', '.join(group['variant'])} on {device}: {error}")
    retried = frame.drop(index=current.index)
    for _, row in retried.iterrows():
        attempt = _text(row["attempt"])
        notes.append(f"retried: {_cell_name(row)}, attempt {attempt} ended {row['status']}: {row['error']}")
    ok = current[current["status"] == "ok"]
    for _, row in ok.iterrows():
        if isinstance(row["ops_outside_delegate"], str) and row["ops_outside_delegate"]:
            notes.append(
                f"partial delegation: {row['model']} {row['variant']} runs "
                f"{row['ops_outside_delegate']} outside XNNPACK"
            )
        notes.extend(_measurement_warnings(row))
    if "energy_status" in ok:
        values = ok["energy_mj_per_inference"] if "energy_mj_per_inference" in ok else pd.Series(None, index=ok.index)
        no_energy = ok[values.map(missing) & ok["energy_status"].map(lambda v: isinstance(v, str))]
        no_energy = no_energy[~no_energy["energy_status"].str.lower().str.contains("charging")]
        for (device, status), group in no_energy.groupby(["device", "energy_status"], sort=False):
            notes.append(f"energy not measured on {device} ({len(group)} cell(s)): {status}")
    notes.extend(_compression_warnings(ok))
    if "fidelity_note" in ok:  # once per model: its fidelity figures describe an untrained network
        labelled = ok[ok["fidelity_note"].map(lambda v: isinstance(v, str))]
        notes.extend(
            f"{model}: {note}" for model, note in labelled.groupby("model", sort=False)["fidelity_note"].first().items()
        )
    if "baseline_run_id" in ok:
        unmatched = ok[ok["baseline_run_id"].map(missing)]
        if len(unmatched):
            cells = ", ".join(_cell_name(row) for _, row in unmatched.iterrows())
            notes.append(f"not in the baseline (no ok cell of the same model, variant and device): {cells}")
    if (ok["backend"] == "python-runtime").any():
        notes.append(
            "measured with the ExecuTorch Python runtime: the native runner is not built (`just build-runner`)"
        )
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


def _compression_warnings(ok: pd.DataFrame) -> list[str]:
    """Sparse variants (zeros don't speed up dense kernels) and layers a step left alone."""
    notes = []
    for _, row in ok.iterrows():
        sparsity = _get(row, "sparsity")
        if not missing(sparsity) and sparsity > 0.01:
            notes.append(
                f"{row['model']} {row['variant']}: {100 * sparsity:.0f}% of weights are zero, which shrinks the "
                f"zipped file ({_bytes(_get(row, 'size_zipped_bytes'))}) but not the latency: dense XNNPACK "
                "kernels don't run faster on zeros"
            )
        note = _get(row, "compression_note")
        if isinstance(note, str) and note:
            notes.append(f"{row['model']} {row['variant']}: {note}")
    return notes


def _measurement_warnings(row: pd.Series) -> list[str]:
    """Unstable, throttled and charging flags of one ok cell."""
    notes = []
    if "unstable" in row.index:
        if _truthy(row["unstable"]):
            reason = _get(row, "unstable_reason") or "see its samples"
            notes.append(f"unstable: {_cell_name(row)}: {reason}{_threads_hint(row)}")
    elif row["latency_samples_ms"] is not None and (reason := unstable_reason(list(row["latency_samples_ms"]))):
        notes.append(f"unstable: {_cell_name(row)}: {reason}; rerun with more --iterations or --min-seconds")
    if _truthy(_get(row, "throttled")):
        notes.append(f"throttled: {_cell_name(row)}: {_get(row, 'throttle_reason') or 'the CPU slowed down during it'}")
    energy_status = _get(row, "energy_status")
    if isinstance(energy_status, str) and "charging" in energy_status.lower():
        notes.append(f"charging: {_cell_name(row)}: {energy_status}")
    if isinstance(_get(row, "cooldown_note"), str):
        notes.append(f"cooldown: {_cell_name(row)}: {row['cooldown_note']}")
    return notes


def _threads_hint(row: pd.Series) -> str:
    """Processes disagreeing with several runtime threads: measured (benchmarks/RESULTS.md,
    "Run-to-run stability") to come from the threadpool, which one thread avoids."""
    from pocketbench.stats import UNSTABLE_REPETITION_CV

    spread, threads = _get(row, "latency_repetition_cv"), _get(row, "threads")
    if missing(spread) or missing(threads) or spread < UNSTABLE_REPETITION_CV or threads <= 1:
        return ""
    return f"; with {threads} threads each process can settle at a different speed: try --threads 1"


def _title(run_id: str, baseline_id: str | None) -> str:
    return f"pocketbench run {run_id}" + (f" vs baseline {baseline_id}" if baseline_id else "")


def render(frame: pd.DataFrame, run_id: str, baseline_id: str | None = None, notes: Sequence[str] = ()) -> Group:
    """The tables and their warnings, ready for `console.print`."""
    parts: list[Any] = [Text(_title(run_id, baseline_id), style="bold")]
    groups = [group for _, group in latest_attempts(frame).groupby("model", sort=False)]
    for model, group in zip(build_tables(frame), groups, strict=True):
        parts.append(Text(model.title, style="bold"))
        if model.header_line:
            parts.append(Text(model.header_line, style="italic"))
        parts.append(_rich_table(model))
        parts.extend(Text("  " + line, style="dim") for line in pareto_lines(group))
    for note in [*notes, *warnings(frame)]:
        parts.append(Text("⚠ " + note, style="yellow"))
    return Group(*parts)


def _rich_table(model: ReportTable) -> Table:
    table = Table(
        header_style="bold",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
    for i, name in enumerate(model.headers):
        if i == 0 or name == "device":
            table.add_column(name, no_wrap=True)
        elif name == "status":
            table.add_column(name, overflow="fold")
        else:
            table.add_column(name, justify="right", overflow="fold")
    for cells, status in zip(model.rows, model.statuses, strict=True):
        style = None if status == "ok" else "red"
        table.add_row(*cells, style=style)
    return table


def render_markdown(frame: pd.DataFrame, run_id: str, baseline_id: str | None = None, notes: Sequence[str] = ()) -> str:
    """GitHub-flavoured markdown for a CI comment: a heading, per model a header line and a
    table, then the warnings."""
    lines = [f"## {_title(run_id, baseline_id)}", ""]
    groups = [group for _, group in latest_attempts(frame).groupby("model", sort=False)]
    for model, group in zip(build_tables(frame), groups, strict=True):
        lines.append(f"### {model.title}")
        lines.append("")
        if model.header_line:
            lines += [f"_{md_escape(model.header_line)}_", ""]
        headers = [one_line(h) for h in model.headers]
        lines.append("| " + " | ".join(headers) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|")
        lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in model.rows]
        lines.append("")
        lines += [f"_{md_escape(line)}_" for line in pareto_lines(group)] + ([""] if pareto_lines(group) else [])
    listed = [*notes, *warnings(frame)]
    if listed:
        lines += ["**Warnings**", ""] + [f"- ⚠ {md_escape(n)}" for n in listed] + [""]
    return "\n".join(lines)


def md_escape(text: str) -> str:
    """Text safe inside a GitHub markdown table cell or emphasis."""
    return text.replace("|", "\\|").replace("_", "\\_").replace("*", "\\*")


def report_json(
    frame: pd.DataFrame, run_id: str, baseline_id: str | None = None, notes: Sequence[str] = ()
) -> dict[str, Any]:
    """The report as one JSON-ready object: tables as shown, warnings, and the tidy rows."""
    current = latest_attempts(frame)
    return {
        "run_id": run_id,
        "baseline_run_id": baseline_id,
        "tables": [_table_json(t) for t in build_tables(frame)],
        "warnings": [*notes, *warnings(frame)],
        "rows": records(current),
    }


def _table_json(table: ReportTable) -> dict[str, Any]:
    columns = [one_line(h) for h in table.headers]
    return {"model": table.title, "folded": dict(table.folded), "columns": columns, "rows": table.rows}


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Tidy rows as JSON-ready dicts (recipe and device state decoded from their JSON text)."""
    rows = json.loads(frame.to_json(orient="records", double_precision=15))
    for row in rows:
        for column in ("recipe", "device_state_json"):
            if isinstance(row.get(column), str):
                row[column] = json.loads(row[column])
    return rows


def run_json(run_id: str, folder: Path, frame: pd.DataFrame) -> dict[str, Any]:
    """The run as one JSON-ready object: {"run_id", "results_dir", "rows": [...]}."""
    return {"run_id": run_id, "results_dir": str(folder), "rows": records(frame)}
