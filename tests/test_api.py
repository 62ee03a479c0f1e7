"""`pocketbench.bench(...)` from Python: the run the CLI's bench command makes (the command calls it)."""

from __future__ import annotations

import json

import pandas as pd
import pocketbench
import pytest
from pocketbench.cli import app
from pocketbench.errors import PocketbenchError
from pocketbench.report.table import records
from typer.testing import CliRunner

SETTINGS = {"iterations": 5, "warmup": 1, "repetitions": 1}
# What differs between two runs of the same cell: timings and what is derived from them (speedup
# CIs; batch sizes are calibrated by time; whether the p50's CI reached its target), memory
# readings, the run's identity and clock, and whether the cached `.pte` was reused (the second
# run reuses the first one's).
VARYING = (
    "latency", "speedup", "_ms", "_kb", "_cv", "unstable", "batch", "target_met", "started_at", "run_id",
    "artifact_reused",
)  # fmt: skip


def _varies(column: str) -> bool:
    return any(part in column for part in VARYING)


@pytest.mark.slow  # two real benches (library and CLI)
def test_bench_returns_the_rows_the_cli_prints_as_json(tmp_path):
    frame = pocketbench.bench("digits_cnn", "fp32", "local", **SETTINGS, results=tmp_path / "api")
    cli = CliRunner().invoke(
        app,
        ["bench", "--model", "digits_cnn", "--variants", "fp32", "--device", "local", "--iterations", "5",
         "--warmup", "1", "--repetitions", "1", "--results", str(tmp_path / "cli"), "--json"],
    )  # fmt: skip
    assert cli.exit_code == 0, cli.stderr
    printed = json.loads(cli.stdout)["rows"]
    ours = records(frame)
    assert isinstance(frame, pd.DataFrame) and len(ours) == len(printed) == 1
    assert set(ours[0]) == set(printed[0])
    same = {c for c in ours[0] if not _varies(c)}
    assert {"model", "variant", "device", "status", "size_bytes", "artifact_sha256", "accuracy", "recipe"} <= same
    assert {c: ours[0][c] for c in same} == {c: printed[0][c] for c in same}
    assert ours[0]["status"] == "ok" and ours[0]["iterations"] >= 5


@pytest.mark.slow  # a real bench
def test_the_run_is_saved_like_the_cli_saves_it(tmp_path):
    frame = pocketbench.bench(["digits_cnn"], ["fp32"], ["local"], **SETTINGS, results=tmp_path, run_id="nb-1")
    assert frame.attrs["run_id"] == "nb-1" and frame.attrs["folder"] == tmp_path / "nb-1"
    manifest = json.loads((tmp_path / "nb-1" / "manifest.json").read_text())
    assert manifest["config"]["settings"]["iterations"] == 5
    assert manifest["config"]["devices"] == ["local"]
    saved = pd.read_parquet(tmp_path / "nb-1" / "results.parquet")
    assert list(saved["variant"]) == list(frame["variant"]) == ["fp32"]
    with pytest.raises(PocketbenchError, match="exists: results are never overwritten"):
        pocketbench.bench("digits_cnn", "fp32", "local", **SETTINGS, results=tmp_path, run_id="nb-1")


def test_bad_input_is_one_clear_error_naming_the_setting_and_nothing_is_saved(tmp_path):
    with pytest.raises(PocketbenchError, match=r"^iterations must be at least 1$"):
        pocketbench.bench("digits_cnn", "fp32", "local", iterations=0, results=tmp_path)
    with pytest.raises(PocketbenchError, match="unknown model 'nope'"):
        pocketbench.bench("nope", "fp32", "local", results=tmp_path)
    with pytest.raises(PocketbenchError, match=r"variants: .fp32. named twice"):
        pocketbench.bench("digits_cnn", "fp32,fp32", "local", results=tmp_path)
    assert list(tmp_path.iterdir()) == []
