"""Issue 14 item 5: nothing measured is lost. Every repetition is persisted the moment it ends;
a cell cut short keeps its finished repetitions as a `partial` row with the reason — when the
phone goes away for good, and when the process is killed between two repetitions."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from pocketbench.cli import app
from pocketbench.devices.local import LocalDevice
from pocketbench.devices.select import open_device
from pocketbench.measure.settings import ProtocolSettings
from pocketbench.measure.sweep import run_sweep
from pocketbench.results.cell_status import CellStatus
from pocketbench.results.history import load_history
from pocketbench.results.store import RunStore, read_cells, read_run
from typer.testing import CliRunner

pytestmark = pytest.mark.slow  # real sweeps cut short mid-cell

ITERATIONS = 6


@pytest.fixture(autouse=True)
def adb_key(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("POCKETBENCH_ADB_KEY", str(tmp_path_factory.getbasetemp() / "adb-key" / "adbkey"))


def test_a_phone_gone_for_good_mid_run_keeps_the_repetitions_it_finished(phone_factory, tmp_path):
    from tests.runner_support import host_runner

    host_runner()  # the emulated phone runs the host build of pocket_runner
    emu = phone_factory()
    device = open_device(f"tcp:{emu.host}:{emu.port}")
    device.reconnect_wait_s = 2  # give up on the gone phone quickly
    measure, started = device.benchmark, []

    def unplugged_after_the_first_round(job):
        if len(started) == 2:  # fp32 and int8 each finished their first repetition: the phone goes
            emu.stop()
        started.append(job)
        return measure(job)

    device.benchmark = unplugged_after_the_first_round
    store = RunStore(tmp_path / "results", "gone")
    store.write_manifest({}, {})
    settings = ProtocolSettings(
        iterations=ITERATIONS, warmup=1, repetitions=3, energy_window_s=0.2, cooldown_timeout_s=1
    )
    failures = run_sweep(["digits_cnn"], ["fp32", "int8"], [device, LocalDevice()], settings, store)
    frame = store.finish()
    assert failures == 2
    assert list(frame["status"]) == [CellStatus.PARTIAL, "ok", CellStatus.PARTIAL, "ok"], frame[
        ["variant", "status", "error"]
    ]
    for row in frame[frame["status"] == CellStatus.PARTIAL].itertuples():
        assert row.error.startswith("1 of 3 repetitions, then device_error: "), row.error
        assert row.repetitions == 1 and len(row.latency_samples_ms) >= ITERATIONS
        assert row.latency_p50_ms > 0 and row.accuracy is not None
    assert not list((store.folder / "progress").glob("*.parquet"))  # each cell's own file replaced it

    shown = CliRunner().invoke(
        app,
        ["report", "gone", "--results", str(tmp_path / "results"), "--format", "md"],
    )
    assert shown.exit_code == 0, shown.output
    assert "partial" in shown.stdout and "1 of 3 repetitions" in shown.stdout


def test_a_kill_between_repetitions_keeps_the_finished_ones_as_a_partial_row(tmp_path):
    argv = [
        sys.executable, "-m", "pocketbench", "bench", "--model", "digits_cnn", "--variants", "fp32",
        "--device", "local", "--repetitions", "3", "--iterations", "5", "--min-seconds", "3",
        "--run-id", "killed", "--results", "R",
    ]  # fmt: skip
    process = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = tmp_path / "R" / "killed" / "progress"
    deadline = time.monotonic() + 300
    while not list(progress.glob("*.parquet")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    folder = tmp_path / "R" / "killed"
    (row,) = read_run(folder).to_dict("records")
    assert row["status"] == CellStatus.PARTIAL and row["error"] == "interrupted after 1 of 3 repetitions"
    assert row["repetitions"] == 1 and len(row["latency_samples_ms"]) >= 5

    history = load_history(tmp_path / "R")
    assert list(history["status"]) == [CellStatus.PARTIAL] and history.attrs["skipped"] == []
    shown = subprocess.run(
        [sys.executable, "-m", "pocketbench", "report", "killed", "--results", "R", "--format", "csv"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    (csv_row,) = pd.read_csv(io.StringIO(shown.stdout)).to_dict("records")
    assert csv_row["status"] == CellStatus.PARTIAL and len(json.loads(csv_row["latency_samples_ms"])) >= 5


def test_progress_is_replaced_by_the_cell_and_a_resumed_run_keeps_what_a_kill_left(tmp_path):
    key = {"model": "m", "variant": "fp32", "device": "local"}
    store = RunStore(tmp_path, "run")
    store.write_manifest({}, {})
    store.save_progress({**key, "status": "ok", "latency_samples_ms": [1.0]}, "interrupted after 1 of 2 repetitions")
    (partial,) = read_cells(store.folder).to_dict("records")
    assert partial["status"] == CellStatus.PARTIAL and partial["attempt"] == 1
    store.write_cell({**key, "status": "ok", "latency_samples_ms": [1.0, 2.0]})
    (done,) = read_cells(store.folder).to_dict("records")
    assert done["status"] == "ok" and done["attempt"] == 1  # never counted twice

    store.save_progress({**key, "status": "ok", "latency_samples_ms": [3.0]}, "interrupted after 1 of 2 repetitions")
    store.release()  # the process was killed: the kernel dropped its lock on the run
    resumed = RunStore(tmp_path, "run", resume=True)  # a resume turns what the kill left into a row
    assert not list((resumed.folder / "progress").glob("*.parquet"))
    rows = read_cells(resumed.folder)
    assert list(rows["status"]) == ["ok", CellStatus.PARTIAL] and list(rows["attempt"]) == [1, 2]
    assert list(rows.iloc[1]["latency_samples_ms"]) == [3.0]
