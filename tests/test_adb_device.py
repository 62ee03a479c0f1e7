"""AdbDevice against the emulated phone over real sockets: both routes, deploy, runs, faults.

Every test uses the real x86_64 runner bundle (what an x86_64 Android phone gets) and real .pte
files; faults come from the emulator.
"""

from __future__ import annotations

import dataclasses
import hashlib
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pocketbench.devices.adb.deploy import RUNS_DIR, WORK_ROOT
from pocketbench.devices.adb.device import AdbDevice
from pocketbench.devices.adb.lease import DeviceLease
from pocketbench.devices.bundle.manifest import read_bundle
from pocketbench.errors import DeviceError, PocketbenchError
from pocketbench.runner import tensorfile
from pocketbench.runner.report import BenchJob

from tests.runner_support import android_bundle, host_runner, input_sets, tiny_ptes, write_inputs

# A bundled runner runs as its glibc loader: that is the executable the phone's process table shows.
RUNNER_PROCESS = "ld-linux-x86-64.so.2"


@pytest.fixture(autouse=True)
def adb_key(tmp_path_factory, monkeypatch):
    """A private adb key per test session (never the user's ~/.android)."""
    key = tmp_path_factory.getbasetemp() / "adb-key" / "adbkey"
    monkeypatch.setenv("POCKETBENCH_ADB_KEY", str(key))
    return key


@pytest.fixture(scope="module")
def ptes(tmp_path_factory):
    android_bundle("x86_64")  # what the emulated x86_64 phone runs
    return tiny_ptes(tmp_path_factory.getbasetemp() / "runner-ptes")  # shared with the runner tests


@pytest.fixture
def inputs(tmp_path):
    return write_inputs(tmp_path / "inputs.pbtf", input_sets(3, seed=1))


def device_for(emu, **kw) -> AdbDevice:
    kw.setdefault("timeout_floor_s", 10)
    kw.setdefault("iteration_budget_s", 0.05)
    kw.setdefault("reconnect_wait_s", 20)
    return AdbDevice(f"tcp:{emu.host}:{emu.port}", **kw)


def job_for(pte: Path, inputs: Path, tmp_path: Path, **kw) -> BenchJob:
    kw.setdefault("iterations", 20)
    kw.setdefault("warmup", 2)
    return BenchJob(pte=pte, inputs=inputs, outputs=tmp_path / "outputs.pbtf", **kw)


def phone_processes(emu) -> list[int]:
    return emu.sandbox.pids()


