"""Every report renders any run (issue 14 item 3): cells that all failed, each failure kind, mixed
kinds, a partial cell, no samples at all, no cells at all — in every renderer (rich table,
markdown, CSV, JSON, HTML), through the real store (parquet gives string columns) and the CLI.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from pocketbench.cli import app
from pocketbench.report.write import REPORT_FORMATS
from pocketbench.results.store import RunStore, load_run
from typer.testing import CliRunner

from tests.conftest import DATA

FAILURE_KINDS = [
    "recipe_error", "model_error", "export_error", "compress_error", "bad_arguments", "load_failed",
    "execution_failed", "crashed", "timeout", "device_error",
]  # fmt: skip
runner = CliRunner()


def _ok_rows() -> list[dict]:
    """The committed example run's measured cells, as a real bench wrote them."""
    frame, _, _ = load_run(str(DATA / "example_run"), Path("/nonexistent"))
    return [dict(row) for _, row in frame[frame["status"] == "ok"].iterrows()]


def _failed(variant: str, status: str) -> dict:
    """A failed cell as rows.failed_row leaves it: identity, device and energy probe, no numbers."""
    return {
        "model": "digits_cnn",
        "variant": variant,
        "device": "tcp:127.0.0.1:5555",
        "status": status,
        "error": f"{status} of {variant}: [bold]not markup[/]",
        "attempt": 1,
        "device_kind": "adb",
        "backend": "native-runner",
        "energy_status": "not available: no battery",
        "energy_source": "",
        "started_at": "2026-11-30T00:00:00+00:00",
    }


def _run(tmp_path: Path, rows: list[dict]) -> tuple[Path, str]:
    store = RunStore(tmp_path / "results")
    store.write_manifest({"models": ["digits_cnn"]}, {"pocketbench": "test"})
    for row in rows:
        store.write_cell({**row, "run_id": store.run_id})
    store.finish()
    return tmp_path / "results", store.run_id


def _partial(row: dict) -> dict:
    samples = list(row["latency_samples_ms"])[:5]
    return {
        **row,
        "variant": "int8-partial",
        "status": "partial",
        "repetitions": 1,
        "latency_samples_ms": samples,
        "error": "the phone went offline after repetition 1 of 3",
    }


def _no_samples(row: dict) -> dict:
    measured = {c: None for c in row if c.startswith(("latency_", "speedup_", "energy_", "accuracy"))}
    return {**row, **measured, "variant": "fp32-nothing", "latency_samples_ms": None}


MIXED = ("fp32", "int8", "int8-dynamic")
CASES = {
    **{f"all-{kind}": lambda kind=kind: [_failed("fp32", kind), _failed("int8", kind)] for kind in FAILURE_KINDS},
    "mixed-kinds": lambda: [_failed(v, k) for v, k in zip(MIXED, FAILURE_KINDS[4:7], strict=True)],
    "ok-and-failed": lambda: [*_ok_rows()[:1], _failed("int8", "crashed")],
    "partial": lambda: [*_ok_rows()[:1], _partial(_ok_rows()[1]), _failed("int8-dynamic", "device_error")],
    "all-partial": lambda: [_partial(_ok_rows()[1])],
    "no-samples": lambda: [_no_samples(_ok_rows()[0])],
    "no-cells": lambda: [],
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_format_renders_the_run(tmp_path, case):
    rows = CASES[case]()
    results, run_id = _run(tmp_path, rows)
    for fmt in REPORT_FORMATS:
        for width in (80, 100, 160) if fmt == "table" else (None,):
            env = {"COLUMNS": str(width)} if width else {}
            result = runner.invoke(app, ["report", run_id, "--format", fmt, "--results", str(results)], env=env)
            assert result.exit_code == 0, (fmt, result.output, result.exception)
            text = " ".join(result.stdout.split())
            for row in rows:
                assert str(row["variant"]) in text, (fmt, row["variant"])
            if fmt == "json":
                assert len(json.loads(result.stdout)["rows"]) == len(rows)
            if fmt == "csv":
                assert len(pd.read_csv(io.StringIO(result.stdout))) == len(rows) if rows else True
    for row in rows:
        if row["status"] == "partial":
            assert "partial: digits_cnn int8-partial" in _table(results, run_id)
        elif row["status"] != "ok":
            assert f"{row['status']} of {row['variant']}: [bold]not markup[/]" in _table(results, run_id)


def _table(results: Path, run_id: str) -> str:
    result = runner.invoke(app, ["report", run_id, "--results", str(results)], env={"COLUMNS": "160"})
    return " ".join(result.stdout.split())


def test_a_partial_cell_shows_its_numbers_with_its_status(tmp_path):
    ok, partial = _ok_rows()[0], _partial(_ok_rows()[1])
    results, run_id = _run(tmp_path, [ok, partial])
    report = json.loads(runner.invoke(app, ["report", run_id, "--format", "json", "--results", str(results)]).stdout)
    (table,) = report["tables"]
    shown = dict(zip(table["columns"], table["rows"][1], strict=True))
    assert shown["variant"] == "int8-partial" and shown["status"] == "partial"
    assert shown["p50 ms [95% CI]"] != "—"
    assert not any(w.startswith("failed:") for w in report["warnings"])
    assert any("only 1 repetition(s) finished: the phone went offline" in w for w in report["warnings"])
