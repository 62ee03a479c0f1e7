"""The report table drawn line by line: what rich's Table draws for it, at a fraction of the cost.

A farm run's report holds hundreds of rows of a dozen columns whose widths are known before
drawing (the cells never wrap: terminal.column_widths). rich's Table renders, pads and crops every
cell as its own renderable; here each line is joined from the cells' text directly, in the table
style the report uses (terminal.rich_table: box SIMPLE_HEAD, collapsed padding, no padding at
the edges, headers bottom-aligned and bold, cells top-aligned, a row's style on its cells).
Anything outside that plain case (control characters, markup in a header, a table wider than
the space it is given) is drawn by rich itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import render as render_markup
from rich.segment import Segment
from rich.style import Style
from rich.table import Table

# Characters a rich Text strips, expands or breaks lines at, which the line-by-line drawing does not.
UNUSUAL = frozenset([*map(chr, range(32)), "\x7f", "\x85", "\u2028", "\u2029"]) - {"\n"}


class FixedGrid:
    """`rows` (cells as text, a line break where a cell goes on) under `headers`, each column
    `widths` cells wide and aligned left or right (`left`), each row in its `styles` entry (None:
    unstyled). `fallback` draws the same table with rich, for what this drawing does not cover."""

    def __init__(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[str]],
        widths: Sequence[int],
        left: Sequence[bool],
        styles: Sequence[str | None],
        fallback: Callable[[], Table],
    ) -> None:
        self.headers, self.rows, self.widths, self.left = list(headers), rows, list(widths), list(left)
        self.styles, self.fallback = styles, fallback

    @property
    def width(self) -> int:
        """Edges, one space of padding right of every column but the last, one between columns."""
        return sum(self.widths) + 2 * len(self.widths)

    def plain(self) -> bool:
        """The case drawn line by line: plain headers, no character a rich Text would change, no
        empty cell, no line wider than its column."""
        if not self.widths:
            return False
        for header in self.headers:
            rendered = render_markup(header)
            if rendered.plain != header or rendered.spans or ":" in header or UNUSUAL.intersection(header):
                return False
        for row in [self.headers, *self.rows]:
            for cell, width in zip(row, self.widths, strict=True):
                if not cell or UNUSUAL.intersection(cell) or any(cell_len(line) > width for line in cell.split("\n")):
                    return False
        return True

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.width > options.max_width or not self.plain():
            yield self.fallback()
            return
        blank, newline = Style(), Segment.line()
        width = self.width
        yield Segment(" " * width, blank)
        yield newline
        bold = console.get_style("bold")
        header_lines = [header.split("\n") for header in self.headers]
        height = max(len(lines) for lines in header_lines)
        for line in range(height):  # headers sit on the bottom line
            cells = [
                lines[line - height + len(lines)] if line >= height - len(lines) else None for lines in header_lines
            ]
            yield from self._line(cells, bold)
        yield Segment(" " + "─" * (width - 2) + " ", blank)
        yield newline
        parsed: dict[str, Style] = {}
        for row, name in zip(self.rows, self.styles, strict=True):
            style = None if name is None else parsed.setdefault(name, console.get_style(name))
            split = [cell.split("\n") for cell in row]
            for line in range(max(len(lines) for lines in split)):
                yield from self._line([lines[line] if line < len(lines) else None for lines in split], style)
        yield Segment(" " * width, blank)
        yield newline

    def _line(self, cells: Sequence[str | None], style: Style | None) -> RenderResult:
        """One line of text: each cell padded to its column, the padding in the row's style (None:
        a cell with fewer lines than its row, blank to the next column as rich fills it). An
        unstyled line is one segment: rich would print its pieces without any control code."""
        if style is None:
            padded = [
                " " * width
                if text is None
                else text + " " * (width - cell_len(text))
                if left
                else " " * (width - cell_len(text)) + text
                for text, width, left in zip(cells, self.widths, self.left, strict=True)
            ]
            yield Segment(f" {'  '.join(padded)} \n")
            return
        blank = Style()
        yield Segment(" ", blank)
        last = len(cells) - 1
        for i, (text, width, left) in enumerate(zip(cells, self.widths, self.left, strict=True)):
            if text is None:
                yield Segment(" " * (width + (i < last)), style)
            else:
                fill = " " * (width - cell_len(text))
                yield Segment(text + fill if left else fill + text, style)
                if i < last:
                    yield Segment(" ", style)
            yield Segment(" ", blank)
        yield Segment.line()
