"""`report --format llama-bench`: a run's generative rows as llama.cpp's `llama-bench -o md` table.

llama-bench prints one markdown row per test — `pp512` (prompt processing of 512 tokens) and
`tg128` (generating 128) — with the columns model, size, params, backend, threads, test and t/s,
where t/s is the mean ± standard deviation over its `-r` repetitions. pocketbench's row of a
variant becomes the same two rows: `pp{P}` from each timed generation's prefill (P / its time),
`tg{N}` from each generation's N decode steps (N / their summed time), mean ± sd over every timed
generation of every runner process (measure/generation.py: per_generation_rates), so a user can
paste it beside a llama.cpp row. The p50 and its CI stay in pocketbench's own table.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from pocketbench.report.column_formats import generative, missing
from pocketbench.results.cell_status import CellStatus

HEADER = "| model | size | params | backend | threads | test | t/s |"
RULE = "| " + " | ".join(["---", "---:", "---:", "---", "---:", "---:", "---:"]) + " |"  # llama-bench's alignment


def llama_bench_markdown(frame: pd.DataFrame) -> str:
    """The table, or one line saying the run has no generative rows to show in it."""
    if frame.empty or not generative(frame):
        return "No generative rows in this run: the llama-bench table shows decoders (pp and tg tests).\n"
    rows = frame[(frame["kind"] == "generative") & (frame["status"] == CellStatus.OK)]
    lines = [HEADER, RULE]
    for _, row in rows.iterrows():
        common = [
            f"{row['model']} {row['variant']}" + (" (speed only)" if _get(row, "speed_only") is True else ""),
            _size(_get(row, "size_bytes")),
            _params(_get(row, "model_params")),
            _backend(row),
            _text(_get(row, "threads")),
        ]
        tests = [
            (f"pp{_int(_get(row, 'prompt_tokens'))}", "prefill"),
            (f"tg{_int(_get(row, 'decode_tokens'))}", "decode"),
        ]
        for test, name in tests:
            rate = _mean_sd(_get(row, f"{name}_tok_s_mean"), _get(row, f"{name}_tok_s_sd"))
            lines.append("| " + " | ".join([*common, test, rate]) + " |")
    skipped = len(frame[frame["kind"] == "generative"]) - len(rows)
    if skipped:
        lines += ["", f"{skipped} generative row(s) not ok are left out (see `pocketbench report`)."]
    return "\n".join(lines) + "\n"


def _get(row: pd.Series, key: str) -> Any:
    value = row.get(key)
    return None if missing(value) else value


def _mean_sd(mean: Any, sd: Any) -> str:
    if mean is None:
        return "—"
    return f"{mean:.2f} ± {sd:.2f}" if sd is not None else f"{mean:.2f}"


def _size(size: Any) -> str:
    """llama-bench writes sizes in binary units: `3.56 GiB`, `234.50 MiB`."""
    if size is None:
        return "—"
    return f"{size / 2**30:.2f} GiB" if size >= 2**30 else f"{size / 2**20:.2f} MiB"


def _params(count: Any) -> str:
    """llama-bench writes `1.24 B`, `134.52 M`."""
    if count is None:
        return "—"
    return f"{count / 1e9:.2f} B" if count >= 1e9 else f"{count / 1e6:.2f} M"


def _backend(row: pd.Series) -> str:
    delegated = _get(row, "delegated_fraction")
    runtime = _text(_get(row, "backend"))
    return "XNNPACK" if delegated else runtime


def _int(value: Any) -> str:
    return "?" if value is None else str(int(value))


def _text(value: Any) -> str:
    return "—" if value is None else str(int(value)) if isinstance(value, float) else str(value)
