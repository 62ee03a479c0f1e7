"""Leaks and edges: a runner dies with the process that started it, scratch folders of killed
runs are removed, a full disk names its path and keeps the partial-data exit code, a factory that
would end the process is refused by name or becomes a failed cell, and serials are names."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from pocketbench.runner.process import reap_scratch

from tests.test_cli_fuzz import _run
from tests.test_interrupts_and_locks import _start, _wait_for

EXITING_MODEL = """
import sys


def make():
    sys.exit(3)
"""


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    """A process's command line; empty once it has exited (a short-lived child may go at any moment)."""
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_text()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow  # exports digits_cnn and starts a runner
def test_kill_9_of_bench_takes_its_runner_and_the_next_run_removes_its_scratch(tmp_path):
    """After kill -9 of a farm, its pocket_runner kept running and /tmp/pocketbench-* stayed."""
    proc = _start(["bench", "-m", "digits_cnn", "-v", "fp32", "--device", "local", "--repetitions", "1",
                   "--min-seconds", "60", "--batch-min-ms", "0", "--results", "R"], tmp_path)  # fmt: skip
    runners: list[int] = []

    def runner_started() -> bool:
        runners[:] = [p for p in _children(proc.pid) if "pocket_runner" in _cmdline(p)]
        return bool(runners)

    _wait_for(runner_started, 600, proc)
    scratch = [p for p in Path("/tmp").glob(f"pocketbench-*-{proc.pid}-*")]
    assert scratch, "the run's scratch folders carry its pid"
    proc.kill()
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while any(_alive(r) for r in runners) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(r) for r in runners), "the runner outlived the process that started it"
    removed = reap_scratch()
    assert all(not p.exists() for p in scratch) and set(scratch) <= set(removed)


def test_a_scratch_folder_of_a_live_process_is_kept(tmp_path):
    live = tmp_path / f"pocketbench-sweep-{os.getpid()}-abc"
    dead = tmp_path / "pocketbench-sweep-999999999-abc"
    other = tmp_path / "pocketbench-phone-xyz"  # no pid in its name: not a scratch folder of a run
    for folder in (live, dead, other):
        folder.mkdir()
    assert reap_scratch(tmp_path) == [dead]
    assert live.exists() and other.exists() and not dead.exists()


@pytest.mark.parametrize("model", ["os:abort", "sys:exit", "time:time", "os.path:join", "builtins:exit"])
def test_a_factory_that_would_end_the_process_is_refused_by_name(tmp_path, model):
    """`-m os:abort` killed the CLI (exit 134); `sys:exit` and `time:time` gave exit 2 with a TypeError."""
    code, _, err = _run(["bench", "-m", model, "-v", "fp32", "--device", "local", "--results", str(tmp_path / "R")])
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and "Python's standard library, not a model module" in lines[0], err
    assert not (tmp_path / "R").exists()


def test_a_user_factory_calling_sys_exit_is_a_failed_cell(tmp_path):
    (tmp_path / "exits.py").write_text(EXITING_MODEL)
    code, _, err = _run(["bench", "-m", f"{tmp_path / 'exits.py'}:make", "-v", "fp32", "--device", "local",
                         "--results", str(tmp_path / "R")])  # fmt: skip
    assert code == 4, err
    assert "its factory raised SystemExit" in err and "Traceback" not in err


@pytest.mark.parametrize("spec", ["adb:../../../../etc/passwd", "usb:a/b", "tcp:..:5555", "adb:" + "s" * 65])
def test_serials_are_validated_like_every_other_name(tmp_path, spec):
    code, _, err = _run(["bench", "-m", "digits_cnn", "-v", "fp32", "--device", spec, "--results", str(tmp_path / "R")])
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("plan:")]
    assert code == 1 and len(lines) == 1 and "serial" in lines[0] and "is not allowed" in lines[0], err
    assert not (tmp_path / "R").exists()


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs: a real file system that fills up (root only: mount)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True, check=False
        ).returncode
        != 0
    ):
        pytest.skip("mounting a small tmpfs needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow  # exports and measures digits_cnn
def test_a_full_disk_names_the_path_and_keeps_the_partial_exit_code(tmp_path, small_disk):
    """Was `OSError: No space left on device`, exit 1, though cells were saved."""
    results = small_disk / "R"
    proc = _start(["bench", "-m", "digits_cnn", "-v", "fp32,int8", "--device", "local", "--repetitions", "3",
                   "--iterations", "20", "--results", str(results), "--run-id", "full"], tmp_path)  # fmt: skip
    _wait_for(lambda: any((results / "full" / "progress").glob("*.parquet")), 600, proc)
    filler = small_disk / "filler"
    with open(filler, "wb") as handle:  # fill the disk the run writes to
        try:
            while True:
                handle.write(b"\0" * 65536)
        except OSError:
            pass
    _, err = proc.communicate(timeout=600)
    lines = [line for line in err.splitlines() if line.strip().startswith("error:")]
    assert proc.returncode == 4, err
    assert len(lines) == 1 and "No space left on device" in lines[0] and str(results / "full") in lines[0], err
    assert "cell(s) measured before it are kept in" in lines[0]
    assert "Traceback" not in err


def test_sigterm_runs_cleanup_like_ctrl_c(tmp_path):
    """SIGTERM stops a command with one line and 128 + 15, removing its scratch folders."""
    (tmp_path / "farm.toml").write_text(
        'variants = ["fp32"]\nmodels = ["digits_cnn"]\n[[devices]]\nname = "here"\nserial = "local"\n'
    )
    proc = _start(["farm", "farm.toml", "--results", "R"], tmp_path)
    _wait_for(lambda: any(Path("/tmp").glob(f"pocketbench-farm-{proc.pid}-*")), 300, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "Traceback" not in err, err
    assert [line for line in err.splitlines() if line.strip()][-1].startswith("interrupted: ")
    assert not list(Path("/tmp").glob(f"pocketbench-farm-{proc.pid}-*"))
