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

from pocketbench.results.compare import MEASURED, latest_attempts, unstable_reason
from pocketbench.results.pareto import pareto_marks, quality
from pocketbench.results.store import list_value

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
    return value if ratio in (EMPTY, "1.00×") else f"{value}\n({ratio})"


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
        return f"{pct:+.1f}%\n(untested)"
    if not _get(row, "latency_change_significant"):
        return f"{pct:+.1f}%\n(n.s.)"
    return f"{pct:+.1f}%\n(p<0.001)" if p_value < 0.001 else f"{pct:+.1f}%\n(p={p_value:.3f})"


def _p50(row: pd.Series) -> str:
    """`1.234 [1.221–1.250]`: the median with its bootstrap CI over the repetitions."""
    p50, low, high = row["latency_p50_ms"], _get(row, "latency_p50_ci_low_ms"), _get(row, "latency_p50_ci_high_ms")
    if missing(low) or missing(high):
        return fmt_number(p50, ".3f")
    return f"{fmt_number(p50, '.3f')}\n[{low:.3f}–{high:.3f}]"


def _speedup(row: pd.Series) -> str:
    """`2.31× [2.2–2.4]` when significant, `n.s.` when the difference is noise; blank for fp32."""
    if row["variant"] == "fp32" or missing(row["speedup_vs_fp32"]):
        return EMPTY
    significant = _get(row, "speedup_significant")
    if missing(significant):
        return fmt_number(row["speedup_vs_fp32"], ".2f", "×")
    if not significant:
        return "n.s."
    return f"{row['speedup_vs_fp32']:.2f}×\n[{row['speedup_ci_low']:.2f}–{row['speedup_ci_high']:.2f}]"


def _memory(row: pd.Series) -> str:
    """Peak RSS+swap and its growth over the process before the model loaded."""
    peak, delta = _get(row, "peak_rss_swap_kb"), _get(row, "rss_delta_kb")
    if missing(peak):
        return EMPTY
    return f"{peak / 1e3:.1f}" + ("" if missing(delta) else f"\n(+{delta / 1e3:.1f})")


def _energy(row: pd.Series) -> str:
    """`0.123 ± 0.004`, or `n/a` (the reason is under the table)."""
    value, err = _get(row, "energy_mj_per_inference"), _get(row, "energy_mj_per_inference_err")
    if missing(value):
        return EMPTY if missing(_get(row, "energy_status")) else "n/a"
    return f"{value:.3g}\n± {err:.2g}" if not missing(err) else f"{value:.3g}"


def _temps(row: pd.Series) -> str:
    start, end = _get(row, "temp_start_c"), _get(row, "temp_end_c")
    return EMPTY if missing(start) or missing(end) else f"{start:.0f}→{end:.0f}"


def _flags(row: pd.Series) -> str:
    flags = [name for name in ("unstable", "throttled") if _truthy(_get(row, name))]
    if _truthy(_get(row, "device_emulated")):
        flags.append("emulated")  # timed on an emulator: not a phone's latency
    return " ".join(flags) or EMPTY


Cell = Callable[[pd.Series], str]


@dataclass(frozen=True)
class Column:
    """A report column: `key` is what `--columns` names; `priority` orders who keeps a place when
    the terminal is narrow (0 first). A line break in a header or a cell is where the terminal
    table breaks it (a space everywhere else): a number never wraps inside itself."""

    key: str
    header: str
    cell: Cell
    priority: int
    prose: bool = False  # a sentence, not a figure: the terminal wraps it between words


def _size_cell(r: pd.Series) -> str:
    return _with_ratio(_bytes(r["size_bytes"]), fmt_number(r["size_ratio_vs_fp32"], ".2f", "×"))


def _zipped_cell(r: pd.Series) -> str:
    ratio = fmt_number(_get(r, "compression_ratio_vs_fp32"), ".1f", "×")
    return _with_ratio(_bytes(_get(r, "size_zipped_bytes")), ratio)


