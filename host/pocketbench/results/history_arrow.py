"""History as one Arrow table, exported to csv or parquet without going through pandas.

A year of nightly runs exported whole is hundreds of thousands of rows: converted to pandas and
back, its text columns become millions of Python objects (over a gigabyte) and the conversions
dominate; a filtered export holds few rows, and importing pandas is most of its time. Here the
scan's Arrow table is migrated, shaped and written as it is. It holds the same rows and values as
`load_history`, and the csv is byte for byte what `export` writes from that frame
(tests/test_history_arrow.py); anything this writer does not know how pandas would print is
NotColumnar, and the caller exports through pandas instead.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pocketbench.errors import PocketbenchError
from pocketbench.results.arrow_values import string_array
from pocketbench.results.columns import INTEGER_COLUMNS
from pocketbench.results.history import RUN_COLUMNS, SAMPLE_COLUMNS, check_format, plan_history, wanted_columns
from pocketbench.results.scan import RUN_INDEX, Filters, scan_table

if TYPE_CHECKING:
    import pandas as pd


class NotColumnar(PocketbenchError):
    """History this module cannot write as pandas would (an unusual column type): export the frame."""


@dataclass(frozen=True)
class HistoryTable:
    """A history as Arrow: its rows, what was skipped reading it, and the columns pandas reads as
    nullable integers (they print as integers even where a row lacks them)."""

    table: pa.Table
    skipped: list[str]
    nullable_integers: frozenset[str]
    pandas_columns: dict[str, dict[str, Any]]  # the files' own pandas metadata of each column


def load_history_table(
    root: Path,
    models: list[str] | None = None,
    variants: list[str] | None = None,
    devices: list[str] | None = None,
    since: datetime | None = None,
    runs: Sequence[Path] | None = None,
    *,
    columns: Sequence[str] | None = None,
    samples: bool = True,
) -> HistoryTable:
    """load_history's rows, columns and values as one Arrow table (runs read cell by cell, which
    a kill leaves, go through the store's reader and join the table)."""
    plan = plan_history(root, Filters(models, variants, devices, since), runs, columns, (), samples)
    scanned, failed = scan_table(plan.sources, plan.row_columns, plan.filters, () if samples else SAMPLE_COLUMNS)
    cells = plan.cell_runs(failed)
    seen = [*(s.schema.names for s in plan.sources)]
    seen += [scanned.column_names] if scanned is not None else []
    seen += [list(frame.columns) for frame in cells]
    present = [c for names in seen[len(plan.sources) :] for c in names if c != RUN_INDEX] + RUN_COLUMNS
    if scanned is None and not cells:
        from pocketbench.results.columns import stored_columns

        present += stored_columns()
    wanted = wanted_columns(present, plan.asked, samples, seen, (), columns)
    parts = [] if scanned is None else [scanned.select([c for c in [*wanted, RUN_INDEX] if c in scanned.column_names])]
    try:
        for frame in cells:
            kept = frame[[c for c in [*wanted, RUN_INDEX] if c in frame.columns]]
            parts.append(pa.Table.from_pandas(kept, preserve_index=False))
        table = _joined(parts)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise NotColumnar(f"the history's columns do not join as Arrow: {exc}") from exc
    table = _with_run_columns(table, plan.facts)
    metadata = _pandas_columns([s.schema for s in plan.sources])
    integers = {c for c, entry in metadata.items() if _nullable_integer(entry.get("numpy_type"))}
    return HistoryTable(_shaped(table, wanted), plan.skipped, frozenset({*INTEGER_COLUMNS, *integers}), metadata)


def as_frame(table: pa.Table) -> pd.DataFrame:
    """The table as `load_history` gives it: counts as nullable integers."""
    import pandas as pd

    integers = {name: pd.Int64Dtype() for name in table.column_names if name in INTEGER_COLUMNS}
    frame = table.to_pandas()
    for name, dtype in integers.items():
        frame[name] = frame[name].astype(dtype)
    return frame


def _joined(parts: list[pa.Table]) -> pa.Table | None:
    """The parts as one table in run order (a stable sort: rows of a run keep their order)."""
    import pyarrow.compute as pc

    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    table = pa.concat_tables(parts, promote_options="permissive")
    return table.take(pc.sort_indices(table, [(RUN_INDEX, "ascending")]))


def _with_run_columns(table: pa.Table | None, facts: list[list[Any]]) -> pa.Table | None:
    """RUN_COLUMNS from each row's run manifest, and RUN_INDEX dropped."""
    import pyarrow.compute as pc

    if table is None:
        return None
    runs = table[RUN_INDEX]
    table = table.drop_columns([RUN_INDEX])
    for position, column in enumerate(RUN_COLUMNS):
        values = [fact[position] for fact in facts] or [None]
        if not all(v is None or isinstance(v, str) for v in values):
            raise NotColumnar(f"a manifest's {column} is not text")
        table = table.append_column(column, pc.take(string_array(values), runs))
    return table


