"""`pocketbench tune` end to end on digits_cnn: the local device, the emulated phone, kill -9 and
resume, two emulated phones sharing one study through a real PostgreSQL server, the front's
constraints, tuned.toml reproducing the front, and the one-line errors before any work.

Small on purpose: a quantization-only space (four recipes), a handful of trials and tiny
protocols. Timings are never asserted beyond the CIs the tool itself reports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState
from pocketbench import bench, tune
from pocketbench.compress.sweepfile import load_sweep
from pocketbench.measure.settings import ProtocolSettings
from pocketbench.results.store import read_cells
from pocketbench.tune import study as studies
from pocketbench.tune.study import open_storage

from tests.tune_support import postgres_server

SPACE = {"prune_ratio": [0.0], "quantization": ["none", "int8", "int8-dynamic", "w4"], "keep_fp32": [0]}
TRIAL = ProtocolSettings(warmup=1, iterations=10, repetitions=2)
FRONT = ProtocolSettings(warmup=2, iterations=20, repetitions=3)
QUICK = {"space": SPACE, "baselines": ["fp32", "int8"], "trial_protocol": TRIAL, "front_protocol": FRONT}

pytestmark = pytest.mark.slow


def _study(run):
    return optuna.load_study(study_name=run.study, storage=f"sqlite:///{run.folder / 'tune.db'}")


def _trial_rows(folder):
    cells = read_cells(folder)
    return cells[cells["tune_phase"] == "trial"] if "tune_phase" in cells else cells.iloc[0:0]


def _check_front(run, max_size_mb=None):
    """Every re-measured front member meets the constraints the search was given."""
    frame = run.result.frame
    fp32 = frame[frame["variant"] == "fp32"].iloc[0]
    members = frame[frame["variant"].isin(run.result.front)]
    assert len(members) == len([n for n in run.result.front])
    for _, row in members.iterrows():
        assert row["status"] == "ok"
        assert 100 * row["accuracy"] >= 100 * fp32["accuracy"] - 1.0
        if max_size_mb is not None:
            assert row["size_bytes"] / 1e6 <= max_size_mb


def test_local_search_front_constraints_and_tuned_toml_reproduces_it(tmp_path):
    # --time 30m with 4 trials: the trials end it first, the deadline only decides whether each may start.
    run = tune("digits_cnn", "local", trials=4, time="30m", max_size_mb=0.5, results=tmp_path / "r", **QUICK)
    study = _study(run)
    measured = sorted(t.number for t in study.trials if studies.measured(t))
    rows = _trial_rows(run.folder)
    assert sorted(rows["tune_trial"].astype(int)) == measured  # one row per trial that ran, none twice
    assert len(study.trials) == 4
    # fp32 (908 KB) breaks the size cap: it is never on the front, however accurate.
    assert all(studies.feasible(t) for t in studies.front(study))
    assert "tuned-fp32" not in run.result.front
    _check_front(run, max_size_mb=0.5)
    assert set(run.result.baselines) >= {"fp32", "int8"}
    roles = json.loads((run.folder / "front.json").read_text())  # what the run alone tells a reader
    assert roles["front"] == run.result.front and roles["baselines"] == run.result.baselines
    assert set(roles["front_trials"].values()) <= {t.number for t in studies.front(study)}
    page = run.result.report.read_text()
    assert run.result.report.parent == run.folder and "Search: trials and the front" in page
    # tuned.toml is an ordinary sweep file: bench rebuilds the same programs (same bytes) and
    # reproduces every accuracy exactly on the same device.
    sweep = load_sweep(run.result.tuned_toml)
    # On this computer the search used every core the process may run on; so does the reproduction.
    assert run.result.threads == len(os.sched_getaffinity(0))
    assert set(run.result.frame["threads"]) == {run.result.threads}
    again = bench(
        sweep.models, sweep.variants, "local", iterations=20, warmup=2, repetitions=3, threads=run.result.threads,
        results=tmp_path / "r",
    )  # fmt: skip
    before = run.result.frame.set_index("variant")
    for _, row in again.iterrows():
        old = before.loc[row["variant"]]
        assert row["status"] == "ok" and row["accuracy"] == old["accuracy"]
        assert row["artifact_sha256"] == old["artifact_sha256"]
        assert row["latency_p50_ms"] > 0  # timing agreement is a benchmark's to show, not a loaded test machine's


def test_search_on_the_emulated_phone(tmp_path, phone_factory):
    from tests.runner_support import android_bundle

    android_bundle("x86_64")
    phone = phone_factory()
    run = tune("digits_cnn", f"tcp:{phone.host}:{phone.port}", trials=3, results=tmp_path / "r", **QUICK)
    rows = _trial_rows(run.folder)
    assert set(rows["device_kind"]) == {"adb"} and set(rows["status"]) <= {"ok", "pruned"}
    assert set(run.result.frame["device_model"]) == {"Google Pixel 8"}
    _check_front(run)


def test_kill_9_mid_study_then_resume_loses_and_repeats_nothing(tmp_path):
    code = (
        "from pocketbench import tune; from pocketbench.measure.settings import ProtocolSettings as P; "
        f"tune('digits_cnn', 'local', trials=4, results='r', run_id='t1', space={SPACE!r}, baselines=['fp32'], "
        "trial_protocol=P(warmup=1, iterations=200, repetitions=3), front_protocol=P(iterations=20, repetitions=3))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=tmp_path, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    folder = tmp_path / "r" / "t1"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        if (folder / "cells").is_dir() and len(_trial_rows(folder)) >= 2:
            break
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = _trial_rows(folder)
    assert 2 <= len(before) < 4, "the kill should land mid-study"

    run = tune(resume=str(folder), results=tmp_path / "r")
    study = _study(run)
    rows = _trial_rows(folder)
    assert not rows["tune_trial"].duplicated().any()
    measured = sorted(t.number for t in study.trials if studies.measured(t))
    assert sorted(rows["tune_trial"].astype(int)) == measured
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
    # The rows saved before the kill are kept as they were; the budget is the study's, not per run.
    assert list(rows.iloc[: len(before)]["started_at"]) == list(before["started_at"])
    assert sum(1 for t in study.trials if studies.counted(t)) == 4
    # A recipe whose trial the kill interrupted ran again (queued), never one that had finished.
    finished = rows.drop_duplicates("recipe")
    assert len(finished) == len(rows)


def test_emulated_phones_on_two_hosts_share_one_study_through_postgresql(tmp_path, phone_factory):
    """Two hosts (two processes, each its own run folder) on one PostgreSQL study; the second
    host has two phones (`-d A,B`: one worker each). Trials are split, none runs twice."""
    from pocketbench.models.registry import resolve

    from tests.runner_support import android_bundle

    android_bundle("x86_64")
    resolve("digits_cnn").load()  # its weights in the session's cache: the hosts would each train it
    phones = [f"tcp:{emu.host}:{emu.port}" for emu in (phone_factory() for _ in range(3))]
    space = {**SPACE, "observer": ["minmax", "percentile", "histogram"]}  # six recipes, more than the budget
    with postgres_server() as url:
        hosts = []
        for i, devices in enumerate((phones[0], f"{phones[1]},{phones[2]}")):
            code = (
                "from pocketbench import tune; from pocketbench.measure.settings import ProtocolSettings as P; "
                f"tune('digits_cnn', {devices!r}, trials=5, results='r', run_id='host{i}', "
                f"storage={url!r}, study='shared', space={space!r}, baselines=['fp32'], "
                "trial_protocol=P(warmup=1, iterations=10, repetitions=2), "
                "front_protocol=P(iterations=10, repetitions=2))"
            )
            with (tmp_path / f"host{i}.err").open("w") as log:  # a file: a full pipe would stall a host
                hosts.append(subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, stderr=log))
        for i, host in enumerate(hosts):
            host.wait(timeout=1200)
            assert host.returncode == 0, (tmp_path / f"host{i}.err").read_text()[-3000:]
        trials = optuna.load_study(study_name="shared", storage=open_storage(url)).trials
    rows = [_trial_rows(tmp_path / "r" / f"host{i}") for i in range(2)]
    numbers = [set(r["tune_trial"].astype(int)) for r in rows]
    assert numbers[0] and numbers[1], "both hosts ran trials"
    assert not numbers[0] & numbers[1]
    measured = {t.number for t in trials if studies.measured(t)}
    assert numbers[0] | numbers[1] == measured
    assert set(rows[1]["device"]) <= set(phones[1:])  # the second host's two workers
    recipes = [t.user_attrs["recipe_key"] for t in trials if studies.measured(t)]
    assert len(recipes) == len(set(recipes)), "a recipe was measured twice"
    assert sum(1 for t in trials if studies.counted(t)) == 5  # the study's budget, split between the hosts


def _cli(tmp_path, *args):
    return subprocess.run(
        [sys.executable, "-m", "pocketbench", "tune", *args, "--results", "R"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["-m", "digits_cnn", "--max-accuracy-drop", "-1"], "--max-accuracy-drop must be points in [0, 100]"),
        (["-m", "digits_cnn", "--objective", "speed"], "--objective must be one of latency, energy, size"),
        (["-m", "digits_cnn", "--objective", "energy", "-d", "local"], "--objective energy: device local measures no"),
        (["-m", "digits_cnn", "--time", "5x"], "--time '5x': give a duration like 90s, 60m or 1h30m"),
        (["-m", "digits_cnn", "--storage", "postgresql://h/db"], "--study must be named with a shared storage"),
        (["-m", "digits_cnn", "--max-size-mb", "0"], "--max-size-mb must be a positive number"),
        (["-m", "digits_cnn", "--threads", "-1"], "--threads cannot be negative"),
        (["-m", "no_such_model"], "no_such_model"),
        ([], "name the model to tune"),
    ],
)
def test_bad_input_is_one_line_before_any_work(tmp_path, args, says):
    result = _cli(tmp_path, *args)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], result.stderr
    cells = list((tmp_path / "R").glob("*/cells/*.parquet"))
    assert not cells  # nothing was measured
