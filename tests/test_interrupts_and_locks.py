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
import tomllib
from pathlib import Path

import pandas as pd
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


def _pocketbench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pocketbench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip


@pytest.mark.slow  # exports and measures digits_cnn twice
def test_ctrl_c_says_what_was_kept_marks_the_run_and_bench_resumes_it(tmp_path):
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
    assert "cell(s) measured" in lines[-1] and lines[-1].endswith(
        "resume with `pocketbench bench --resume run1 --results R`"
    )
    assert not (run / "results.parquet").exists()  # no empty (or any) results.parquet
    assert json.loads((run / "manifest.json").read_text())["interrupted"]["by"] == "SIGINT"
    report = _pocketbench("report", "run1", "--results", "R", cwd=tmp_path)
    assert report.returncode == 0 and "interrupted: run run1 stopped before it finished" in report.stdout
    history = _pocketbench("history", "--results", "R", cwd=tmp_path)
    assert history.returncode == 0 and "run1 (interrupted)" in history.stdout, history.stdout
    # The line's command carries on: the cells kept are not measured again, the others are.
    kept = {path.name: path.read_bytes() for path in (run / "cells").glob("*.parquet")}
    refused = _pocketbench("bench", "--resume", "run1", "--results", "R", "-v", "fp32", cwd=tmp_path)
    assert refused.returncode == 1 and refused.stderr.strip().endswith("settings: leave out --variants"), refused.stderr
    resumed = _pocketbench("bench", "--resume", "run1", "--results", "R", "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming run1: " in resumed.stderr
    assert {(r["variant"], r["status"]) for r in json.loads(resumed.stdout)["rows"]} == {("fp32", "ok"), ("int8", "ok")}
    assert all((run / "cells" / name).read_bytes() == data for name, data in kept.items())
    cells = pd.concat([pd.read_parquet(path) for path in (run / "cells").glob("*.parquet")])
    ok = cells[cells["status"] == "ok"]
    assert sorted(ok["variant"]) == ["fp32", "int8"]  # each cell measured to the end once
    assert "interrupted" not in json.loads((run / "manifest.json").read_text())
    assert "run1 (interrupted)" not in _pocketbench("history", "--results", "R", cwd=tmp_path).stdout


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


ENTRY = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["scripts"]["pocketbench"]


@pytest.mark.parametrize("launch", ["console script", "python -m"])
def test_ctrl_c_while_the_command_starts_is_one_line(launch, tmp_path):
    """Ctrl-C during the CLI's own imports (typer made slow to import here: a loaded machine's
    start-up) is one line and exit 130, not a KeyboardInterrupt traceback from the import."""
    slow = tmp_path / "slow" / "typer"
    slow.mkdir(parents=True)
    (slow / "__init__.py").write_text("import sys, time\nprint('importing typer', flush=True)\ntime.sleep(120)\n")
    module, function = ENTRY.split(":")  # what pip's `pocketbench` script runs
    start = ["-c", f"import sys; from {module} import {function}; sys.exit({function}())"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(slow.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, *(start if launch == "console script" else ["-m", "pocketbench"]), "history"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == "importing typer\n"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (130, "interrupted: nothing was measured\n")


def test_a_signal_after_the_command_finished_changes_nothing(tmp_path):
    """Ctrl-C while the interpreter shuts down (an exit handler that takes a while, as a loaded
    machine's teardown does) is ignored: the command's answer and exit code stand, with no
    KeyboardInterrupt traceback from the teardown."""
    code = (
        "import atexit, time; atexit.register(lambda: (print('exiting', flush=True), time.sleep(3)));"
        f" from {ENTRY.split(':')[0]} import {ENTRY.split(':')[1]} as main; main()"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, "--version"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().startswith("pocketbench ")
    assert proc.stdout.readline() == "exiting\n"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (0, "")


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


def test_bench_resume_takes_only_bench_runs_and_no_other_settings(tmp_path, capsys):
    from pocketbench import cli

    farm = RunStore(tmp_path / "R", "night1")
    farm.write_manifest({"kind": "farm", "farm": "x", "models": {}, "devices": []}, {})
    farm.mark_interrupted("SIGINT")
    cases = {
        ("--resume", "night1"): "error: run 'night1' is not a bench run: resume it with the command that made it",
        ("--resume", "nosuch"): f"error: no run 'nosuch' in {tmp_path / 'R'}: `ls {tmp_path / 'R'}` lists the run ids",
        ("--resume", "night1", "-m", "digits_cnn", "--iterations", "5"): (
            "error: --resume continues the run it names with its models, variants, devices and settings:"
            " leave out --model, --iterations"
        ),
    }
    for args, line in cases.items():
        with pytest.raises(SystemExit) as stop:
            cli.main(["bench", *args, "--results", str(tmp_path / "R")])
        err = capsys.readouterr().err
        assert (stop.value.code, [x for x in err.splitlines() if x.strip()]) == (1, [line]), err
