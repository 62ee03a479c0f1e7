"""The report's columns: what each shows, how its cells are written, and which keep a place in a
narrow terminal. A cell function reads one tidy row (results/store.py's columns) and returns text;
a line break in a cell is where a terminal may break it (renderers that do not break cells use
`flat`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pocketbench.results.cell_status import CellStatus

EMPTY = "—"
# pandas' nullable columns (Int64, Float64, boolean): their NA is None in to_dict's rows.
MASKED = (pd.arrays.IntegerArray, pd.arrays.FloatingArray, pd.arrays.BooleanArray)


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


def fmt_bytes(value: Any) -> str:
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


def row_dicts(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """`frame.to_dict("records")` column by column, at a fraction of its cost (a cell is read
    many times per row, a Series' lookup is slow): numbers become Python's, a nullable column's
    NA becomes None, as to_dict makes them."""
    names = [str(name) for name in frame.columns]
    if not names:
        return [{} for _ in range(len(frame))]
    columns = []
    for position in range(len(names)):
        column = frame.iloc[:, position]
        values = column.tolist()
        if isinstance(column.array, MASKED):
            values = [None if value is pd.NA else value for value in values]
        columns.append(values)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def field(row: pd.Series, column: str) -> Any:
    """A cell of a column that later work may add (None when absent); `row` a Series or a dict."""
    return row.get(column)


def _versus_baseline(row: pd.Series) -> str:
    """`+3.1% (p=0.020)` when significant, `+0.4% (n.s.)` when not, `—` without a baseline."""
    pct = field(row, "latency_p50_change_pct")
    if pct is None or pd.isna(pct):
        return EMPTY
    p_value = field(row, "latency_p_value")
    if p_value is None or pd.isna(p_value):
        return f"{pct:+.1f}%\n(untested)"
    if not field(row, "latency_change_significant"):
        return f"{pct:+.1f}%\n(n.s.)"
    return f"{pct:+.1f}%\n(p<0.001)" if p_value < 0.001 else f"{pct:+.1f}%\n(p={p_value:.3f})"


def _p50(row: pd.Series) -> str:
    """`1.234 [1.221–1.250]`: the median with its bootstrap CI over the repetitions."""
    p50, low, high = row["latency_p50_ms"], field(row, "latency_p50_ci_low_ms"), field(row, "latency_p50_ci_high_ms")
    if missing(low) or missing(high):
        return fmt_number(p50, ".3f")
    return f"{fmt_number(p50, '.3f')}\n[{low:.3f}–{high:.3f}]"


def _speedup(row: pd.Series) -> str:
    """`2.31× [2.2–2.4]` when significant, `n.s.` when the difference is noise; blank for fp32."""
    if row["variant"] == "fp32" or missing(row["speedup_vs_fp32"]):
        return EMPTY
    significant = field(row, "speedup_significant")
    if missing(significant):
        return fmt_number(row["speedup_vs_fp32"], ".2f", "×")
    if not significant:
        return "n.s."
    return f"{row['speedup_vs_fp32']:.2f}×\n[{row['speedup_ci_low']:.2f}–{row['speedup_ci_high']:.2f}]"


def _memory(row: pd.Series) -> str:
    """Peak RSS+swap and its growth over the process before the model loaded."""
    peak, delta = field(row, "peak_rss_swap_kb"), field(row, "rss_delta_kb")
    if missing(peak):
        return EMPTY
    return f"{peak / 1e3:.1f}" + ("" if missing(delta) else f"\n(+{delta / 1e3:.1f})")


def _energy(row: pd.Series) -> str:
    """`0.123 ± 0.004`, or `n/a` (the reason is under the table)."""
    value, err = field(row, "energy_mj_per_inference"), field(row, "energy_mj_per_inference_err")
    if missing(value):
        return EMPTY if missing(field(row, "energy_status")) else "n/a"
    return f"{value:.3g}\n± {err:.2g}" if not missing(err) else f"{value:.3g}"


def _temps(row: pd.Series) -> str:
    start, end = field(row, "temp_start_c"), field(row, "temp_end_c")
    return EMPTY if missing(start) or missing(end) else f"{start:.0f}→{end:.0f}"


def _flags(row: pd.Series) -> str:
    flags = [name for name in ("unstable", "throttled") if truthy(field(row, name))]
    if truthy(field(row, "device_emulated")):
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
    return _with_ratio(fmt_bytes(r["size_bytes"]), fmt_number(r["size_ratio_vs_fp32"], ".2f", "×"))


def _zipped_cell(r: pd.Series) -> str:
    ratio = fmt_number(field(r, "compression_ratio_vs_fp32"), ".1f", "×")
    return _with_ratio(fmt_bytes(field(r, "size_zipped_bytes")), ratio)


def _macs_cell(r: pd.Series) -> str:
    return _with_ratio(_count(field(r, "macs")), fmt_number(field(r, "macs_ratio_vs_fp32"), ".2f", "×"))


def _accuracy_cell(r: pd.Series) -> str:
    return _with_ratio(fmt_pct(r["accuracy"]), fmt_number(r["accuracy_vs_fp32_points"], "+.1f"))


MEASURES: list[Column] = [
    Column("size", "size\n(× fp32)", _size_cell, 3),
    Column("zipped", "zipped\n(÷ fp32)", _zipped_cell, 16),
    Column("params", "params", lambda r: _count(field(r, "params")), 17),
    Column("macs", "MACs\n(× fp32)", _macs_cell, 18),
    Column("sparsity", "sparsity", lambda r: fmt_pct(field(r, "sparsity"), ".0f"), 19),
    Column("p50", "p50 ms\n[95% CI]", lambda r: _p50(r), 1),
    Column("speedup", "speedup\nvs fp32", lambda r: _speedup(r), 2),
    Column("vs-baseline", "p50 vs\nbaseline", _versus_baseline, 2),
    Column("p90", "p90\nms", lambda r: _p90(r), 13),
    Column("load", "load\nms", lambda r: fmt_number(r["load_ms"], ".1f"), 14),
    Column("first", "1st\nms", lambda r: fmt_number(r["first_inference_ms"], ".2f"), 15),
    Column("rss", "peak\nRSS MB", lambda r: fmt_number(_kb_to_mb(r["peak_rss_kb"]), ".1f"), 8),
    Column("planned", "planned\nmemory", lambda r: fmt_bytes(r["planned_memory_bytes"]), 24),
    Column("swap", "peak+swap\nΔ base MB", lambda r: _memory(r), 23),
    Column("energy", "energy\nmJ/inf", lambda r: _energy(r), 7),
    Column("temp", "temp °C\nstart→end", lambda r: _temps(r), 25),
    Column("flags", "flags", lambda r: _flags(r), 9),
    Column("accuracy", "accuracy\n(Δ pts)", _accuracy_cell, 4),
    Column(
        "acc-vs-baseline", "Δ acc pts\nvs baseline", lambda r: fmt_number(field(r, "accuracy_delta_points"), "+.1f"), 20
    ),
    Column("sqnr", "SQNR\ndB", lambda r: fmt_number(r["sqnr_db"], ".1f"), 5),
    Column("top1", "top-1\nagree", lambda r: fmt_pct(r["top1_agreement"], ".0f"), 21),
    Column("worst-layer", "worst\nlayer dB", lambda r: fmt_number(field(r, "layer_sqnr_min_db"), ".1f"), 22),
    Column("delegated", "deleg-\nated", lambda r: fmt_pct(r["delegated_fraction"], ".0f"), 12),
    Column("compress", "compress\ns", lambda r: fmt_number(field(r, "compress_seconds"), ".1f"), 26),
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
    if truthy(field(r, "speed_only")):
        return "speed only"  # random weights (llama_speed): a perplexity would mean nothing
    delta = field(r, "perplexity_delta_pct")
    text = fmt_number(field(r, "perplexity"), ".3f")
    return text if missing(delta) or r["variant"] == "fp32" else f"{text}\n({delta:+.1f}%)"


def _mean_sd_cell(r: pd.Series) -> str:
    cells = []
    for name in ("prefill", "decode"):
        mean, sd = field(r, f"{name}_tok_s_mean"), field(r, f"{name}_tok_s_sd")
        cells.append(fmt_number(mean, ".1f") + ("" if missing(sd) else f" ± {sd:.1f}"))
    return "\n".join(cells) if any(c != EMPTY for c in cells) else EMPTY


# Generative models (rows of kind "generative", measure/generation.py): tokens/s, not one call.
GENERATIVE_MEASURES: list[Column] = [
    Column("size", "size\n(× fp32)", _size_cell, 3),
    Column(
        "ttft",
        "TTFT ms\n[95% CI]",
        lambda r: _with_ci(field(r, "ttft_ms"), field(r, "ttft_ci_low_ms"), field(r, "ttft_ci_high_ms"), ".2f"),
        4,
    ),
    Column(
        "prefill",
        "prefill\ntok/s",
        lambda r: _with_ci(
            field(r, "prefill_tok_s"), field(r, "prefill_tok_s_ci_low"), field(r, "prefill_tok_s_ci_high"), ".0f"
        ),
        5,
    ),
    Column(
        "decode",
        "decode tok/s\n[95% CI]",
        lambda r: _with_ci(
            field(r, "decode_tok_s"), field(r, "decode_tok_s_ci_low"), field(r, "decode_tok_s_ci_high"), ".1f"
        ),
        1,
    ),
    Column("speedup", "decode\nvs fp32", lambda r: _speedup(r), 2),
    # llama-bench's figures (report --format llama-bench): per-generation rates, mean ± sd.
    Column("mean-sd", "pp / tg t/s\nmean ± sd", lambda r: _mean_sd_cell(r), 16),
    Column("vs-baseline", "ms/tok vs\nbaseline", _versus_baseline, 2),
    Column(
        "p90",
        "ms/tok\np50/p90",
        lambda r: f"{fmt_number(field(r, 'decode_ms_p50'), '.3f')}\n{fmt_number(field(r, 'decode_ms_p90'), '.3f')}",
        13,
    ),
    Column("perplexity", "perplexity\n(Δ fp32)", _perplexity_cell, 3),
    Column("agreement", "greedy\nagree", lambda r: fmt_pct(field(r, "greedy_agreement"), ".0f"), 6),
    Column("load", "load\nms", lambda r: fmt_number(r["load_ms"], ".1f"), 14),
    Column("rss", "peak\nRSS MB", lambda r: fmt_number(_kb_to_mb(r["peak_rss_kb"]), ".1f"), 8),
    Column("planned", "planned\nmemory", lambda r: fmt_bytes(r["planned_memory_bytes"]), 24),
    Column("kv-cache", "KV\ncache", lambda r: fmt_bytes(field(r, "kv_cache_bytes")), 15),
    Column("energy", "energy\nmJ/token", lambda r: _energy(r), 7),
    Column("flags", "flags", lambda r: _flags(r), 9),
    Column("delegated", "deleg-\nated", lambda r: fmt_pct(r["delegated_fraction"], ".0f"), 12),
    Column("compress", "compress\ns", lambda r: fmt_number(field(r, "compress_seconds"), ".1f"), 26),
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
    Column("device-model", "device\nmodel", lambda r: as_text(r["device_model"]), 27),
    Column("cpu", "cpu", lambda r: as_text(r["device_cpu"]), 28),
    Column("backend", "backend", lambda r: as_text(r["backend"]), 29),
    Column("runtime", "runtime", lambda r: as_text(r["runtime_version"]), 30),
    Column("threads", "threads", lambda r: as_text(r["threads"]), 11),
    Column("iterations", "iter-\nations", lambda r: as_text(r["iterations"]), 31),
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
    return text + BATCHED if text != EMPTY and truthy(field(row, "latency_tails_from_batches")) else text


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
    mark = field(row, "pareto")
    if isinstance(mark, str):
        return mark
    return "·" if row["status"] == CellStatus.OK else EMPTY


def one_line(header: str) -> str:
    """A two-line rich header on one line (`deleg-\nated` → `delegated`)."""
    return header.replace("-\n", "").replace("\n", " ")


def flat(cell: str) -> str:
    """A cell on one line, for renderers that do not break cells (markdown, JSON, HTML)."""
    return cell.replace("\n", " ")


def as_text(value: Any) -> str:
    if missing(value):
        return EMPTY
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def truthy(value: Any) -> bool:
    return not missing(value) and bool(value)