def _macs_cell(r: pd.Series) -> str:
    return _with_ratio(_count(_get(r, "macs")), fmt_number(_get(r, "macs_ratio_vs_fp32"), ".2f", "×"))


def _accuracy_cell(r: pd.Series) -> str:
    return _with_ratio(fmt_pct(r["accuracy"]), fmt_number(r["accuracy_vs_fp32_points"], "+.1f"))


MEASURES: list[Column] = [
    Column("size", "size\n(× fp32)", _size_cell, 3),
    Column("zipped", "zipped\n(÷ fp32)", _zipped_cell, 16),
    Column("params", "params", lambda r: _count(_get(r, "params")), 17),
    Column("macs", "MACs\n(× fp32)", _macs_cell, 18),
    Column("sparsity", "sparsity", lambda r: fmt_pct(_get(r, "sparsity"), ".0f"), 19),
    Column("p50", "p50 ms\n[95% CI]", lambda r: _p50(r), 1),
    Column("speedup", "speedup\nvs fp32", lambda r: _speedup(r), 2),
    Column("vs-baseline", "p50 vs\nbaseline", _versus_baseline, 2),
    Column("p90", "p90\nms", lambda r: _p90(r), 13),
    Column("load", "load\nms", lambda r: fmt_number(r["load_ms"], ".1f"), 14),
    Column("first", "1st\nms", lambda r: fmt_number(r["first_inference_ms"], ".2f"), 15),
    Column("rss", "peak\nRSS MB", lambda r: fmt_number(_kb_to_mb(r["peak_rss_kb"]), ".1f"), 8),
    Column("planned", "planned\nmemory", lambda r: _bytes(r["planned_memory_bytes"]), 24),
    Column("swap", "peak+swap\nΔ base MB", lambda r: _memory(r), 23),
    Column("energy", "energy\nmJ/inf", lambda r: _energy(r), 7),
    Column("temp", "temp °C\nstart→end", lambda r: _temps(r), 25),
    Column("flags", "flags", lambda r: _flags(r), 9),
    Column("accuracy", "accuracy\n(Δ pts)", _accuracy_cell, 4),
    Column(
        "acc-vs-baseline", "Δ acc pts\nvs baseline", lambda r: fmt_number(_get(r, "accuracy_delta_points"), "+.1f"), 20
    ),
    Column("sqnr", "SQNR\ndB", lambda r: fmt_number(r["sqnr_db"], ".1f"), 5),
    Column("top1", "top-1\nagree", lambda r: fmt_pct(r["top1_agreement"], ".0f"), 21),
    Column("worst-layer", "worst\nlayer dB", lambda r: fmt_number(_get(r, "layer_sqnr_min_db"), ".1f"), 22),
    Column("delegated", "deleg-\nated", lambda r: fmt_pct(r["delegated_fraction"], ".0f"), 12),
    Column("compress", "compress\ns", lambda r: fmt_number(_get(r, "compress_seconds"), ".1f"), 26),
    Column("pareto", "Pareto", lambda r: _pareto_cell(r), 10),
]


def _with_ci(value: Any, low: Any, high: Any, spec: str) -> str:
    """`12.3 [11.9–12.8]`, `[11.9–∞]` for an unbounded upper side, or the value alone without a CI."""
    if missing(value):
        return EMPTY
    if missing(low):
        return fmt_number(value, spec)
    return f"{fmt_number(value, spec)}\n[{low:{spec}}–{'∞' if missing(high) else format(high, spec)}]"


def _perplexity_cell(r: pd.Series) -> str:
    delta = _get(r, "perplexity_delta_pct")
    text = fmt_number(_get(r, "perplexity"), ".3f")
    return text if missing(delta) or r["variant"] == "fp32" else f"{text}\n({delta:+.1f}%)"


