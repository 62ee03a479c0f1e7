"""Render a run: one table model per model, drawn by every renderer (rich, markdown, JSON, HTML).

One record, many renderers: `build_tables` turns the tidy DataFrame (optionally with the
comparison columns of compare.py) into `ReportTable`s, with the columns of columns.py; columns that
do not vary are folded into a header line; cautions.py's `warnings` lists what a reader must know
before trusting the numbers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pocketbench.report.cautions import warnings
from pocketbench.report.column_formats import (
    CONTEXT,
    EMPTY,
    GENERATIVE_MEASURES,
    MEASURES,
    STATUS,
    Column,
    flat,
    generative,
    one_line,
    row_dicts,
)
from pocketbench.results.compare import latest_attempts
from pocketbench.results.pareto import pareto_marks, quality


def pareto_lines(frame: pd.DataFrame, marks: Sequence[str | None] | None = None) -> list[str]:
    """`Pareto-optimal accuracy vs latency: a, b` (and vs size) for one model's rows (`marks`:
    their pareto_marks, when already known)."""
    if len(frame) < 2:
        return []
    label, _ = quality(frame)
    marks = pareto_marks(frame) if marks is None else marks
    lines = []
    for kind, cost in (("lat", "latency"), ("size", "size")):
        best = [str(v) for v, m in zip(frame["variant"], marks, strict=True) if m and kind in m.split()]
        if best:
            lines.append(f"Pareto-optimal {label} vs {cost}: {', '.join(best)}")
    return lines


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
    pareto: tuple[str, ...] = ()  # pareto_lines: the Pareto-optimal variants, named under the table

    @property
    def header_line(self) -> str:
        return " · ".join(f"{name} {flat(value)}" for name, value in self.folded)


def build_table(frame: pd.DataFrame, title: str, rows: list[dict[str, Any]] | None = None) -> ReportTable:
    """Variant first; empty columns dropped; columns with one value (over two or more rows, or
    any context column) folded into the header line. `rows`: the frame's row_dicts, when known."""
    marks = pareto_marks(frame)
    rows = row_dicts(frame) if rows is None else rows  # dicts: a cell is read a hundred times per row
    for row, mark in zip(rows, marks, strict=True):
        row["pareto"] = mark
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
    columns = tuple(column for column, _ in kept)
    return ReportTable(title, folded, headers, table_rows, statuses, columns, tuple(pareto_lines(frame, marks)))


def build_tables(frame: pd.DataFrame) -> list[ReportTable]:
    """One table per model, in the order the run measured them (last attempt of each cell)."""
    current = latest_attempts(frame)
    rows = row_dicts(current)  # once for the run, not once per model
    codes, models = pd.factorize(current["model"], sort=False)  # first-seen order, as groupby(sort=False)
    tables = []
    for code, model in enumerate(models):
        positions = np.flatnonzero(codes == code)
        group = current.iloc[positions]
        tables.append(build_table(group, str(model), [rows[p] for p in positions]))
    return tables


def run_json(
    frame: pd.DataFrame,
    run_id: str,
    folder: Path,
    baseline_id: str | None = None,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """The run as the one JSON document every `--json` prints (report/run_json_schema.py): the
    tables as shown, the warnings, and the tidy rows of each cell's latest attempt."""
    from pocketbench.report.run_json_schema import RUN_JSON, RUN_JSON_VERSION

    return {
        "schema": RUN_JSON,
        "schema_version": RUN_JSON_VERSION,
        "run_id": run_id,
        "results_dir": str(folder),
        "baseline_run_id": baseline_id,
        "tables": [_table_json(t) for t in build_tables(frame)],
        "warnings": [*notes, *warnings(frame)],
        "rows": records(latest_attempts(frame)),
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


def run_title(run_id: str, baseline_id: str | None) -> str:
    return f"pocketbench run {run_id}" + (f" vs baseline {baseline_id}" if baseline_id else "")
