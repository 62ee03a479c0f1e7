"""History read and exported through Arrow alone holds exactly what the pandas reader holds.

`history --format csv|parquet` never converts to pandas (results/history_arrow.py); the csv must be
byte for byte what `export` writes from `load_history`'s frame, and the parquet must read back
as the same frame, on every fixture of test_history_scan (both schema versions, a retried cell
with a column later versions add, a killed run with a cell cut short).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from pocketbench.results.history import export, load_history
from pocketbench.results.history_arrow import (
    HistoryTable,
    NotColumnar,
    csv_bytes,
    export_table,
    load_history_table,
    write_history_parquet,
)
from pocketbench.results.scan import Filters

from tests import test_history_scan
from tests.test_history_scan import KILLED, V1_ID, V2_ID, assert_same


@pytest.fixture
def results(tmp_path):
    """test_history_scan's results folder."""
    return test_history_scan.results.__wrapped__(tmp_path)


READS = [
    {},
    {"samples": False},
    {"models": ["tiny"]},
    {"variants": ["int8"], "samples": False},
    {"models": ["digits_cnn"], "variants": ["fp32", "int8"]},
    {"since": datetime(2026, 12, 1, 8, 1, tzinfo=UTC)},
    {"since": datetime(2026, 12, 1, 8, 2, tzinfo=UTC), "samples": False},
    {"models": ["no-such-model"]},
    {"columns": ["run_id", "latency_p50_ms", "git_sha", "attempt", "latency_samples_ms", "device_emulated"]},
    {"columns": ["run_id", "model", "attempt", "status", "peak_rss_kb"], "samples": False},
]


def split(read: dict[str, Any]) -> tuple[Filters, dict[str, Any]]:
    """load_history's keywords as the Arrow reader takes them: the filters, and the rest."""
    filters = Filters(**{k: v for k, v in read.items() if k in ("models", "variants", "devices", "since")})
    return filters, {k: v for k, v in read.items() if k in ("columns", "samples")}


@pytest.mark.parametrize("read", READS)
def test_the_same_rows_values_and_csv_as_the_pandas_reader(results, read):
    frame = load_history(results, **read)
    filters, rest = split(read)
    history = load_history_table(results, filters, **rest)
    assert_same(history.table.to_pandas(), frame)
    assert history.skipped == frame.attrs["skipped"]
    assert csv_bytes(history) == export(frame, "csv", None)


def test_chosen_runs_in_their_order(results):
    chosen = [results / KILLED, results / V1_ID]
    want = export(load_history(results, runs=chosen), "csv", None)
    assert csv_bytes(load_history_table(results, runs=chosen)) == want


@pytest.mark.parametrize(
    "read", [{}, {"samples": False}, {"models": ["tiny"], "samples": False}, {"models": ["no-such-model"]}]
)
def test_parquet_reads_back_as_the_pandas_export(results, tmp_path, read):
    export(load_history(results, **read), "parquet", tmp_path / "pandas.parquet")
    filters, rest = split(read)
    export_table(load_history_table(results, filters, **rest), "parquet", tmp_path / "arrow.parquet")
    rows, skipped = write_history_parquet(results, tmp_path / "streamed.parquet", filters, **rest)
    want = pd.read_parquet(tmp_path / "pandas.parquet")
    assert rows == len(want) and skipped == []
    for name in ("arrow.parquet", "streamed.parquet"):
        got = pd.read_parquet(tmp_path / name)
        assert_same(got, want)
        # Counts read back as nullable integers, text as text; a flag column is `boolean` or object
        # (True/False/None) in the pandas reader depending on which files were concatenated.
        differing = [c for c in want.columns if got[c].dtype != want[c].dtype]
        assert all(set(want[c].dropna()) <= {True, False} for c in differing), differing
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_an_empty_results_folder(tmp_path):
    history = load_history_table(tmp_path / "nothing")
    assert csv_bytes(history) == export(load_history(tmp_path / "nothing"), "csv", None)


def test_floats_and_counts_print_as_pandas_prints_them():
    values = [
        0.1,
        1e16,
        9999999999999998.0,
        1e-05,
        0.0001,
        -0.0,
        0.0,
        123456789.123,
        5e-324,
        1.7976931348623157e308,
        2.0,
    ]
    table = pa.table(
        {
            "x": pa.array([*values, None, float("nan"), float("inf")], pa.float64()),
            "n": pa.array([*range(len(values)), None, 7, 2**60], pa.int64()),  # missing: float64 to pandas
            "k": pa.array([True, None, *[False] * (len(values) + 1)], pa.bool_()),
            "s": pa.array(['a,"b"', "", None, *["x\ny"] * len(values)], pa.string()),
            # Text the csv module quotes (or not) for its delimiter, quote and line ends, each alone.
            "t": pa.array(
                [",", '"', "\r", "\n", "\r\n", " lead", "trail ", "\t", '""', "", None, "ü;", "plain", "x y"]
            ),
            "samples": pa.array([[1.0, 2.5], [], None, [3], *[[0.1]] * (len(values) - 1)], pa.list_(pa.float64())),
        }
    )
    assert csv_bytes(HistoryTable(table, [], frozenset(), {})) == export(table.to_pandas(), "csv", None)
    for name in ("s", "t"):  # one column: an empty field alone on its line is quoted
        alone = table.select([name])
        assert csv_bytes(HistoryTable(alone, [], frozenset(), {})) == export(alone.to_pandas(), "csv", None)