# Generative models (rows of kind "generative", measure/generation.py): tokens/s, not one call.
GENERATIVE_MEASURES: list[Column] = [
    Column("size", "size\n(× fp32)", _size_cell, 3),
    Column(
        "ttft",
        "TTFT ms\n[95% CI]",
        lambda r: _with_ci(_get(r, "ttft_ms"), _get(r, "ttft_ci_low_ms"), _get(r, "ttft_ci_high_ms"), ".2f"),
        4,
    ),
    Column(
        "prefill",
        "prefill\ntok/s",
        lambda r: _with_ci(
            _get(r, "prefill_tok_s"), _get(r, "prefill_tok_s_ci_low"), _get(r, "prefill_tok_s_ci_high"), ".0f"
        ),
        5,
    ),
    Column(
        "decode",
        "decode tok/s\n[95% CI]",
        lambda r: _with_ci(
            _get(r, "decode_tok_s"), _get(r, "decode_tok_s_ci_low"), _get(r, "decode_tok_s_ci_high"), ".1f"
        ),
        1,
    ),
    Column("speedup", "decode\nvs fp32", lambda r: _speedup(r), 2),
    Column("vs-baseline", "ms/tok vs\nbaseline", _versus_baseline, 2),
    Column(
        "p90",
        "ms/tok\np50/p90",
        lambda r: f"{fmt_number(_get(r, 'decode_ms_p50'), '.3f')}\n{fmt_number(_get(r, 'decode_ms_p90'), '.3f')}",
        13,
    ),
    Column("perplexity", "perplexity\n(Δ fp32)", _perplexity_cell, 3),
    Column("agreement", "greedy\nagree", lambda r: fmt_pct(_get(r, "greedy_agreement"), ".0f"), 6),
    Column("load", "load\nms", lambda r: fmt_number(r["load_ms"], ".1f"), 14),
    Column("rss", "peak\nRSS MB", lambda r: fmt_number(_kb_to_mb(r["peak_rss_kb"]), ".1f"), 8),
    Column("planned", "planned\nmemory", lambda r: _bytes(r["planned_memory_bytes"]), 24),
    Column("kv-cache", "KV\ncache", lambda r: _bytes(_get(r, "kv_cache_bytes")), 15),
    Column("energy", "energy\nmJ/token", lambda r: _energy(r), 7),
    Column("flags", "flags", lambda r: _flags(r), 9),
    Column("delegated", "deleg-\nated", lambda r: fmt_pct(r["delegated_fraction"], ".0f"), 12),
    Column("compress", "compress\ns", lambda r: fmt_number(_get(r, "compress_seconds"), ".1f"), 26),
    Column("pareto", "Pareto", lambda r: _pareto_cell(r), 10),
]


@dataclass(frozen=True)
class TextColumn:
    """A column of a table whose cells are already text (the profile tables): what a narrow
    terminal needs to know of it (as `Column`, without a cell function)."""

    key: str
    header: str
    priority: int
    prose: bool = False


# Who and how it was measured: shown as a column only when it varies within the table.
CONTEXT: list[Column] = [
    Column("device", "device", lambda r: str(r["device"]), 0),
    Column("device-model", "device\nmodel", lambda r: _text(r["device_model"]), 27),
    Column("cpu", "cpu", lambda r: _text(r["device_cpu"]), 28),
    Column("backend", "backend", lambda r: _text(r["backend"]), 29),
    Column("runtime", "runtime", lambda r: _text(r["runtime_version"]), 30),
    Column("threads", "threads", lambda r: _text(r["threads"]), 11),
    Column("iterations", "iter-\nations", lambda r: _text(r["iterations"]), 31),
]
STATUS: list[Column] = [Column("status", "status", lambda r: str(r["status"]), 0)]
COLUMN_KEYS = list(dict.fromkeys(c.key for c in CONTEXT + MEASURES + GENERATIVE_MEASURES + STATUS))


def generative(frame: pd.DataFrame) -> bool:
    """Rows of a generative model (their latency is decode ms per token)."""
    return "kind" in frame and bool((frame["kind"] == "generative").any())


# Marks a p90 that is of calibrated batches, not of single calls (explained under the table).
BATCHED = "ᵇ"


