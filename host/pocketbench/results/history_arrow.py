"""History as one Arrow table, exported to csv or parquet without going through pandas.

A year of nightly runs exported whole is hundreds of thousands of rows: converted to pandas and
back, its text columns become millions of Python objects (over a gigabyte) and the conversions
dominate; a filtered export holds few rows, and importing pandas is most of its time. Here the
scan's Arrow table is migrated, shaped and written as it is. It holds the same rows and values as
`load_history`, and the csv is byte for byte what `export` writes from that frame
(history_csv.py, tests/test_history_arrow.py); anything this writer does not know how pandas
would print is NotColumnar, and the caller exports through pandas instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pocketbench.results.arrow_values import string_array
from pocketbench.results.columns import INTEGER_COLUMNS
from pocketbench.results.history import RUN_COLUMNS, SAMPLE_COLUMNS, check_format, plan_history, wanted_columns
from pocketbench.results.history_csv import NotColumnar
from pocketbench.results.migrations import upgrade_table
from pocketbench.results.scan import (
    RUN_INDEX,
    Filters,
    Source,
    file_reader,
    in_run_order,
    is_text,
    read_each,
    read_names,
    scan_table,
)

if TYPE_CHECKING:
    import pandas as pd


NO_FILTERS = Filters()


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
    filters: Filters = NO_FILTERS,
    runs: Sequence[Path] | None = None,
    *,
    columns: Sequence[str] | None = None,
    samples: bool = True,
) -> HistoryTable:
    """load_history's rows, columns and values as one Arrow table, its model / variant / device /
    since filters as `filters` (runs read cell by cell, which a kill leaves, go through the
    store's reader and join the table)."""
    plan = plan_history(root, filters, runs, columns, (), samples)
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
    scanned_names = set() if scanned is None else set(scanned.column_names)
    parts = [] if scanned is None else [scanned.select([c for c in [*wanted, RUN_INDEX] if c in scanned_names])]
    try:
        for frame in cells:
            kept = frame[[c for c in [*wanted, RUN_INDEX] if c in frame.columns]]
            parts.append(pa.Table.from_pandas(kept, preserve_index=False))
        table = in_run_order(parts)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise NotColumnar(f"the history's columns do not join as Arrow: {exc}") from exc
    table = _with_run_columns(table, _fact_arrays(plan.facts))
    metadata = _pandas_columns([s.schema for s in plan.sources])
    return HistoryTable(_shaped(table, wanted), plan.skipped, _integer_columns(metadata), metadata)


def as_frame(table: pa.Table) -> pd.DataFrame:
    """The table as `load_history` gives it: counts as nullable integers."""
    import pandas as pd

    integers = {name: pd.Int64Dtype() for name in table.column_names if name in INTEGER_COLUMNS}
    frame = table.to_pandas()
    for name, dtype in integers.items():
        frame[name] = frame[name].astype(dtype)
    return frame


def _fact_arrays(facts: list[list[Any]]) -> list[pa.Array]:
    """Each of RUN_COLUMNS over the runs, as text (NotColumnar where a manifest holds other values)."""
    arrays = []
    for position, column in enumerate(RUN_COLUMNS):
        values = [fact[position] for fact in facts] or [None]
        if not all(v is None or isinstance(v, str) for v in values):
            raise NotColumnar(f"a manifest's {column} is not text")
        arrays.append(string_array(values))
    return arrays


def _with_run_columns(table: pa.Table | None, facts: list[pa.Array]) -> pa.Table | None:
    """RUN_COLUMNS from each row's run manifest (_fact_arrays), and RUN_INDEX dropped."""
    import pyarrow.compute as pc

    if table is None:
        return None
    runs = table[RUN_INDEX]
    table = table.drop_columns([RUN_INDEX])
    for column, values in zip(RUN_COLUMNS, facts, strict=True):
        table = table.append_column(column, pc.take(values, runs))
    return table


def _shaped(table: pa.Table | None, wanted: list[str]) -> pa.Table:
    """The wanted columns in order, those missing empty; counts as 64-bit integers."""
    rows = 0 if table is None else table.num_rows
    arrays, names = [], set() if table is None else set(table.column_names)
    for column in wanted:
        present = column in names
        values = table[column] if table is not None and present else pa.chunked_array([pa.nulls(rows)])
        if column in INTEGER_COLUMNS and values.type != pa.int64():
            values = values.cast(pa.int64())
        arrays.append(values)
    return pa.table(arrays, names=wanted) if wanted else pa.table({})


def _pandas_columns(schemas: list[pa.Schema]) -> dict[str, dict[str, Any]]:
    """Each column's entry in the files' pandas metadata: the first naming a pandas extension
    dtype (a nullable integer or boolean), else the first."""
    found: dict[str, dict[str, Any]] = {}
    distinct = {id(schema): schema for schema in schemas}.values()  # runs share a few schema objects
    for raw in dict.fromkeys((schema.metadata or {}).get(b"pandas") for schema in distinct):
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


def _integer_columns(files: dict[str, dict[str, Any]]) -> frozenset[str]:
    """The columns pandas reads as nullable integers: the counts, and those the files say are."""
    return frozenset(
        {*INTEGER_COLUMNS, *(c for c, entry in files.items() if _nullable_integer(entry.get("numpy_type")))}
    )


def _nullable_integer(numpy_type: object) -> bool:
    return isinstance(numpy_type, str) and numpy_type in ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16")


def write_history_parquet(
    root: Path,
    out: Path,
    filters: Filters = NO_FILTERS,
    *,
    columns: Sequence[str] | None = None,
    samples: bool = True,
) -> tuple[int, list[str]]:
    """load_history_table's rows written to `out` as parquet a run at a time (a year of runs is
    never in memory at once); the rows written and the files skipped. A results file that fails
    past its footer is NotColumnar and nothing is written: its run is read from its cells, which
    load_history_table does."""
    import pyarrow.parquet as pq

    plan = plan_history(root, filters, None, columns, (), samples)
    leave_out = () if samples else SAMPLE_COLUMNS
    # Runs share a few schemas (one object each: hashing a wide schema costs more than comparing
    # ids): each migrated once.
    shapes: dict[tuple[int, int], pa.Table] = {}
    for source in plan.sources:
        if (id(source.schema), source.version) not in shapes:
            shapes[id(source.schema), source.version] = _empty_read(source, plan.row_columns, plan.filters, leave_out)
    empty = list(shapes.values())
    cells = plan.cell_runs([])
    seen = [
        *(s.schema.names for s in plan.sources),
        *(t.column_names for t in empty),
        *(list(f.columns) for f in cells),
    ]
    present = [c for names in seen[len(plan.sources) :] for c in names if c != RUN_INDEX] + RUN_COLUMNS
    wanted = wanted_columns(present, plan.asked, samples, seen, (), columns)
    try:
        by_run = {
            int(frame[RUN_INDEX].iloc[0]): pa.Table.from_pandas(
                frame[[c for c in [*wanted, RUN_INDEX] if c in frame.columns]], preserve_index=False
            )
            for frame in cells
            if len(frame)
        }
        schema = _schema(wanted, [*(t.schema for t in empty), *(t.schema for t in by_run.values())])
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise NotColumnar(f"the history's columns do not join as Arrow: {exc}") from exc
    files = _pandas_columns([s.schema for s in plan.sources])
    schema = schema.with_metadata({b"pandas": _pandas_metadata(schema, _integer_columns(files), files)})
    facts = _fact_arrays(plan.facts)
    temporary, rows, written = out.with_name(f".{out.name}.{os.getpid()}.tmp"), 0, 0
    try:
        with pq.ParquetWriter(temporary, schema) as writer:
            pending: list[pa.Table] = []
            for part in _parts_in_run_order(plan.sources, by_run, plan.row_columns, plan.filters, leave_out):
                pending.append(part)
                rows += part.num_rows
                if rows - written >= ROW_GROUP:
                    writer.write_table(_joined(pending, facts, schema))
                    pending, written = [], rows
            if pending:
                writer.write_table(_joined(pending, facts, schema))
        os.replace(temporary, out)
    finally:
        temporary.unlink(missing_ok=True)
    return rows, plan.skipped


ROW_GROUP = 65_536  # rows per row group written: runs gathered, a few megabytes at a time


def _empty_read(source: Source, columns: list[str] | None, filters: Filters, leave_out: Sequence[str]) -> pa.Table:
    """What reading `source` gives, without its rows: its columns and their types once migrated."""
    from pocketbench.results.arrow_values import int64_array

    names = read_names(source, columns, filters, leave_out)
    # From no batch: Schema.empty_table imports pandas.
    table = pa.Table.from_batches([], schema=source.schema).select(names).replace_schema_metadata(None)
    return upgrade_table(table.append_column(RUN_INDEX, int64_array([])), source.version)


def _parts_in_run_order(
    sources: list[Source],
    by_run: dict[int, pa.Table],
    columns: list[str] | None,
    filters: Filters,
    leave_out: Sequence[str],
) -> Iterator[pa.Table]:
    """Each run's rows that pass, migrated, in run order (runs read cell by cell from `by_run`): files
    are read a few ahead; one that fails past its footer is NotColumnar."""

    read_file = file_reader(columns, filters, leave_out)

    def migrated(source: Source) -> pa.Table:
        return upgrade_table(read_file(source), source.version)

    with closing(read_each(sources, migrated)) as files:  # a failure stops the reads ahead
        following = next(files, None)
        for run in sorted({*(s.run for s in sources), *by_run}):
            if run in by_run:
                part = by_run[run]
            else:
                assert following is not None and following[0].run == run
                source, read = following
                try:
                    part = read.result()
                except (OSError, ValueError, TypeError, pa.ArrowException) as exc:
                    raise NotColumnar(
                        f"{source.path} cannot be scanned ({exc}): its run is read from its cells"
                    ) from exc
                following = next(files, None)
            if part.num_rows:
                yield part


def _joined(parts: list[pa.Table], facts: list[pa.Array], schema: pa.Schema) -> pa.Table:
    """Runs' rows as one table of `schema`, with their run columns."""
    try:
        table = pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]
        return _conformed(_with_run_columns(table, facts), schema)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise NotColumnar(f"the history's columns do not join as Arrow: {exc}") from exc


