"""A history's Arrow table as csv: byte for byte the text `export` writes from load_history's frame.

pandas prints each value its own way (floats as Python's shortest repr, counts as integers,
missing values empty) and quotes through the csv module. Handed the rows, the csv module scans
every character of every field, and a history's text columns (JSON, notes) are most of its
bytes: here each column is printed at once, and text is quoted by Arrow where it holds a
character that makes the csv module quote, exactly as that module quotes it.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import numpy as np
import pyarrow as pa

from pocketbench.errors import PocketbenchError
from pocketbench.results.arrow_values import int64_values
from pocketbench.results.scan import is_text


class NotColumnar(PocketbenchError):
    """History this module cannot write as pandas would (an unusual column type): export the frame."""


def table_csv(table: pa.Table, integers: frozenset[str]) -> bytes:
    """The table as pandas writes it to csv; `integers`: the columns pandas holds as nullable
    integers (they print as integers even where a row lacks them)."""
    if table.num_columns < 2:  # a lone empty field is quoted: the csv module writes such rows
        return _through_csv_module(table, integers)
    fields = [_fields(table[name], name in integers) for name in table.column_names]
    lines = [_csv_line(table.column_names), *map(",".join, zip(*fields, strict=True))]
    return ("\n".join(lines) + "\n").encode()


def _through_csv_module(table: pa.Table, integers: frozenset[str]) -> bytes:
    """The table written row by row by the csv module, each value as pandas prints it."""
    columns = []
    for name in table.column_names:
        column = table[name]
        values = column.to_pylist()
        shown = _printer(column, name in integers or column.null_count == 0)
        columns.append(values if shown is None else [shown(v) for v in values])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.column_names)
    writer.writerows(zip(*columns, strict=True))
    return buffer.getvalue().encode()


def _fields(column: pa.ChunkedArray, integers: bool) -> list[str]:
    """Each value of the column as its csv field."""
    kind = column.type
    if pa.types.is_null(kind):
        return [""] * len(column)
    if is_text(kind):
        return _text_fields(column)
    shown = _printer(column, integers or column.null_count == 0)
    if shown is _json_list:
        return [_quoted(shown(v)) for v in column.to_pylist()]
    return _each_distinct(column, str if shown is None else shown)  # numbers and flags: never quoted


def _each_distinct(column: pa.ChunkedArray, show: Callable[[Any], str]) -> list[str]:
    """`show` of each value (missing: empty), called once per distinct value: a history repeats
    most of its figures (a variant's size and accuracy night after night), and printing a float
    as its shortest repr is most of a number column's time. Arrow tells 0.0 from -0.0."""
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(column.combine_chunks(), null_encoding="encode")  # missing: a value too
    texts = np.array(["" if v is None else show(v) for v in encoded.dictionary.to_pylist()], dtype=object)
    result: list[str] = texts[int64_values(encoded.indices)].tolist()
    return result


def _text_fields(column: pa.ChunkedArray) -> list[str]:
    """Text as csv fields: quoted, its quotes doubled, where it holds a character the csv module
    quotes for (none of Python's objects is made for a value that needs no quoting)."""
    import pyarrow.compute as pc

    quoted = pc.match_substring_regex(column, _quoted_pattern())
    if pc.any(quoted).as_py():
        doubled = pc.replace_substring(column, '"', '""')
        column = pc.if_else(quoted, pc.replace_substring_regex(doubled, r"(?s)^(.*)$", r'"\1"'), column)
    values = column.to_pylist()
    return values if column.null_count == 0 else ["" if v is None else v for v in values]


def _quoted(value: str) -> str:
    """A field as the csv module writes it: quoted, its quotes doubled, where it must be."""
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in _quoted_for()) else value


@cache
def _quoted_for() -> str:
    """The characters that make the csv module quote a field (QUOTE_MINIMAL: the delimiter, the
    quote and the line ends it knows, which differ between Python versions)."""
    return "".join(c for c in ',"\r\n' if _csv_field(f"a{c}b") != f"a{c}b")


@cache
def _quoted_pattern() -> str:
    """A regular expression (RE2) that finds text holding one of _quoted_for's characters."""
    return "[" + "".join({"\n": r"\n", "\r": r"\r"}.get(c, c) for c in _quoted_for()) + "]"


def _csv_field(value: str) -> str:
    """One field as the csv module writes it."""
    return _csv_line([value, ""])[:-1]


def _csv_line(values: Sequence[str]) -> str:
    """One row as the csv module writes it, without its line end."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()[:-1]


def _printer(column: pa.ChunkedArray, integers: bool) -> Callable[[Any], str] | None:
    """How pandas' csv writer prints a value of this column (None: as the csv module prints it,
    None empty, numbers and flags by str(); an integer column with missing values is float64 to
    pandas, unless it is a nullable integer)."""
    import pyarrow.compute as pc

    kind = column.type
    if is_text(kind) or pa.types.is_null(kind):
        return None
    if pa.types.is_boolean(kind) or (pa.types.is_integer(kind) and integers):
        return None
    if pa.types.is_integer(kind):
        return _integer_as_float
    if pa.types.is_float64(kind):
        return _float if pc.any(pc.is_nan(column)).as_py() else None  # NaN: empty, as a missing value
    if (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and (
        pa.types.is_floating(kind.value_type) or pa.types.is_integer(kind.value_type)
    ):
        return _json_list
    raise NotColumnar(f"a {kind} column is written from the pandas frame")


def _integer_as_float(value: int | None) -> str:
    return "" if value is None else repr(float(value))


def _float(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else repr(value)


def _json_list(value: list[Any] | None) -> str:
    return "" if value is None else json.dumps([float(v) for v in value])
