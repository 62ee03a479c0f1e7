"""Many finished runs' results files read as one table through pyarrow's dataset API.

A year of nightly runs is hundreds of files of hundreds of rows, each row carrying its raw
samples. Read one run at a time into pandas, the per-file conversion dominates; here each
file's footer is read once (its schema and schema version), the files of one schema version are
scanned together with only the columns asked for, the model / variant / device / start filters
are applied while scanning (row groups that cannot match are never decoded), and each version's
rows are migrated in one step. A file that turns out damaged past its footer is handed back, so
its run can be read cell by cell instead.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby, islice
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pyarrow as pa

from pocketbench.results.files import UnreadableFile, schema_problem, why
from pocketbench.results.migrations import check_version, stored_names, upgrade, upgrade_table, version_of

if TYPE_CHECKING:  # history exports never convert to pandas (scan_table): it is not imported for them
    import pandas as pd

RUN_INDEX = "_run"  # the position of each row's run in the history, for ordering and run columns
T = TypeVar("T")  # what a reader gives: a migrated part (a pandas frame or an Arrow table), a file read


@dataclass(frozen=True)
class Source:
    """One readable results file: its run's position, schema and schema version."""

    path: Path
    run: int
    schema: pa.Schema
    version: int
    metadata: pa.parquet.FileMetaData | None = None  # the footer, read once
    empty: frozenset[str] = frozenset()  # columns without a value (Arrow's null type): made, not read


