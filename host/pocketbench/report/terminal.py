"""The report table in a terminal: the columns that fit its width, chosen by priority; a cell is
never broken inside a number or a word (its line breaks are the ones the report put there);
what was left out is named under the table with the options that show it.

The width is only known when rich draws, so `FittedTable` chooses its columns then: the same
report reads well at 80, 100 or 160 columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from pocketbench.errors import PocketbenchError
from pocketbench.report.table import (
    COLUMN_KEYS,
    Column,
    ReportTable,
    build_tables,
    flat,
    pareto_lines,
    run_title,
    warnings,
)
from pocketbench.results.compare import MEASURED, latest_attempts

LEFT_ALIGNED = ("device", "status")


def parse_columns(spec: str | None) -> list[str] | None:
    """`--columns p50,p90,size` → keys (None: choose by width); an unknown key is an error."""
    if spec is None:
        return None
    keys = [k.strip() for k in spec.split(",") if k.strip()]
    unknown = [k for k in keys if k not in COLUMN_KEYS and k != "variant"]
    if unknown or not keys:
        raise PocketbenchError(f"--columns {spec!r}: unknown {', '.join(unknown) or 'empty list'}; use any of "
                               f"{', '.join(COLUMN_KEYS)}")  # fmt: skip
    return keys


class FittedTable:
    """One model's table drawn in the width rich gives it (or wider with `wide`/`keys`)."""

    def __init__(self, table: ReportTable, keys: Sequence[str] | None = None, wide: bool = False) -> None:
        self.table, self.keys, self.wide = table, keys, wide

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        columns = list(self.table.columns)
        if self.wide:
            chosen = columns
        elif self.keys is not None:
            chosen = [c for c in columns if c.key in self.keys]
        else:
            chosen = fit_columns(console, options, self.table, width)
        table = rich_table(self.table, chosen)
        needed = _width(console, options, table)
        if needed > width:  # asked for: lines longer than the terminal, never a squeezed cell
            yield from _lines(console, options.update(width=needed), table)
        else:
            yield table
        left_out = [c.key for c in columns if c not in chosen]
        if left_out and not self.wide:
            example = ",".join(["p50", *left_out[:2]])
            yield Text(
                f"  not shown{'' if self.keys is not None else f' at {width} columns'}: {', '.join(left_out)} "
                f"(--wide shows every column; --columns {example} picks them)",
                style="dim",
            )


def fit_columns(console: Console, options: ConsoleOptions, table: ReportTable, width: int) -> list[Column]:
    """The most important columns that fit `width`, in the table's own order: each in turn by
    priority, kept when the table with it still fits."""
    order = sorted(range(len(table.columns)), key=lambda i: (table.columns[i].priority, i))
    chosen: set[int] = set()
    for i in order:
        trial = [table.columns[j] for j in sorted(chosen | {i})]
        if _width(console, options, rich_table(table, trial)) <= width:
            chosen.add(i)
    return [table.columns[j] for j in sorted(chosen)]


def rich_table(model: ReportTable, columns: Iterable[Column]) -> Table:
    """The rich table of `columns` (variant first); no column ever wraps or folds its cells."""
    shown = list(columns)
    positions = [0, *(model.columns.index(c) + 1 for c in shown)]
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    for position in positions:
        header = model.headers[position]
        left = position == 0 or header in LEFT_ALIGNED
        table.add_column(header, justify="left" if left else "right", no_wrap=True, overflow="ellipsis")
    for cells, status in zip(model.rows, model.statuses, strict=True):
        style = None if status == "ok" else "yellow" if status in MEASURED else "red"
        table.add_row(*(Text(cells[p]) for p in positions), style=style)  # names are text, never markup
    return table


def _width(console: Console, options: ConsoleOptions, table: Table) -> int:
    return Measurement.get(console, options.update(width=10_000), table).maximum


def _lines(console: Console, options: ConsoleOptions, table: Table) -> RenderResult:
    for line in console.render_lines(table, options, pad=False):
        yield from line
        yield Segment.line()


class PackedLine:
    """`a · b · c` that breaks only between items (`runtime executorch 1.5.1` stays whole)."""

    def __init__(self, items: Sequence[str], style: str = "", separator: str = " · ") -> None:
        self.items, self.style, self.separator = list(items), style, separator

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines: list[str] = []
        for item in self.items:
            joined = f"{lines[-1]}{self.separator}{item}" if lines else item
            if lines and cell_len(joined) <= options.max_width:
                lines[-1] = joined
            else:
                lines.append(item)
        for line in lines:
            yield Text(line, style=self.style)


def render(
    frame: pd.DataFrame,
    run_id: str,
    baseline_id: str | None = None,
    notes: Sequence[str] = (),
    columns: Sequence[str] | None = None,
    wide: bool = False,
) -> Group:
    """The tables and their warnings, ready for `console.print`: each table keeps the columns
    that fit the console (by priority), or `columns` (keys of COLUMN_KEYS), or all with `wide`."""
    parts: list[Any] = [Text(run_title(run_id, baseline_id), style="bold")]
    groups = [group for _, group in latest_attempts(frame).groupby("model", sort=False)]
    for model, group in zip(build_tables(frame), groups, strict=True):
        parts.append(Text(model.title, style="bold"))
        if model.folded:
            parts.append(PackedLine([f"{name} {flat(value)}" for name, value in model.folded], style="italic"))
        parts.append(FittedTable(model, columns, wide))
        parts.extend(Text("  " + line, style="dim") for line in pareto_lines(group))
    for note in [*notes, *warnings(frame)]:
        parts.append(Text("⚠ " + note, style="yellow"))
    return Group(*parts)
