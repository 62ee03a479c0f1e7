"""Ctrl-C and two writers: an interrupted run says in one line what it kept and how to carry on,
exits 130, writes no results.parquet, and shows as interrupted in `report` and `history`; a run
folder being written is locked, and a second `farm --run-id` on it names the holder's pid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pocketbench.errors import PocketbenchError
from pocketbench.results.store import RunStore

FARM = 'name = "lock"\nvariants = ["fp32"]\nmodels = ["digits_cnn"]\n[[devices]]\nname = "here"\nserial = "local"\n'


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pocketbench", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip


def _wait_for(predicate, timeout_s: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode} first: {proc.communicate()[1][-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"not reached within {timeout_s} s")
        time.sleep(0.1)


@pytest.mark.slow  # exports and measures digits_cnn twice
def test_ctrl_c_says_what_was_kept_and_marks_the_run(tmp_path):
    run = tmp_path / "R" / "run1"
    args = ["-m", "digits_cnn", "-v", "fp32,int8", "--device", "local", "--repetitions", "2", "--iterations", "20"]
    proc = _start(["bench", *args, "--min-seconds", "1.5", "--results", "R", "--run-id", "run1"], tmp_path)
    _wait_for(lambda: any((run / "progress").glob("*.parquet")) or any((run / "cells").glob("*.parquet")), 600, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("interrupted: ") and f"kept in {Path('R') / 'run1'}" in lines[-1], err
    assert "cell(s) measured" in lines[-1] and "`pocketbench report run1`" in lines[-1]
    assert not (run / "results.parquet").exists()  # no empty (or any) results.parquet
    assert json.loads((run / "manifest.json").read_text())["interrupted"]["by"] == "SIGINT"
    report = subprocess.run([sys.executable, "-m", "pocketbench", "report", "run1", "--results", "R"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert report.returncode == 0 and "interrupted: run run1 stopped before it finished" in report.stdout
    history = subprocess.run([sys.executable, "-m", "pocketbench", "history", "--results", "R"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert history.returncode == 0 and "run1 (interrupted)" in history.stdout, history.stdout


def test_ctrl_c_during_a_farm_names_how_to_resume(tmp_path):
    """Stopped while it exports: one line, exit 130, the resume command, no results.parquet."""
    (tmp_path / "farm.toml").write_text(FARM)
    proc = _start(["farm", "farm.toml", "--results", "R"], tmp_path)
    _wait_for(lambda: any((tmp_path / "R").glob("*/manifest.json")), 300, proc)  # the run claimed its folder
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    line = [line for line in err.splitlines() if line.strip()][-1]
    assert line.startswith("interrupted: ") and "resume with `pocketbench farm farm.toml --run-id " in line, err
    assert not any((tmp_path / "R").glob("*/results.parquet"))


def test_a_run_being_written_is_locked_against_a_second_farm(tmp_path):
    """Two farms resuming one run id both measured, the second dying on a temporary file name."""
    (tmp_path / "farm.toml").write_text(FARM)
    holder = RunStore(tmp_path / "R", "night1")
    holder.write_manifest({}, {})
    result = subprocess.run(
        [sys.executable, "-m", "pocketbench", "farm", "farm.toml", "--run-id", "night1", "--results", "R"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("plan:")]
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0] == (
        f"error: run night1 is being written by pid {os.getpid()} (another pocketbench): wait for it to finish, "
        "or stop it and resume"
    )
    assert not list((tmp_path / "R" / "night1" / "cells").iterdir())
    with pytest.raises(PocketbenchError, match=f"being written by pid {os.getpid()}"):
        RunStore(tmp_path / "R", "night1", resume=True)
    holder.finish()  # done: the lock is released and the run can be resumed
    RunStore(tmp_path / "R", "night1", resume=True).release()