@dataclass(frozen=True)
class Filters:
    """Rows wanted: any of these models, variants and devices (None: all), started since a time."""

    models: list[str] | None = None
    variants: list[str] | None = None
    devices: list[str] | None = None
    since: datetime | None = None

    def keep(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of `frame` that pass (the exact test; the scan's pushdown only prunes)."""
        import pandas as pd

        for column, wanted in (("model", self.models), ("variant", self.variants), ("device", self.devices)):
            if wanted:
                frame = frame[frame[column].isin(wanted)]
        if self.since is not None:
            started = pd.to_datetime(frame["started_at"], utc=True, format="ISO8601")
            frame = frame[started >= pd.Timestamp(self.since)]
        return frame

    def keep_table(self, table: pa.Table) -> pa.Table:
        """keep on an Arrow table: the same rows (a start time without an offset is UTC)."""
        import pyarrow.compute as pc

        from pocketbench.results.arrow_values import bool_array, string_array

        for column, wanted in (("model", self.models), ("variant", self.variants), ("device", self.devices)):
            if wanted:
                if column not in table.column_names or not is_text(table[column].type):
                    return table.slice(0, 0)  # pandas' isin finds no text there either
                values = string_array(wanted).cast(table[column].type)
                table = table.filter(pc.is_in(table[column], value_set=values))
        if self.since is not None:
            if "started_at" not in table.column_names or not is_text(table["started_at"].type):
                return table.slice(0, 0)
            since = self.since
            table = table.filter(bool_array([_started(t) >= since for t in table["started_at"].to_pylist()]))
        return table

    def columns(self) -> list[str]:
        """Columns the filters read."""
        named = [c for c, w in (("model", self.models), ("variant", self.variants), ("device", self.devices)) if w]
        return named + (["started_at"] if self.since is not None else [])


def _started(text: str | None) -> datetime:
    """A start time as pandas' ISO 8601 parser reads it (naive: UTC); none: before any."""
    if text is None:
        return datetime.min.replace(tzinfo=UTC)
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_text(kind: pa.DataType) -> bool:
    """Whether an Arrow type holds text (either width)."""
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


@dataclass(frozen=True)
class _Shape:
    """What every results file with one footer schema shares: its Arrow schema, why it is not a
    results file (None: it is), and its columns that hold no value (Arrow's null type)."""

    schema: pa.Schema
    problem: str | None
    empty: frozenset[str]


# Footer schemas seen, by their key-value metadata: a year of runs holds a few, and converting and
# hashing a wide schema costs more than reading a small file's footer.
_SHAPES: dict[tuple[tuple[bytes, bytes], ...], list[tuple[pa.parquet.ParquetSchema, _Shape]]] = {}
_SHAPES_KEPT = 64


def _shape(meta: pa.parquet.FileMetaData) -> _Shape:
    """The shape of a file with this footer, shared with every file whose footer schema is alike."""
    stored = meta.schema
    alike = _SHAPES.setdefault(tuple(sorted((meta.metadata or {}).items())), [])
    for known, shape in alike:
        if known.equals(stored):
            return shape
    schema = stored.to_arrow_schema()
    empty = frozenset(f.name for f in schema if pa.types.is_null(f.type))
    shape = _Shape(schema, schema_problem(schema), empty)
    if sum(len(v) for v in _SHAPES.values()) < _SHAPES_KEPT:
        alike.append((stored, shape))
    return shape


def probe(path: Path, run: int) -> Source:
    """A results file's schema and version from its footer alone; UnreadableFile when it cannot be
    read, PocketbenchError when it is from a newer pocketbench."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(path)
        shape = _shape(meta)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise UnreadableFile(path, f"cannot be read ({why(exc)})") from exc
    if shape.problem:
        raise UnreadableFile(path, shape.problem)
    schema = shape.schema
    values: set[int] = set()
    if "schema_version" in schema.names and meta.num_rows:
        values = _stored_versions(path, meta, schema.get_field_index("schema_version"))
    version = version_of(schema.names, meta.num_rows, values)
    check_version(version, str(path))
    return Source(path, run, schema, version, meta, shape.empty)


def _stored_versions(path: Path, meta: pa.parquet.FileMetaData, index: int) -> set[int]:
    """The file's `schema_version` values: from the footer's statistics, else from the column."""
    values: set[int] = set()
    for group in range(meta.num_row_groups):
        stats = meta.row_group(group).column(index).statistics
        if stats is None or not stats.has_min_max:
            if stats is not None and stats.null_count == meta.row_group(group).num_rows:
                continue  # every value missing: nothing to add
            import pyarrow.parquet as pq

            column = pq.ParquetFile(path, metadata=meta).read(columns=["schema_version"]).column(0).drop_null()
            return {int(v) for v in column.unique().to_pylist()}
        values |= {int(stats.min), int(stats.max)}
    return values


def scan(
    sources: list[Source], columns: list[str] | None, filters: Filters, leave_out: Sequence[str] = ()
) -> tuple[pd.DataFrame, list[Source]]:
    """The rows of `sources` that pass `filters`, with `columns` (current names, those present;
    None: every column but those in `leave_out`) and RUN_INDEX, in source order; and the sources
    that failed while scanning."""
    import pandas as pd

    def migrated(table: pa.Table, version: int) -> pd.DataFrame:
        return upgrade(table.to_pandas(split_blocks=True, self_destruct=True), version)

    parts, failed = _scan_versions(sources, columns, filters, leave_out, migrated)
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=[*(columns or []), RUN_INDEX]), failed
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    frame = filters.keep(frame)
    return frame.sort_values(RUN_INDEX, kind="stable").reset_index(drop=True), failed


def scan_table(
    sources: list[Source], columns: list[str] | None, filters: Filters, leave_out: Sequence[str] = ()
) -> tuple[pa.Table | None, list[Source]]:
    """scan as one Arrow table (None: no row), migrated in Arrow: the same rows and values. Each
    file is read on its own (pyarrow's dataset module imports pandas) and filtered as it is read."""

    by_version: dict[int, list[pa.Table]] = {}
    failed = []
    for source, read in read_each(sources, file_reader(columns, filters, leave_out)):
        try:
            table = read.result()
        except (OSError, ValueError, TypeError, pa.ArrowException):
            failed.append(source)
            continue
        if table.num_rows:
            by_version.setdefault(source.version, []).append(table)
    parts = []
    for version, tables in sorted(by_version.items()):
        joined = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
        parts.append(upgrade_table(joined, version))
    return in_run_order(parts), failed


READ_AHEAD = 32  # files read ahead of the caller, overlapping a row group's write: a month's rows, never a year's


def read_each(
    sources: Sequence[Source], read: Callable[[Source], T]
) -> Generator[tuple[Source, Future[T]], None, None]:
    """Each source, in order, with what `read` gives for it (its result() raises what reading
    raised). pyarrow decodes a file without holding the GIL: files are read on as many threads as
    this process has cores, a few ahead of the caller; on one core, each as it is asked for."""
    workers = min(len(sources), _cores())
    if workers < 2:
        for source in sources:
            yield source, _done(read, source)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="history-read")
    try:
        waiting = iter(sources)
        ahead = deque((s, pool.submit(read, s)) for s in islice(waiting, READ_AHEAD))
        while ahead:
            source, result = ahead.popleft()
            following = next(waiting, None)
            if following is not None:
                ahead.append((following, pool.submit(read, following)))
            yield source, result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _done(read: Callable[[Source], T], source: Source) -> Future[T]:
    """`read(source)` run now, as a finished Future."""
    result: Future[T] = Future()
    try:
        result.set_result(read(source))
    except Exception as exc:  # handed to the caller, as a pool's Future hands it
        result.set_exception(exc)
    return result


def in_run_order(parts: list[pa.Table]) -> pa.Table | None:
    """The parts as one table in run order (None: no part); a stable sort keeps each run's rows in order."""
    import pyarrow.compute as pc

    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    table = pa.concat_tables(parts, promote_options="permissive")
    return table.take(pc.sort_indices(table, [(RUN_INDEX, "ascending")]))


def read_names(source: Source, columns: list[str] | None, filters: Filters, leave_out: Sequence[str]) -> list[str]:
    """The stored columns of a results file that a scan for `columns` (None: all but `leave_out`) reads."""
    if columns is None:
        skipped = set(stored_names(list(leave_out), source.version))
        return [n for n in source.schema.names if n not in skipped]
    wanted, present = (
        stored_names(list(dict.fromkeys([*columns, *filters.columns()])), source.version),
        set(source.schema.names),
    )
    return [n for n in wanted if n in present]


def file_reader(columns: list[str] | None, filters: Filters, leave_out: Sequence[str]) -> Callable[[Source], pa.Table]:
    """Reads one results file's wanted columns (stored names) and rows, with RUN_INDEX; the columns
    are worked out once per schema (a history's files share a few schema objects). A column that
    holds no value is made, not read: decoding it costs as much as decoding one full of values."""
    import pyarrow.parquet as pq

    from pocketbench.results.arrow_values import int64_array

    shapes: dict[tuple[int, int], tuple[list[str], list[str]]] = {}

    def read(source: Source) -> pa.Table:
        shape = (id(source.schema), source.version)
        if shape not in shapes:
            names = read_names(source, columns, filters, leave_out)
            shapes[shape] = names, [n for n in names if n not in source.empty]
        names, stored = shapes[shape]
        table = pq.ParquetFile(source.path, metadata=source.metadata).read(columns=stored, use_threads=False)
        if len(stored) < len(names):
            rows, decoded = table.num_rows, dict(zip(table.column_names, table.columns, strict=True))
            table = pa.table([decoded[n] if n in decoded else pa.nulls(rows) for n in names], names=names)
        table = filters.keep_table(table.append_column(RUN_INDEX, int64_array([source.run] * table.num_rows)))
        return table.replace_schema_metadata(None)

    return read


def _scan_versions(
    sources: list[Source],
    columns: list[str] | None,
    filters: Filters,
    leave_out: Sequence[str],
    migrated: Callable[[pa.Table, int], T],
) -> tuple[list[T], list[Source]]:
    """Each schema version's files scanned together and migrated; the files that fail alone."""
    parts: list[T] = []
    failed = []
    by_version = sorted(sources, key=lambda s: s.version)
    for version, group in groupby(by_version, key=lambda s: s.version):
        files = list(group)
        try:
            parts += _scan_version(files, version, columns, filters, leave_out, migrated)
        except (OSError, ValueError, TypeError, pa.ArrowException):  # find the file(s) at fault
            for source in files:
                try:
                    parts += _scan_version([source], version, columns, filters, leave_out, migrated)
                except (OSError, ValueError, TypeError, pa.ArrowException):
                    failed.append(source)
    return parts, failed


def _scan_version(
    files: list[Source],
    version: int,
    columns: list[str] | None,
    filters: Filters,
    leave_out: Sequence[str],
    migrated: Callable[[pa.Table, int], T],
) -> list[T]:
    """One scan over files of one schema version, migrated together (none: no row can pass)."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    schema = pa.unify_schemas([s.schema for s in files], promote_options="permissive")
    if columns is None:
        skipped = set(stored_names(list(leave_out), version))
        names = [n for n in schema.names if n not in skipped]
    else:
        names = stored_names(list(dict.fromkeys([*columns, *filters.columns()])), version)
    present = [n for n in names if n in schema.names]
    expression = _pushdown(schema, stored_names(["model", "variant", "device", "started_at"], version), filters)
    if expression is False:
        return []
    dataset = ds.dataset([str(s.path) for s in files], schema=schema, format="parquet")
    table = dataset.to_table(columns=[*present, "__fragment_index"], filter=expression)
    runs = pc.take(pa.array([s.run for s in files], pa.int64()), table["__fragment_index"])
    table = table.drop_columns(["__fragment_index"]).append_column(RUN_INDEX, runs)
    return [migrated(table, version)]


def _pushdown(schema: pa.Schema, names: list[str], filters: Filters) -> pa.compute.Expression | bool | None:
    """The filters as a scan expression (None: no filter; False: no row of these files can pass).

    The start time is pruned on its text: ISO 8601 times written in any offset are never more than
    a day from UTC, so rows of the day before `since` are kept and the exact test follows."""
    import pyarrow.compute as pc

    def text(column: str) -> bool:
        return is_text(schema.field(column).type if column in schema.names else pa.null())

    terms = []
    model, variant, device, started = names
    for column, values in ((model, filters.models), (variant, filters.variants), (device, filters.devices)):
        if values:
            if not text(column):
                return False  # the column is missing or all empty in these files: no row passes
            terms.append(pc.field(column).isin(values))
    if filters.since is not None:
        if not text(started):
            return False
        terms.append(pc.field(started) >= (filters.since - timedelta(days=1)).date().isoformat())
    expression = None
    for term in terms:
        expression = term if expression is None else expression & term
    return expression