def test_a_column_the_arrow_writer_cannot_print_goes_through_pandas(results, tmp_path):
    """A results file with a column of a type pandas prints its own way (a timestamp): the
    export is the pandas frame's, still every row."""
    from pocketbench.cli import app
    from typer.testing import CliRunner

    final = results / V1_ID / "results.parquet"
    frame = pd.read_parquet(final)
    frame.assign(checked_at=pd.Timestamp("2026-11-29T07:00:00Z")).to_parquet(final, index=False)
    want = export(load_history(results, samples=False), "csv", None)
    with pytest.raises(NotColumnar):
        csv_bytes(load_history_table(results, samples=False))
    got = CliRunner().invoke(app, ["history", "--results", str(results), "--format", "csv"])
    assert got.exit_code == 0, got.output
    assert got.stdout_bytes == want
    out = tmp_path / "h.parquet"
    assert (
        CliRunner()
        .invoke(app, ["history", "--results", str(results), "--format", "parquet", "--out", str(out)])
        .exit_code
        == 0
    )
    assert_same(
        pd.read_parquet(out), pd.read_parquet(io.BytesIO(export(load_history(results, samples=False), "parquet", None)))
    )


@pytest.fixture(params=[1, 2], ids=["one core", "two cores"])
def cores(request, monkeypatch):
    """Files read as they are asked for (one core), or on a pool of threads ahead of the reader."""
    from pocketbench.results import scan

    monkeypatch.setattr(scan, "_cores", lambda: request.param)
    monkeypatch.setattr(scan, "READ_AHEAD", 2)  # fewer than the runs: the pool refills as they are taken
    return request.param


@pytest.mark.parametrize("read", [{}, {"models": ["tiny"], "samples": False}])
def test_files_read_on_threads_keep_run_order(results, tmp_path, cores, read):
    frame = load_history(results, **read)
    filters, rest = split(read)
    assert csv_bytes(load_history_table(results, filters, **rest)) == export(frame, "csv", None)
    write_history_parquet(results, tmp_path / "streamed.parquet", filters, **rest)
    assert_same(
        pd.read_parquet(tmp_path / "streamed.parquet"), pd.read_parquet(io.BytesIO(export(frame, "parquet", None)))
    )


def test_a_file_damaged_past_its_footer_is_read_from_its_cells(results, tmp_path, cores):
    """Its footer reads, its first page does not: the run's rows come from its cell files, as the
    pandas reader reads them; the streamed parquet writer leaves it to that reader."""
    final = results / V2_ID / "results.parquet"
    damaged = bytearray(final.read_bytes())
    damaged[4:204] = b"\xff" * 200  # the first column's page header
    final.write_bytes(bytes(damaged))
    frame = load_history(results)
    history = load_history_table(results)
    assert_same(history.table.to_pandas(), frame)
    assert history.skipped == frame.attrs["skipped"]
    assert V2_ID in set(frame["run_id"])
    with pytest.raises(NotColumnar, match="cannot be scanned"):
        write_history_parquet(results, tmp_path / "streamed.parquet")
    assert [p.name for p in tmp_path.iterdir()] == ["results"]  # nothing written, no temporary file left


def test_exports_never_import_pandas_or_pydantic(results, tmp_path):
    """Importing pandas costs more than a filtered export's own work: neither export of finished
    runs imports it (pyarrow's conversions to and from Python objects, and to numpy, would; a
    killed run is read cell by cell through pandas). Nor pydantic, which typer 0.29 imports to
    check every option (pyproject.toml keeps typer below it)."""
    shutil.rmtree(results / KILLED)
    code = (
        "import sys; from typer.testing import CliRunner; from pocketbench.cli import app; "
        f"root = {str(results)!r}; out = {str(tmp_path / 'h.parquet')!r}; "
        "r = CliRunner().invoke(app, ['history', '--results', root, '--model', 'tiny', '--format', 'csv']); "
        "assert r.exit_code == 0 and r.stdout.count(chr(10)) > 1, r.output; "
        "r = CliRunner().invoke(app, ['history', '--results', root, '--format', 'parquet', '--out', out]); "
        "assert r.exit_code == 0, r.output; "
        "print([m for m in ('pandas', 'pydantic') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
