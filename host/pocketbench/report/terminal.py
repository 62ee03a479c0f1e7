"""The report table in a terminal: the columns that fit its width, chosen by priority; a cell is
never broken inside a number or a word (its line breaks are the ones the report put there);
what was left out is named under the table with the options that show it.

The width is only known when rich draws, so `FittedTable` chooses its columns then: the same
report reads well at 80, 100 or 160 columns.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from functools import partial
from typing import Any, Literal, Protocol

import pandas as pd
from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.markup import render as render_markup
from rich.measure import Measurement
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from pocketbench.errors import BadValue
from pocketbench.report.cautions import warnings
from pocketbench.report.column_formats import COLUMN_KEYS, Column, flat
from pocketbench.report.fixed_grid import FixedGrid
from pocketbench.report.table import ReportTable, build_tables, run_title
from pocketbench.report.verdict_table import NOTHING_CHANGED, VerdictTable
from pocketbench.results.cell_status import MEASURED, CellStatus
from pocketbench.results.verdicts import Verdict

LEFT_ALIGNED = ("device", "status")


def parse_columns(spec: str | None) -> list[str] | None:
    """`p50,p90,size` (the CLI's `--columns`) → keys (None: choose by width); an unknown key is an error."""
    if spec is None:
        return None
    keys = [k.strip() for k in spec.split(",") if k.strip()]
    unknown = [k for k in keys if k not in COLUMN_KEYS and k != "variant"]
    if unknown or not keys:
        raise BadValue(
            "columns", spec, f"unknown {', '.join(unknown) or 'empty list'}; use any of {', '.join(COLUMN_KEYS)}"
        )
    return keys


PROSE_WIDTH = 20  # a prose column (it wraps between words) is never drawn narrower than this
REPORTS_HINT = "the markdown and HTML reports show every column"


class FitColumn(Protocol):
    """What fitting needs of a column (`Column`, `TextColumn`)."""

    @property
    def key(self) -> str: ...
    @property
    def header(self) -> str: ...
    @property
    def priority(self) -> int: ...
    @property
    def prose(self) -> bool: ...


# The table of these columns (True: to measure it, a rich Table with prose at its narrowest).
Draw = Callable[[Sequence[Any], bool], Table | FixedGrid]


class FittedTable:
    """A table drawn in the width rich gives it: its columns chosen by priority, or `keys`, or
    all with `wide`; `hint` says how to see the ones left out."""

    def __init__(
        self,
        columns: Sequence[FitColumn],
        draw: Draw,
        keys: Sequence[str] | None = None,
        wide: bool = False,
        hint: Callable[[list[str]], str] | None = None,
    ) -> None:
        self.columns, self.draw, self.keys, self.wide, self.hint = list(columns), draw, keys, wide, hint

    @classmethod
    def of_report(cls, table: ReportTable, keys: Sequence[str] | None = None, wide: bool = False) -> FittedTable:
        """One model's results table; what is left out is named with the options that show it."""

        def hint(left_out: list[str]) -> str:
            return f"--wide shows every column; --columns {','.join(['p50', *left_out[:2]])} picks them"

        widths = column_widths(table)

        def draw(columns: Sequence[Column], measuring: bool) -> Table | FixedGrid:  # measured by its widths alone
            return rich_table(table, columns, (), widths) if measuring else fixed_table(table, columns, widths)

        return cls(table.columns, draw, keys, wide, hint)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        if self.wide:
            chosen = self.columns
        elif self.keys is not None:
            chosen = [c for c in self.columns if c.key in self.keys]
        else:
            chosen = fit_columns(console, options, self.columns, self.draw, width)
        table = self.draw(chosen, False)
        needed = _width(console, options, self.draw(chosen, True))
        if needed > width:  # asked for: lines longer than the terminal, never a squeezed cell
            yield from _lines(console, options.update(width=needed), table)
        else:
            yield table
        left_out = [c.key for c in self.columns if c not in chosen]
        if left_out and not self.wide:
            where = "" if self.keys is not None else f" at {width} columns"
            hint = f" ({self.hint(left_out)})" if self.hint is not None else ""
            yield Text(f"  not shown{where}: {', '.join(left_out)}{hint}", style="dim")


def fit_columns(
    console: Console, options: ConsoleOptions, columns: Sequence[FitColumn], draw: Draw, width: int
) -> list[FitColumn]:
    """The most important columns that fit `width`, in the table's own order: those of priority 0
    always (a line past the edge rather than a table without them), then each in turn by
    priority, kept when the table with it still fits (prose columns counted at their narrowest)."""
    order = sorted(range(len(columns)), key=lambda i: (columns[i].priority, i))
    chosen = {i for i in order if columns[i].priority == 0}
    for i in order:
        trial = [columns[j] for j in sorted(chosen | {i})]
        if _width(console, options, draw(trial, True)) <= width:
            chosen.add(i)
    return [columns[j] for j in sorted(chosen)]


def measured_rows(rows: Sequence[Sequence[str]]) -> list[int]:
    """The rows that decide a table's measured width: in each column, the cell with the longest
    word and the one with the longest line (what rich measures a text cell by, column by column).
    Drawn alone they measure as wide as the whole table, at a fraction of the cost: fitting a
    table to the terminal measures it once per column tried."""
    keep: set[int] = set()
    for position in range(len(rows[0]) if rows else 0):
        cells = [row[position] for row in rows]
        for size in (_longest_line, _longest_word):
            sizes = [size(cell) for cell in cells]
            keep.add(sizes.index(max(sizes)))
    return sorted(keep)


def _longest_line(text: str) -> int:
    return max((cell_len(line) for line in text.splitlines()), default=0)


def _longest_word(text: str) -> int:
    """rich's narrowest width of a text: its longest word (its longest line when it has none)."""
    return max((cell_len(word) for word in text.split()), default=_longest_line(text))


def rich_table(
    model: ReportTable,
    columns: Iterable[Column],
    only: Sequence[int] | None = None,
    widths: Sequence[int] | None = None,
) -> Table:
    """The rich table of `columns` (variant first); no column ever wraps or folds its cells.
    `only`: the rows at these positions (measured_rows, to measure the table); `widths`: each
    column's width (column_widths), so rich never measures the cells."""
    shown = list(columns)
    positions = [0, *(model.columns.index(c) + 1 for c in shown)]
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    for position in positions:
        header = model.headers[position]
        left = position == 0 or header in LEFT_ALIGNED
        width = None if widths is None else widths[position]
        table.add_column(header, justify="left" if left else "right", no_wrap=True, overflow="ellipsis", width=width)
    for i in range(len(model.rows)) if only is None else only:
        cells, status = model.rows[i], model.statuses[i]
        table.add_row(*(Text(cells[p]) for p in positions), style=_row_style(status))  # names are text, never markup
    return table


def fixed_table(model: ReportTable, columns: Iterable[Column], widths: Sequence[int]) -> FixedGrid:
    """`rich_table(model, columns, widths=widths)` drawn line by line (fixed_grid.py): the same text."""
    shown = list(columns)
    positions = [0, *(model.columns.index(c) + 1 for c in shown)]
    headers = [model.headers[p] for p in positions]
    rows = [[cells[p] for p in positions] for cells in model.rows]
    left = [p == 0 or model.headers[p] in LEFT_ALIGNED for p in positions]
    styles = [_row_style(status) for status in model.statuses]
    fallback = partial(rich_table, model, shown, None, widths)
    return FixedGrid(headers, rows, [widths[p] for p in positions], left, styles, fallback)


def _row_style(status: str) -> str | None:
    return None if status == CellStatus.OK else "yellow" if status in MEASURED else "red"


def column_widths(model: ReportTable) -> list[int]:
    """Each column's width as rich measures a column that never wraps: its longest line, the
    header (as rich renders its markup) included. Handed to rich, a 600-row table is measured
    once instead of at every width a fit tries and again to draw it."""
    widths = []
    for position, header in enumerate(model.headers):
        lines = [_longest_line(row[position]) for row in model.rows]
        widths.append(max([_longest_line(render_markup(header).plain), *lines]))
    return widths


def _width(console: Console, options: ConsoleOptions, table: RenderableType) -> int:
    return Measurement.get(console, options.update(width=10_000), table).maximum


def _lines(console: Console, options: ConsoleOptions, table: RenderableType) -> RenderResult:
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
    for model in build_tables(frame):
        parts.append(Text(model.title, style="bold"))
        if model.folded:
            parts.append(PackedLine([f"{name} {flat(value)}" for name, value in model.folded], style="italic"))
        parts.append(FittedTable.of_report(model, columns, wide))
        parts.extend(Text("  " + line, style="dim") for line in model.pareto)
    for note in [*notes, *warnings(frame)]:
        parts.append(Text("⚠ " + note, style="yellow"))
    return Group(*parts)


VERDICT_STYLE = {Verdict.REGRESSION: "bold red", Verdict.IMPROVEMENT: "green"}


def render_verdicts(table: VerdictTable) -> Group:
    """A farm run's verdicts for `console.print`: the changes in the columns that fit (the detail
    wraps between words), the counts, then what was not judged (yellow) and what went wrong (red)."""
    parts: list[Any] = [Text(table.title, style="bold")]
    if table.folded:
        parts.append(PackedLine([f"{name} {value}" for name, value in table.folded], style="italic"))
    if table.rows:
        draw = partial(verdicts_rich, table, widest=measured_rows(table.rows))
        parts.append(FittedTable(table.columns, draw, hint=lambda _: REPORTS_HINT))
    else:
        parts.append(Text(NOTHING_CHANGED))
    parts += [Text(line) for line in [table.counts, *table.facts]]
    parts += [Text(line, style="yellow") for line in table.not_judged]
    parts += [Text(line, style="red") for line in table.problems]
    return Group(*parts)


def verdicts_rich(
    table: VerdictTable, columns: Sequence[Column], narrowest: bool = False, widest: Sequence[int] | None = None
) -> Table:
    """The rich table of the verdicts' `columns`, the verdict coloured; `narrowest` (to measure
    it): prose at its narrowest, and only the `widest` rows when given (measured_rows)."""

    def style(row: int, column: FitColumn) -> str:
        return VERDICT_STYLE.get(table.verdicts[row], "") if column.key == "verdict" else ""

    only = widest if narrowest else None
    return rows_table(table.columns, table.rows, columns, narrowest, table.text_headers, style, only)


def rows_table(
    columns: Sequence[FitColumn],
    rows: Sequence[Sequence[str]],
    shown: Sequence[FitColumn],
    narrowest: bool = False,
    left: Collection[str] = (),
    style: Callable[[int, FitColumn], str] | None = None,
    only: Sequence[int] | None = None,
) -> Table:
    """The rich table of text `rows` (cells in `columns` order) in the `shown` columns: names and
    figures never break; a prose column wraps between words, never narrower than PROSE_WIDTH
    (`narrowest`: drawn at that width, to measure the table). Headers in `left` are aligned left;
    `only`: the rows at these positions (measured_rows, to measure the table)."""
    drawn = Table(header_style="bold", box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    positions = [list(columns).index(c) for c in shown]
    for column, position in zip(shown, positions, strict=True):
        justify: Literal["left", "right"] = "left" if column.header in left else "right"
        if column.prose:
            floor = min(PROSE_WIDTH, max((cell_len(row[position]) for row in rows), default=1))
            drawn.add_column(column.header, justify=justify, min_width=floor, max_width=floor if narrowest else None)
        else:
            drawn.add_column(column.header, justify=justify, no_wrap=True, overflow="ellipsis")
    for i in range(len(rows)) if only is None else only:
        row = rows[i]
        styles = [style(i, column) if style is not None else "" for column in shown]
        drawn.add_row(*(Text(row[p], style=s) for p, s in zip(positions, styles, strict=True)))  # text, never markup
    return drawn
