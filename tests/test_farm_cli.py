"""`pocketbench farm` as users run it: a real process, SIGKILLed mid-run and resumed; a grown
model flagged as a regression with exit code 3; bad matrices refused with every field named."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from pocketbench.results.store import read_cells

from tests.farm_support import MODELS, write_models

MATRIX = """
name = "cli-farm"
variants = {variants}
models = ["{models}:small"]

[[devices]]
name = "here"
serial = "local"

[run]
iterations = 30
warmup = 2
threads = 1
"""


def _farm_argv(tmp_path: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pocketbench",
        "farm",
        str(tmp_path / "farm.toml"),
        "--results",
        str(tmp_path / "r"),
        *args,
    ]


def _farm(tmp_path: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        _farm_argv(tmp_path, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        check=False,
    )


def _write(tmp_path: Path, variants: str = '["fp32", "int8", "int8-dynamic"]') -> None:
    models = write_models(tmp_path)
    (tmp_path / "farm.toml").write_text(MATRIX.format(models=models, variants=variants))


@pytest.mark.slow  # a farm run killed and resumed
def test_sigkill_mid_run_then_resume_loses_nothing_and_duplicates_nothing(tmp_path):
    _write(tmp_path)
    process = subprocess.Popen(
        _farm_argv(tmp_path, "--run-id", "night-1"),
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cells = tmp_path / "r" / "night-1" / "cells"
    deadline = time.monotonic() + 300
    while not list(cells.glob("*.parquet")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the farm and its runner, mid-run
    process.wait()
    before = read_cells(tmp_path / "r" / "night-1")
    assert 1 <= len(before) < 3, "the kill should land after the first cell and before the last"

    resumed = _farm(tmp_path, "--run-id", "night-1")
    assert resumed.returncode == 0, resumed.stderr
    assert "cells already complete" in resumed.stderr
    after = read_cells(tmp_path / "r" / "night-1")
    assert sorted(after["variant"]) == ["fp32", "int8", "int8-dynamic"]
    assert set(after["status"]) == {"ok"}
    # The cells measured before the kill are the same rows, untouched.
    # (dtypes aside: a text column read from one cell is `str`, concatenated with cells where it is
    # empty it is `object`)
    pd.testing.assert_frame_equal(
        after.iloc[: len(before)].reset_index(drop=True), before.reset_index(drop=True), check_dtype=False
    )
    final = pd.read_parquet(tmp_path / "r" / "night-1" / "results.parquet")
    assert len(final) == 3
    assert (tmp_path / "r" / "night-1" / "verdicts.parquet").exists()


@pytest.mark.slow  # two farm runs in subprocesses
def test_a_model_that_grew_is_a_regression_and_exit_code_3(tmp_path):
    _write(tmp_path, '["fp32"]')
    for night in ("night-1", "night-2"):
        ran = _farm(tmp_path, "--run-id", night)
        # Latency verdicts between two real runs depend on the machine's load: not asserted.
        assert ran.returncode in (0, 3), ran.stderr
    same = pd.read_parquet(tmp_path / "r" / "night-2" / "verdicts.parquet").set_index("metric")
    assert same.loc["size_bytes", "verdict"] == "no change"
    # Someone makes `small` four times wider under the same name.
    wider = MODELS.replace(
        "Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4)",
        "Linear(16, 128), torch.nn.ReLU(), torch.nn.Linear(128, 4)",
    )
    (tmp_path / "farm_models.py").write_text(wider)
    grown = _farm(tmp_path, "--run-id", "night-3")
    assert grown.returncode == 3, grown.stdout + grown.stderr
    verdicts = pd.read_parquet(tmp_path / "r" / "night-3" / "verdicts.parquet").set_index("metric")
    assert verdicts.loc["size_bytes", "verdict"] == "regression"
    assert verdicts.loc["size_bytes", "change"] > 1.0
    assert "size_bytes" in grown.stdout and "bigger" in grown.stdout


def test_a_bad_matrix_is_refused_naming_every_field(tmp_path):
    (tmp_path / "farm.toml").write_text('variants = ["fp32"]\nmodels = []\n[[devices]]\nserial = "tcp:nowhere"\n')
    result = _farm(tmp_path)
    assert result.returncode == 1
    assert "farm.toml: models: required" in result.stderr
    assert "farm.toml: devices[0].serial: 'tcp:nowhere' is not tcp:HOST:PORT" in result.stderr
    assert "Traceback" not in result.stderr