def _shaped(table: pa.Table | None, wanted: list[str]) -> pa.Table:
    """The wanted columns in order, those missing empty; counts as 64-bit integers."""
    rows = 0 if table is None else table.num_rows
    arrays = []
    for column in wanted:
        present = table is not None and column in table.column_names
        values = table[column] if table is not None and present else pa.chunked_array([pa.nulls(rows)])
        if column in INTEGER_COLUMNS and values.type != pa.int64():
            values = values.cast(pa.int64())
        arrays.append(values)
    return pa.table(arrays, names=wanted) if wanted else pa.table({})


def _pandas_columns(schemas: list[pa.Schema]) -> dict[str, dict[str, Any]]:
    """Each column's entry in the files' pandas metadata: the first naming a pandas extension
    dtype (a nullable integer or boolean), else the first."""
    found: dict[str, dict[str, Any]] = {}
    for schema in schemas:
        raw = (schema.metadata or {}).get(b"pandas")
        if raw is None:
            continue
        try:
            entries = json.loads(raw).get("columns", [])
        except (ValueError, AttributeError):
            continue
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(name := entry.get("name"), str):
                continue
            if name not in found or (_extension(entry) and not _extension(found[name])):
                found[name] = entry
    return found


def _extension(entry: dict[str, Any]) -> bool:
    """Whether a pandas metadata entry names an extension dtype (Int64, boolean, …: not numpy's)."""
    kind = entry.get("numpy_type")
    return isinstance(kind, str) and (kind[:1].isupper() or kind == "boolean")


def _nullable_integer(numpy_type: object) -> bool:
    return isinstance(numpy_type, str) and numpy_type in ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16")


def export_table(history: HistoryTable, fmt: str, out: Path | None) -> bytes | None:
    """Write the history as csv or parquet to `out`; without `out`, return the bytes (json:
    NotColumnar, pandas writes it)."""
    check_format(fmt)
    if fmt == "csv":
        data = csv_bytes(history)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        table = history.table.replace_schema_metadata({b"pandas": _pandas_metadata(history)})
        if out is not None:
            pq.write_table(table, out)
            return None
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        data = sink.getvalue().to_pybytes()
    else:
        raise NotColumnar(f"{fmt} is written from the pandas frame")
    if out is None:
        return data
    out.write_bytes(data)
    return None


def _pandas_metadata(history: HistoryTable) -> bytes:
    """The pandas metadata a frame of these columns carries: pandas reads the file back with the
    dtypes `load_history` gives (counts as nullable integers)."""
    from importlib.metadata import version

    columns = []
    for field in history.table.schema:
        own = history.pandas_columns.get(field.name, {})
        if field.name in history.nullable_integers:
            kinds = ("int64", "Int64")
        elif _extension(own):
            kinds = (own.get("pandas_type"), own["numpy_type"])
        else:
            kinds = _pandas_kinds(field.type)
        columns.append(
            {
                "name": field.name,
                "field_name": field.name,
                "pandas_type": kinds[0],
                "numpy_type": kinds[1],
                "metadata": None,
            }
        )
    metadata = {
        "index_columns": [],
        "column_indexes": [],
        "columns": columns,
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": version("pandas"),
    }
    return json.dumps(metadata).encode()


def _pandas_kinds(kind: pa.DataType) -> tuple[str, str]:
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "unicode", "object"
    if pa.types.is_null(kind):
        return "empty", "object"
    if pa.types.is_boolean(kind):
        return "bool", "bool"
    if pa.types.is_integer(kind):
        return str(kind), str(kind)  # int64, uint8, …: numpy's names
    if pa.types.is_floating(kind):
        name = f"float{kind.bit_width}"
        return name, name
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return f"list[{_pandas_kinds(kind.value_type)[0]}]", "object"
    return "object", "object"


def csv_bytes(history: HistoryTable) -> bytes:
    """The table as `export` writes the frame `load_history` gives: what pandas prints for each
    value (floats as Python's shortest repr, counts as integers, missing values empty), lists
    as JSON text."""
    table = history.table
    texts = []
    for name in table.column_names:
        column = table[name]
        shown = _printer(column.type, name in history.nullable_integers or column.null_count == 0)
        texts.append([shown(v) for v in column.to_pylist()])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.column_names)
    writer.writerows(zip(*texts, strict=True))
    return buffer.getvalue().encode()


def _printer(kind: pa.DataType, integers: bool) -> Callable[[Any], str]:
    """How pandas' csv writer prints a value of this type (an integer column with missing values
    is float64 to pandas, unless it is a nullable integer)."""
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _text
    if pa.types.is_null(kind):
        return _empty
    if pa.types.is_boolean(kind) or (pa.types.is_integer(kind) and integers):
        return _plain
    if pa.types.is_integer(kind):
        return _integer_as_float
    if pa.types.is_float64(kind):
        return _float
    if (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and (
        pa.types.is_floating(kind.value_type) or pa.types.is_integer(kind.value_type)
    ):
        return _json_list
    raise NotColumnar(f"a {kind} column is written from the pandas frame")


def _text(value: str | None) -> str:
    return "" if value is None else value


def _empty(value: object) -> str:
    return ""


def _plain(value: object) -> str:
    return "" if value is None else str(value)


def _integer_as_float(value: int | None) -> str:
    return "" if value is None else repr(float(value))


def _float(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else repr(value)


def _json_list(value: list[Any] | None) -> str:
    return "" if value is None else json.dumps([float(v) for v in value])