def wait_for(predicate, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_identity_and_shell_seam(phone):
    device = device_for(phone)
    info = device.info()
    assert (info.kind, info.model, info.os) == ("adb", "Google Pixel 8", "Android 14 (API 34)")
    assert info.extra["serial"] == phone.serial
    assert info.extra["battery_status"] == "Discharging"
    assert info.extra["cpu_mask"]
    result = device.shell("echo out; echo err >&2; exit 7")
    assert (result.output, result.exit_code) == ("out\nerr\n", 7)
    assert device.health_check() == (phone.root / ".boot_id").read_text().strip()
    device.close()


def test_run_matches_the_local_runner_and_deploys_once(phone, ptes, inputs, tmp_path):
    device = device_for(phone)
    pte = ptes["fp32"].path
    threads, _ = device.core_threads(None)  # the phone's policy: one thread per performance core
    report = device.benchmark(dataclasses.replace(job_for(pte, inputs, tmp_path), threads=threads))
    assert report.ok, report.error
    assert len(report.iterations_ns) == 20
    assert report.threads == threads == len(device.info().extra["big_cores"].split(","))
    assert report.raw["device_columns"]["cpu_mask"] == device.info().extra["cpu_mask"]
    assert report.raw["device_columns"]["interruptions"] == 0
    local = subprocess.run(
        [str(host_runner()), "--model", str(pte), "--inputs", str(inputs), "--iterations", "1",
         "--outputs", str(tmp_path / "local.pbtf"), "--json", str(tmp_path / "local.json")],
        capture_output=True, check=True,
    )  # fmt: skip
    assert local.returncode == 0
    got, want = tensorfile.read(tmp_path / "outputs.pbtf"), tensorfile.read(tmp_path / "local.pbtf")
    assert [[a.tobytes() for a in s] for s in got] == [[a.tobytes() for a in s] for s in want]
    sha = hashlib.sha256(pte.read_bytes()).hexdigest()
    on_phone = phone.root / "data/local/tmp/pocketbench" / sha / "model.pte"
    assert on_phone.read_bytes() == pte.read_bytes()
    mtime = on_phone.stat().st_mtime_ns
    device.close()  # releases the lease: one device object per phone at a time, even in one process
    # A new session (fresh process state) finds the verified file and does not push it again.
    again = device_for(phone)
    assert again.benchmark(job_for(pte, inputs, tmp_path)).ok
    assert on_phone.stat().st_mtime_ns == mtime
    assert list((phone.root / RUNS_DIR.lstrip("/")).iterdir()) == []  # run folders cleaned up
    again.close()


def test_corrupt_file_on_the_phone_is_pushed_again(phone, ptes, inputs, tmp_path):
    pte = ptes["int8"].path
    sha = hashlib.sha256(pte.read_bytes()).hexdigest()
    # a truncated earlier push
    planted = phone.write_file(f"/data/local/tmp/pocketbench/{sha}/model.pte", pte.read_bytes()[:1000])
    assert device_for(phone).benchmark(job_for(pte, inputs, tmp_path)).ok
    assert planted.read_bytes() == pte.read_bytes()


def test_stale_runs_and_temp_pushes_are_swept(phone, ptes, inputs, tmp_path):
    device = device_for(phone)
    dead = f"{RUNS_DIR}/dead"
    device.shell(f"mkdir -p {dead} && cat /proc/sys/kernel/random/boot_id > {dead}/boot_id")
    device.shell(f"(sleep 300 >/dev/null 2>&1 & echo $! > {dead}/runner.pid)")
    device.shell(f"mkdir -p {WORK_ROOT}/abc && touch {WORK_ROOT}/abc/.1.tmp")
    assert len(phone_processes(phone)) == 1
    assert device.benchmark(job_for(ptes["fp32"].path, inputs, tmp_path)).ok
    assert not (phone.root / RUNS_DIR.lstrip("/") / "dead").exists()
    assert not (phone.root / WORK_ROOT.lstrip("/") / "abc/.1.tmp").exists()
    assert wait_for(lambda: phone_processes(phone) == [])


def test_connection_dropped_mid_push_is_redone_from_scratch(phone, ptes, inputs, tmp_path):
    pte = ptes["fp32"].path
    phone.faults.drop_after_sync_bytes = 200_000  # the runner push (MBs) breaks once
    cleared = threading.Timer(0.0, lambda: None)

    def clear_after_first_drop():
        # the fault fires once per connection; clear it once the first push died
        wait_for(lambda: not any(p.name.startswith(".") for p in (phone.root / "data/local/tmp").rglob("*.tmp")), 5)
        phone.faults.clear()

    cleared = threading.Thread(target=clear_after_first_drop)
    device = device_for(phone)
    device.health_check()
    cleared.start()
    report = device.benchmark(job_for(pte, inputs, tmp_path))
    cleared.join()
    assert report.ok, report.error
    bundle = read_bundle(android_bundle("x86_64"))
    on_phone = phone.root / "data/local/tmp/pocketbench" / bundle.bundle_id
    for f in bundle.files:  # every file whole, though the link broke mid-push
        assert hashlib.sha256((on_phone / f.name).read_bytes()).hexdigest() == f.sha256


def test_connection_dropped_mid_run_reconnects_and_finishes(phone, ptes, inputs, tmp_path):
    device = device_for(phone)
    device.health_check()
    threading.Timer(0.8, phone.drop_connections).start()
    report = device.benchmark(job_for(ptes["fp32"].path, inputs, tmp_path, iterations=1, min_seconds=1.5))
    assert report.ok, report.error
    assert report.raw["device_columns"]["interruptions"] == 0
    assert sum(report.iterations_ns) >= 1.5e9  # the same run finished: it survived the drop


def test_reboot_mid_run_is_an_interruption_retried_once(phone, ptes, inputs, tmp_path):
    device = device_for(phone)
    boot = device.health_check()
    job = job_for(ptes["fp32"].path, inputs, tmp_path, iterations=1, min_seconds=1.0)
    device.benchmark(job)  # deployed; the next run only starts the runner
    threading.Timer(0.5, lambda: phone.reboot(down_s=1.0)).start()
    report = device.benchmark(job)
    assert report.ok, report.error
    assert report.raw["device_columns"]["interruptions"] == 1
    assert device.health_check() != boot


def test_runner_hang_is_killed_on_the_phone_after_the_derived_timeout(phone, ptes, inputs, tmp_path):
    device = device_for(phone, timeout_floor_s=2)
    # At least 2 s of timing, so the emulator's process watcher (10 ms polls) always catches the
    # runner alive: a tiny model otherwise finishes first on an idle machine.
    job = job_for(ptes["fp32"].path, inputs, tmp_path, min_seconds=2.0)
    phone.faults.hang_process(RUNNER_PROCESS)
    # When the wait for the runner began and when its kill was sent, and every shell round trip:
    # pushing the files before the wait takes what the machine's load makes it take, so only the
    # wait is timed, and its overshoot is bounded by what one poll took here, not by an idle machine.
    marks: dict[str, float] = {}
    polls: list[float] = []
    wait, kill, shell = device._wait_for_exit, device._kill, device.transport.shell

    def timed_shell(*args, **kwargs):
        started = time.monotonic()
        try:
            return shell(*args, **kwargs)
        finally:
            polls.append(time.monotonic() - started)

    device._wait_for_exit = lambda *a: (marks.setdefault("wait", time.monotonic()), wait(*a))[1]
    device._kill = lambda *a: (marks.setdefault("kill", time.monotonic()), kill(*a))[1]
    device.transport.shell = timed_shell
    report = device.benchmark(job)
    timeout_s = device.run_timeout_s(job)
    assert report.status == "timeout"
    assert f"{timeout_s:.0f} s" in report.error
    waited = marks["kill"] - marks["wait"]
    # Not before the timeout; after it, at most one more poll: its round trip and its ≤ 1 s sleep,
    # which wakes up late by as much again on a machine this slow.
    assert timeout_s <= waited <= timeout_s + 2 * max(polls) + 1.5, (waited, timeout_s, max(polls))
    assert wait_for(lambda: phone_processes(phone) == [], 5 + max(polls)), "the hung runner was left on the phone"
    assert not (tmp_path / "outputs.pbtf").exists()


def test_runner_crash_is_a_failure_row_with_its_exit_and_no_retry(phone, ptes, inputs, tmp_path):
    device = device_for(phone)
    # SIGKILL, not SIGSEGV: the runner turns its own segfaults into a JSON failure report, so an
    # uncatchable signal is what "the process died" looks like (as when the OOM killer strikes).
    phone.faults.crash_process(RUNNER_PROCESS, sig=signal.SIGKILL)
    started = []
    orig = device._launch
    device._launch = lambda command: (started.append(1), orig(command))[1]
    report = device.benchmark(job_for(ptes["fp32"].path, inputs, tmp_path, min_seconds=2.0))
    assert report.status == "crashed"
    assert "killed by signal SIGKILL (9, exit status 137) from outside" in report.error
    assert started == [1]


def test_runner_stderr_reaches_the_failure_row(phone, ptes, inputs, tmp_path):
    bad = tmp_path / "bad.pte"
    bad.write_bytes(b"not a program" * 100)
    report = device_for(phone).benchmark(job_for(bad, inputs, tmp_path))
    assert report.status == "load_failed"
    assert report.error


def test_disk_full_is_a_clear_error_and_nothing_half_written(phone, ptes, inputs, tmp_path):
    phone.faults.disk_free_bytes = 100_000
    job = job_for(ptes["fp32"].path, inputs, tmp_path)
    with pytest.raises(DeviceError, match=r"out of space .* free space on the phone"):
        device_for(phone).benchmark(job)
    assert not job.outputs.exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert list((phone.root / "data/local/tmp").rglob("*.tmp")) == []


def test_unauthorized_names_the_serial_and_the_fix(phone_factory):
    emu = phone_factory(require_auth=True)
    device = device_for(emu)
    device.transport.auth_timeout_s = 0.5
    with pytest.raises(PocketbenchError, match=rf"phone tcp:127.0.0.1:{emu.port} is unauthorized: .*Allow"):
        device.info()


def test_offline_names_the_address_and_the_fix(phone_factory):
    emu = phone_factory()
    emu.stop()
    with pytest.raises(PocketbenchError, match=rf"tcp:127.0.0.1:{emu.port} .*offline.*check the address"):
        device_for(emu, reconnect_wait_s=0).benchmark(BenchJob(Path("x.pte"), Path("x.pbtf")))


@pytest.mark.parametrize(
    "name",
    [
        "my model.pte",
        "it's.pte",
        "a;touch CANARY;.pte",
        "$(touch CANARY).pte",
        "`touch CANARY`.pte",
        "../../CANARY.pte",
    ],
)
def test_hostile_model_names_are_never_executed(phone, ptes, inputs, tmp_path, name):
    folder = tmp_path / "models dir; $(touch CANARY)"
    folder.mkdir()
    hostile = folder / name.replace("/", "_") if "/" in name else folder / name
    hostile.write_bytes(ptes["fp32"].path.read_bytes())
    report = device_for(phone).benchmark(job_for(hostile, inputs, tmp_path))
    assert report.ok, report.error
    for root in (phone.root, Path("/"), Path.cwd(), tmp_path):
        assert not list(root.glob("**/CANARY")) if root != Path("/") else not Path("/CANARY").exists()
    assert not list(phone.root.rglob("*CANARY*"))


def test_lease_blocks_a_second_process_until_released(phone, tmp_path):
    serial = phone.serial
    code = (
        "import sys, time; from pocketbench.devices.adb.lease import DeviceLease;"
        f"lease = DeviceLease({serial!r}).acquire(); print('held', flush=True); sys.stdin.readline()"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(
            DeviceError, match=rf"phone {serial} is in use by another pocketbench process \(pid {holder.pid}"
        ):
            DeviceLease(serial, wait_s=0.3).acquire()
        threading.Timer(0.3, lambda: holder.stdin.close()).start()
        with DeviceLease(serial, wait_s=10) as lease:  # waits, then gets it once the holder exits
            assert lease.held
    finally:
        holder.kill()
        holder.wait()


def test_adb_server_route_runs_the_same_job(phone, host_adb, ptes, inputs, tmp_path, monkeypatch):
    assert "connected" in host_adb.connect(phone).stdout
    device = AdbDevice(
        f"adb:{phone.address}", server_port=host_adb.server_port, timeout_floor_s=10, iteration_budget_s=0.05
    )
    info = device.info()
    assert info.extra["serial"] == phone.serial
    report = device.benchmark(job_for(ptes["int8"].path, inputs, tmp_path))
    assert report.ok, report.error
    assert tensorfile.read(tmp_path / "outputs.pbtf")
    phone.faults.disk_free_bytes = 1000
    other = tmp_path / "other.pte"
    other.write_bytes(ptes["fp32"].path.read_bytes() + b"\0")
    with pytest.raises(DeviceError, match=r"No space left on device|out of space"):
        device.benchmark(job_for(other, inputs, tmp_path))
    device.close()