def _schema(wanted: list[str], parts: list[pa.Schema]) -> pa.Schema:
    """The columns of the history, with the types its parts join to (as load_history_table's)."""
    joined = pa.unify_schemas([p.remove_metadata() for p in parts], promote_options="permissive") if parts else None
    fields = []
    for column in wanted:
        if column in RUN_COLUMNS:
            kind = pa.string()
        elif column in INTEGER_COLUMNS:
            kind = pa.int64()
        else:
            kind = joined.field(column).type if joined is not None and column in joined.names else pa.null()
        fields.append(pa.field(column, kind))
    return pa.schema(fields)


def _conformed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """The table with exactly `schema`'s columns and types (those missing empty)."""
    arrays, names = [], set(table.column_names)
    for field in schema:
        if field.name in names:
            values = table[field.name]
            arrays.append(values if values.type == field.type else values.cast(field.type))
        else:
            arrays.append(pa.chunked_array([pa.nulls(table.num_rows, field.type)]))
    return pa.Table.from_arrays(arrays, schema=schema)


def export_table(history: HistoryTable, fmt: str, out: Path | None) -> bytes | None:
    """Write the history as csv or parquet to `out`; without `out`, return the bytes (json:
    NotColumnar, pandas writes it)."""
    check_format(fmt)
    if fmt == "csv":
        data = csv_bytes(history)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        metadata = _pandas_metadata(history.table.schema, history.nullable_integers, history.pandas_columns)
        table = history.table.replace_schema_metadata({b"pandas": metadata})
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


def _pandas_metadata(schema: pa.Schema, integers: frozenset[str], files: dict[str, dict[str, Any]]) -> bytes:
    """The pandas metadata a frame of these columns carries (`files`: the results files' own): pandas
    reads the file back with the dtypes `load_history` gives (counts as nullable integers)."""
    from importlib.metadata import version

    columns = []
    for field in schema:
        own = files.get(field.name, {})
        if field.name in integers:
            kinds = ("int64", "Int64")
        elif _extension(own):
            kinds = (str(own.get("pandas_type")), str(own["numpy_type"]))
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
    if is_text(kind):
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
    """The table as `export` writes the frame `load_history` gives (history_csv.py)."""
    from pocketbench.results.history_csv import table_csv

    return table_csv(history.table, history.nullable_integers)