def _p90(row: pd.Series) -> str:
    text = fmt_number(row["latency_p90_ms"], ".3f")
    return text + BATCHED if text != EMPTY and _truthy(_get(row, "latency_tails_from_batches")) else text


def _count(value: Any) -> str:
    """Parameter or MAC counts: 226 k, 3.45 M, 301 M."""
    if missing(value):
        return EMPTY
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            scaled = value / scale
            return f"{scaled:.{0 if scaled >= 100 else 1 if scaled >= 10 else 2}f} {unit}"
    return str(int(value))


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


def flat(cell: str) -> str:
    """A cell on one line, for renderers that do not break cells (markdown, JSON, HTML)."""
    return cell.replace("\n", " ")


def _text(value: Any) -> str:
    if missing(value):
        return EMPTY
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class ReportTable:
    """One model's variants: what every renderer draws. Cells may hold a line break between a
    value and its qualifier (`0.051\n[0.050–0.052]`); `flat` puts them on one line."""

    title: str
    folded: list[tuple[str, str]]  # (name, value) of columns that do not vary: the header line
    headers: list[str]
    rows: list[list[str]]
    statuses: list[str]
    columns: tuple[Column, ...] = ()  # the columns after `variant`, as headers[1:] names them

    @property
    def header_line(self) -> str:
        return " · ".join(f"{name} {flat(value)}" for name, value in self.folded)


def build_table(frame: pd.DataFrame, title: str) -> ReportTable:
    """Variant first; empty columns dropped; columns with one value (over two or more rows, or
    any context column) folded into the header line."""
    frame = frame.assign(pareto=pareto_marks(frame))
    rows = [row for _, row in frame.iterrows()]
    folded: list[tuple[str, str]] = []
    kept: list[tuple[Column, list[str]]] = []
    measures = GENERATIVE_MEASURES if generative(frame) else MEASURES
    for column in CONTEXT + measures + STATUS:
        cells = [column.cell(r) for r in rows]
        if all(c == EMPTY for c in cells):
            continue
        shown = [c for c in cells if c != EMPTY]  # a failed row's blanks do not make a column vary
        if len(set(shown)) == 1 and (len(shown) > 1 or column not in measures):
            folded.append((one_line(column.header), shown[0]))
        else:
            kept.append((column, cells))
    headers = ["variant", *(column.header for column, _ in kept)]
    table_rows = [[str(r["variant"]), *(cells[i] for _, cells in kept)] for i, r in enumerate(rows)]
    statuses = [str(r["status"]) for r in rows]
    return ReportTable(title, folded, headers, table_rows, statuses, tuple(column for column, _ in kept))


def build_tables(frame: pd.DataFrame) -> list[ReportTable]:
    """One table per model, in the order the run measured them (last attempt of each cell)."""
    current = latest_attempts(frame)
    return [build_table(group, str(model)) for model, group in current.groupby("model", sort=False)]


def _cell_name(row: pd.Series) -> str:
    return f"{row['model']} {row['variant']} on {row['device']}"


def _truthy(value: Any) -> bool:
    return not missing(value) and bool(value)


