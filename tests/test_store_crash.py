"""SIGKILL at any moment leaves only readable files, and the next run never touches the last one."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from pocketbench.atomic import LOCK_NAME, write_new_bytes
from pocketbench.results.history import load_history
from pocketbench.results.store import RunStore, cell_files, load_run, read_cells


def _digest_tree(root: Path) -> dict[str, str]:
    files = (p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _assert_every_file_readable(root: Path) -> None:
    """Every file a reader would open parses; anything else is a leftover temp file."""
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        if path.name.startswith("."):  # a write killed half-way, or the run's lock (a writer held it)
            assert path.name.endswith(".tmp") or path.name == LOCK_NAME, path
        elif path.suffix == ".parquet":
            pd.read_parquet(path)
        elif path.suffix == ".json":
            json.loads(path.read_text())
        else:
            raise AssertionError(f"unexpected file {path}")


def _wait_for(predicate, timeout: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert process.poll() is None, process.stderr.read() if process.stderr else "exited early"
        assert time.monotonic() < deadline, "timed out waiting for the sweep"
        time.sleep(0.05)


def _bench(results: Path, variants: str, iterations: int) -> list[str]:
    return [
        sys.executable, "-m", "pocketbench", "bench", "--model", "digits_cnn", "--variants", variants,
        "--device", "local", "--iterations", str(iterations), "--warmup", "1", "--results", str(results),
    ]  # fmt: skip


@pytest.mark.slow  # real sweeps in subprocesses, one killed mid-cell
def test_sigkill_mid_sweep_leaves_every_file_readable_and_the_next_run_fine(tmp_path):
    results = tmp_path / "results"
    process = subprocess.Popen(
        _bench(results, "fp32,int8,int8-dynamic,int8-per-tensor", 400),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: any(results.glob("*/cells/*.parquet")), 600, process)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    (killed,) = list(results.iterdir())
    assert not (killed / "results.parquet").exists()  # it really died mid-sweep
    _assert_every_file_readable(results)
    frame, manifest, _ = load_run(killed.name, results)
    assert manifest["devices"]["local"]["kind"] == "local"
    # Cells under way when it died are there too, from the repetitions they finished (progress/).
    cut = frame[frame["status"] == "partial"]
    assert len(frame) >= len(cell_files(killed)) >= 1
    assert set(frame["status"]) <= {"ok", "partial"}
    assert (frame["latency_samples_ms"].map(len) == 400 * frame["repetitions"]).all()  # every repetition kept
    shown = subprocess.run(
        [sys.executable, "-m", "pocketbench", "report", killed.name, "--results", str(results), "--format", "md"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    partial = f" ({len(cut)} cut short: partial)" if len(cut) else ""
    note = f"interrupted: run {killed.name} stopped before it finished; its {len(frame)} saved cell(s) are shown"
    assert note + partial in shown
    before = _digest_tree(killed)

    finished = subprocess.run(_bench(results, "fp32", 5), capture_output=True, text=True, check=False)
    assert finished.returncode == 0, finished.stderr
    assert _digest_tree(killed) == before
    history = load_history(results)
    assert history["run_id"].nunique() == 2 and not history.attrs["skipped"]
    _assert_every_file_readable(results)


WRITER = """
import os, signal, sys
from pathlib import Path
import pocketbench.atomic
from pocketbench.results.store import RunStore

if len(sys.argv) > 2:  # die at the N-th fsync: inside a write, between its steps
    calls, real_fsync = [0], os.fsync
    def fsync_then_die(fd):
        real_fsync(fd)
        calls[0] += 1
        if calls[0] == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)
    pocketbench.atomic.os.fsync = fsync_then_die
store = RunStore(Path(sys.argv[1]))
store.write_manifest({"harness": True}, {})
samples = [float(i) for i in range(200_000)]  # big rows: the kill often lands inside a write
for i in range(10_000):
    store.write_cell({"model": "m", "variant": f"v{i % 3}", "device": "local", "status": "ok",
                      "latency_samples_ms": samples})
"""


def test_sigkill_at_random_moments_of_a_write_loop(tmp_path):
    rng = random.Random(8)
    for _ in range(6):
        written = len(list(tmp_path.glob("*/cells/*.parquet")))
        process = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stderr=subprocess.PIPE)
        _wait_for(lambda n=written: len(list(tmp_path.glob("*/cells/*.parquet"))) > n, 120, process)
        time.sleep(rng.uniform(0.0, 0.5))
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    _assert_every_file_readable(tmp_path)
    runs = sorted(tmp_path.iterdir())
    assert len(runs) == 6
    for run in runs:
        cells = read_cells(run)
        assert len(cells) == len(cell_files(run)) >= 1
        # Attempts count per cell, in write order.
        assert list(cells.groupby("variant")["attempt"].max()) == list(cells.groupby("variant").size())
    assert len(load_history(tmp_path)) == sum(len(cell_files(r)) for r in runs)


@pytest.mark.parametrize("fsync_call", [3, 4, 5, 6])
def test_sigkill_between_the_steps_of_a_write(tmp_path, fsync_call):
    """fsyncs: 1-2 the manifest (file, dir); then per cell: 3 its temp file, 4 its directory entry."""
    killed = subprocess.run([sys.executable, "-c", WRITER, str(tmp_path), str(fsync_call)], check=False)
    assert killed.returncode == -signal.SIGKILL
    _assert_every_file_readable(tmp_path)
    (run,) = list(tmp_path.iterdir())
    cells = read_cells(run)
    assert len(cells) == (fsync_call - 1) // 2 - 1 + (fsync_call % 2 == 0)
    temps = list(run.glob("cells/.*.tmp"))
    assert len(temps) == (1 if fsync_call % 2 else 0)  # died before its link: only a temp file
    store = RunStore(tmp_path)  # the next run starts clean beside it
    store.write_manifest({}, {})
    store.write_cell({"model": "m", "variant": "v0", "device": "local", "status": "ok"})
    assert len(load_history(tmp_path)) == len(cells) + 1


def test_a_cell_file_is_never_replaced(tmp_path):
    target = tmp_path / "cell.parquet"
    write_new_bytes(target, b"first")
    with pytest.raises(FileExistsError):
        write_new_bytes(target, b"second")
    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["cell.parquet"]  # no temp file left behind


def test_cell_files_name_device_cell_and_attempt(tmp_path):
    store = RunStore(tmp_path)
    store.write_manifest({}, {})
    row = {"model": "path/my model.py:make", "variant": "int8", "device": "tcp:127.0.0.1:5601", "status": "ok"}
    first = store.write_cell(row)
    retry = store.write_cell({**row, "status": "ok"})
    assert first.name == "0001_tcp-127.0.0.1-5601_path-my-model.py-make_int8_a1.parquet"
    assert retry.name.endswith("_a2.parquet")
    assert list(read_cells(store.folder)["attempt"]) == [1, 2]
