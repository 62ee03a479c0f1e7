"""Runner bundles on emulated phones: one content-addressed folder, pushed once; broken bundles
fail their rows by name; `pocketbench devices --check` says PASS or FAIL with the reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pocketbench.cli import app
from pocketbench.devices.adb.deploy import WORK_ROOT
from pocketbench.devices.bundle.manifest import MANIFEST, read_bundle
from typer.testing import CliRunner

from tests.runner_support import altered_bundle, android_bundle

runner = CliRunner()


@pytest.fixture(autouse=True)
def adb_key(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("POCKETBENCH_ADB_KEY", str(tmp_path_factory.getbasetemp() / "adb-key" / "adbkey"))


@pytest.fixture(scope="module")
def x86_64_bundle() -> Path:
    return android_bundle("x86_64")


def bench(tmp_path: Path, device: str, variants: str = "fp32", results: str = "results"):
    args = ["bench", "--model", "digits_cnn", "--variants", variants, "--iterations", "3", "--warmup", "1"]
    args += ["--repetitions", "1", "--device", device, "--results", str(tmp_path / results), "--json"]
    result = runner.invoke(app, args)
    return result, json.loads(result.stdout) if result.stdout.strip() else None


def test_the_bundle_is_one_folder_on_the_phone_pushed_once(phone, x86_64_bundle, tmp_path):
    bundle = read_bundle(x86_64_bundle)
    result, run = bench(tmp_path, f"tcp:{phone.address}", variants="fp32,int8")
    assert result.exit_code == 0, result.stderr
    first = run["rows"]
    assert [r["status"] for r in first] == ["ok", "ok"] and first[0]["device_abi"] == "x86_64"
    assert first[0]["device_runner"] == f"bundle x86_64 {bundle.bundle_id[:12]}"
    assert first[0]["device_runner_pushed_bytes"] == bundle.total_bytes
    assert first[0]["device_runner_deploy_s"] > 0
    folder = phone.root / WORK_ROOT.lstrip("/") / bundle.bundle_id
    assert sorted(p.name for p in folder.iterdir()) == sorted([MANIFEST, *(f.name for f in bundle.files)])
    assert (folder / MANIFEST).read_bytes() == (x86_64_bundle / MANIFEST).read_bytes()
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    again, run2 = bench(tmp_path, f"tcp:{phone.address}", variants="fp32,int8", results="results2")
    assert again.exit_code == 0, again.stderr
    assert [r["device_runner_pushed_bytes"] for r in run2["rows"]] == [0, 0]  # a second run pushes nothing
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == mtimes


def test_a_bundle_missing_a_library_fails_its_row_naming_the_file(phone, x86_64_bundle, tmp_path, monkeypatch):
    broken = altered_bundle(x86_64_bundle, tmp_path / "bundle", drop="libexecutorch_kernels_quantized.so")
    monkeypatch.setenv("POCKETBENCH_DEVICE_RUNNER", str(broken))
    result, run = bench(tmp_path, f"tcp:{phone.address}")
    assert result.exit_code == 4 and run is not None, (result.exception, result.stderr[-3000:])
    (row,) = run["rows"]
    assert row["status"] != "ok"
    assert "loader exited 127: missing libexecutorch_kernels_quantized.so" in row["error"]


def test_a_corrupt_bundle_file_fails_its_row_naming_the_file(phone, x86_64_bundle, tmp_path, monkeypatch):
    damaged = tmp_path / "bundle"
    shutil.copytree(x86_64_bundle, damaged)
    with open(damaged / "libm.so.6", "r+b") as handle:
        handle.seek(4096)
        handle.write(b"\xde\xad\xbe\xef")
    monkeypatch.setenv("POCKETBENCH_DEVICE_RUNNER", str(damaged))
    result, run = bench(tmp_path, f"tcp:{phone.address}")
    assert result.exit_code == 4
    (row,) = run["rows"]
    assert row["status"] == "device_error"
    assert "libm.so.6 does not match its sha256" in row["error"] and "just build-runner-android" in row["error"]
    assert not (phone.root / WORK_ROOT.lstrip("/") / read_bundle(damaged).bundle_id).exists()  # nothing pushed


def check(*specs: str):
    args = ["devices", "--check"]
    for spec in specs:
        args += ["--device", spec]
    return runner.invoke(app, args)


def test_devices_lists_the_runner_and_check_passes(phone, x86_64_bundle, monkeypatch):
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", "1")  # no adb server: only the tcp phone is seen
    result = check(f"tcp:{phone.address}")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "android-x86_64" in result.stdout  # the runner column
    (line,) = [ln for ln in result.stdout.splitlines() if ln.startswith(f"tcp:{phone.address}: ")]
    assert line.startswith(f"tcp:{phone.address}: PASS (x86_64, runner bundle x86_64")
    assert "fp32 and int8 outputs match this computer's" in line


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        # (not a glibc library: the x86_64 phone sees this computer's /lib, where glibc's loader
        # looks last; the arm64 phone hides its libraries, see test_android_arm64.py)
        (
            {"drop": "libexecutorch_threadpool.so"},
            "FAIL: fp32 run failed: loader exited 127: missing libexecutorch_threadpool.so",
        ),
        ({"not_executable": "ld-linux-x86-64.so.2"}, "FAIL: fp32 run failed: exec denied in /data/local/tmp"),
    ],
)
def test_check_fails_with_the_reason_when_the_runner_cannot_start(
    phone, x86_64_bundle, tmp_path, monkeypatch, breakage, reason
):
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", "1")
    monkeypatch.setenv("POCKETBENCH_DEVICE_RUNNER", str(altered_bundle(x86_64_bundle, tmp_path / "b", **breakage)))
    result = check(f"tcp:{phone.address}")
    assert result.exit_code == 1
    (line,) = [ln for ln in result.stdout.splitlines() if ln.startswith(f"tcp:{phone.address}: ")]
    assert reason in line, line


def test_just_bench_learns_what_the_attached_phone_needs(phone, tmp_path, monkeypatch, capsys):
    """The helper `just bench` runs first: the recipe for the phone's missing bundle, or one line."""
    from pocketbench.devices.adb import runner_choice, runner_plan

    monkeypatch.setattr(runner_choice, "BUILD", tmp_path / "build")  # nothing built here
    assert runner_plan.main(["-m", "digits_cnn", "-d", f"tcp:{phone.address}"]) == 0
    assert capsys.readouterr().out.split() == ["build-runner-android-x86_64"]
    tools = tmp_path / "bin"
    tools.mkdir()
    monkeypatch.setenv("PATH", str(tools))  # a host without a C++ compiler
    assert runner_plan.main(["--device", f"tcp:{phone.address}"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"tcp:{phone.address} (x86_64)" in line and "apt-get install g++" in line


def test_a_phone_without_a_runner_for_its_abi_stops_the_run_before_any_work(phone_factory, tmp_path):
    """Issue 14 item 4: each phone's runner is resolved before any export, push or run folder."""
    odd = phone_factory(props={"ro.product.cpu.abi": "armeabi-v7a", "ro.product.cpu.abilist": "armeabi-v7a"})
    result, run = bench(tmp_path, f"tcp:{odd.address}")
    assert result.exit_code == 1 and run is None
    message = str(result.exception)
    assert message.startswith("nothing was run: ") and f"tcp:{odd.address}" in message and "armeabi-v7a" in message
    assert not (tmp_path / "results").exists()
    assert not (odd.root / WORK_ROOT.lstrip("/")).exists()  # nothing pushed


def test_devices_check_finds_a_phone_served_by_pocketbench_emulator(x86_64_bundle, monkeypatch):
    """Issue 13's "Done when": `pocketbench devices --check`, as typed, finds the phone that
    `pocketbench emulator --port P` serves (as adb finds its emulators) and passes; it is gone
    from the list once stopped."""
    import subprocess
    import sys

    from pocketbench.emulator.fixtures import free_port

    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", "1")  # no adb server
    port = free_port()
    served = subprocess.Popen(
        [sys.executable, "-m", "pocketbench", "emulator", "--port", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert "listening on" in served.stdout.readline()
        result = check()
        assert result.exit_code == 0, result.stdout
        assert f"tcp:127.0.0.1:{port}: PASS" in result.stdout
    finally:
        served.send_signal(2)
        served.wait(10)
    after = runner.invoke(app, ["devices"])
    assert f"tcp:127.0.0.1:{port}" not in after.stdout