def measured(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows whose numbers are shown and judged: ok cells and partial ones (a cell cut short that
    kept its finished repetitions)."""
    return frame[frame["status"].isin(MEASURED)]


def warnings(frame: pd.DataFrame) -> list[str]:
    """What a reader must know before trusting the table (absent columns simply warn of nothing).

    Row by row rather than by boolean masks: a run whose cells all failed has empty columns of
    any dtype (parquet gives strings), and `&` between those raises."""
    notes = []
    current = latest_attempts(frame)
    failed = current[~current["status"].isin(MEASURED)]
    for (model, device, error), group in failed.groupby(["model", "device", "error"], sort=False, dropna=False):
        notes.append(f"failed: {model} {', '.join(map(str, group['variant']))} on {device}: {_text(error)}")
    retried = frame.drop(index=current.index)
    for _, row in retried.iterrows():
        attempt = _text(row["attempt"])
        notes.append(f"retried: {_cell_name(row)}, attempt {attempt} ended {row['status']}: {_text(row['error'])}")
    ok = measured(current)
    no_energy: dict[tuple[str, str], int] = {}
    for _, row in ok.iterrows():
        if row["status"] == "partial":
            kept = _text(_get(row, "repetitions"))
            notes.append(f"partial: {_cell_name(row)}: only {kept} repetition(s) finished: {_text(row['error'])}")
        if isinstance(row["ops_outside_delegate"], str) and row["ops_outside_delegate"]:
            explained = _get(row, "delegation_note")
            ops = explained if isinstance(explained, str) and explained else row["ops_outside_delegate"]
            notes.append(f"partial delegation: {row['model']} {row['variant']} runs outside XNNPACK: {ops}")
        notes.extend(_measurement_warnings(row))
        status = _get(row, "energy_status")
        if isinstance(status, str) and missing(_get(row, "energy_mj_per_inference")) and not _charging(status):
            key = (str(row["device"]), status)
            no_energy[key] = no_energy.get(key, 0) + 1
    notes.extend(_protocol_notes(ok))
    for (device, status), count in no_energy.items():
        notes.append(f"energy not measured on {device} ({count} cell(s)): {status}")
    notes.extend(_compression_warnings(ok))
    if "device_emulated" in ok:
        for device, group in ok[ok["device_emulated"].map(_truthy)].groupby("device", sort=False):
            how = group["device_emulation"].dropna() if "device_emulation" in group else pd.Series(dtype=object)
            notes.append(
                f"emulated: {device} is an emulator ({how.iloc[0] if len(how) else 'Android emulator'}):"
                " its timings are not a phone's"
            )
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
    notes.extend(_slow_int8(ok))
    return notes


def _slow_int8(ok: pd.DataFrame) -> list[str]:
    """int8 significantly slower than fp32 (a `n.s.` difference is noise, not slower)."""
    slow: dict[str, list[pd.Series]] = {}
    for _, row in ok.iterrows():
        speedup = row["speedup_vs_fp32"]
        if "int8" in str(row["variant"]) and not missing(speedup) and speedup < 1.0 and _significant(row):
            slow.setdefault(str(row["device"]), []).append(row)
    notes = []
    for device, rows in sorted(slow.items()):
        features = [r["device_cpu_features"] for r in rows if not missing(r["device_cpu_features"])]
        listed = features[0] if features else "unknown"
        notes.append(
            f"int8 slower than fp32 on {device} for {', '.join(sorted({str(r['model']) for r in rows}))}: "
            f"int8 speed depends on the CPU's int8 dot-product instructions (this one has: {listed})"
        )
    return notes


def _significant(row: pd.Series) -> bool:
    """The speedup test says the difference is real; untested (older runs) counts as real."""
    significant = _get(row, "speedup_significant")
    return missing(significant) or bool(significant)


def _charging(status: str) -> bool:
    """The energy module said the battery status field read Charging or Full (matched exactly
    there): notes such as "negative while discharging" are not charging."""
    from pocketbench.telemetry.energy import CHARGING_ALLOWED, CHARGING_STATUS

    return status.startswith(CHARGING_STATUS) or CHARGING_ALLOWED in status.split("; ")


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
    elif reason := unstable_reason(list_value(row["latency_samples_ms"])):
        notes.append(f"unstable: {_cell_name(row)}: {reason}; rerun with more --iterations or --min-seconds")
    stop, half = _get(row, "repetitions_stop"), _get(row, "latency_p50_ci_halfwidth")
    if stop in ("budget", "max_processes") and not _truthy(_get(row, "repetitions_target_met")) and not missing(half):
        why = "its time budget (--cell-budget) ran out" if stop == "budget" else "it reached the most processes"
        notes.append(
            f"not settled: {_cell_name(row)}: p50 CI ±{100 * half:.1f}% after {_text(row['repetitions'])} "
            f"processes, {why}"
        )
    modes = _get(row, "latency_modes")
    if isinstance(modes, str) and modes not in str(_get(row, "unstable_reason")):
        notes.append(f"two speeds: {_cell_name(row)}: {modes}; the p50's CI spans both")
    if isinstance(_get(row, "device_repairs"), str):
        retried = _truthy(_get(row, "device_retried"))
        again = "; the runner could not start before, so the cell ran again" if retried else ""
        notes.append(f"repaired: {_cell_name(row)}: {row['device_repairs']}{again}")
    if _truthy(_get(row, "throttled")):
        notes.append(f"throttled: {_cell_name(row)}: {_get(row, 'throttle_reason') or 'the CPU slowed down during it'}")
    energy_status = _get(row, "energy_status")
    if isinstance(energy_status, str) and _charging(energy_status):
        notes.append(f"charging: {_cell_name(row)}: {energy_status}")
    if isinstance(_get(row, "cooldown_note"), str):
        notes.append(f"cooldown: {_cell_name(row)}: {row['cooldown_note']}")
    return notes


def _protocol_notes(ok: pd.DataFrame) -> list[str]:
    """Calibrated batches, whose tails are of batches, and samples far out in the tail (the threads
    used are in the context line)."""
    notes = []
    if "latency_tails_from_batches" in ok:
        batched = ok[ok["latency_tails_from_batches"].map(_truthy)]
        if len(batched):
            cells = ", ".join(f"{_cell_name(r)} ({_text(r['batch_calls'])} calls)" for _, r in batched.iterrows())
            notes.append(
                f"batched{BATCHED}: {cells}: each sample times a batch of calls lasting ≥ the --batch-min-ms "
                "target; p50 is per call, p90/p99 are of those batches (single-call tails are hidden)"
            )
    if "threads_source" in ok:
        notes.extend(_threads_notes(ok))
    if "latency_tail_note" in ok:
        tails = [
            f"{_cell_name(r)} ({r['latency_tail_note']})"
            for _, r in ok.iterrows()
            if isinstance(_get(r, "latency_tail_note"), str)
        ]
        if tails:
            notes.append(
                f"tails: {'; '.join(tails)}: preempted or slow calls, which move the mean, CV and p99 but not "
                "the p50 or its CI"
            )
    return notes


def _threads_notes(ok: pd.DataFrame) -> list[str]:
    """The thread policy, once per device: the device's own (and why), or the threads the settings
    or the runtime chose and the cores a phone pinned them to."""
    notes = []
    for device, group in ok.groupby("device", sort=False):
        counts = "/".join(sorted({_text(t) for t in group["threads"]}))
        first = group.iloc[0]
        if first["threads_source"] in ("device-policy", "device"):  # "device": runs saved before the name
            notes.append(
                f"threads: {counts} on {device}, the device's policy: {_text(first['threads_note'])}; "
                "--threads 0 for the runtime's own count"
            )
            continue
        clusters = _get(first, "core_clusters")
        if isinstance(clusters, str):
            chosen = "--threads" if first["threads_source"] == "settings" else "the runtime's own count"
            mask = first["cpu_mask"]
            notes.append(f"threads: {counts} on {device} ({chosen}), pinned to {clusters} (taskset {mask})")
    return notes


def _threads_hint(row: pd.Series) -> str:
    """Processes disagreeing with several runtime threads: measured (benchmarks/RESULTS.md,
    "Run-to-run stability") to come from the threadpool, which one thread avoids."""
    from pocketbench.stats import UNSTABLE_REPETITION_CV

    spread, threads = _get(row, "latency_repetition_cv"), _get(row, "threads")
    if missing(spread) or missing(threads) or spread < UNSTABLE_REPETITION_CV or threads <= 1:
        return ""
    return f"; with {threads} threads each process can settle at a different speed: try --threads 1"


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
    folded = {name: flat(value) for name, value in table.folded}
    rows = [[flat(c) for c in row] for row in table.rows]
    return {"model": table.title, "folded": folded, "columns": columns, "rows": rows}


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


def run_title(run_id: str, baseline_id: str | None) -> str:
    return f"pocketbench run {run_id}" + (f" vs baseline {baseline_id}" if baseline_id else "")
