"""What real phones do differently, on emulated ones: a runner file damaged on the phone is named,
re-pushed and the cell retried; Android's app seccomp filter is hedged against and a SIGSYS death
named; other personas come from data (--props, --clusters); `devices` lists a phone once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pocketbench import api
from pocketbench.cli import app
from pocketbench.devices.adb.deploy import WORK_ROOT
from pocketbench.devices.adb.device import AdbDevice
from pocketbench.devices.bundle.manifest import read_bundle, sha256_file
from pocketbench.emulator.fixtures import free_port
from pocketbench.emulator.persona import read_props
from pocketbench.report.cautions import warnings
from typer.testing import CliRunner

from tests.runner_support import android_bundle, unhedged_bundle

runner = CliRunner()
LIB = "libexecutorch_kernels_quantized.so"


@pytest.fixture(scope="module")
def x86_64_bundle() -> Path:
    return android_bundle("x86_64")  # not ABI-specific: the fast bundle


@pytest.fixture(autouse=True)
def adb_key(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("POCKETBENCH_ADB_KEY", str(tmp_path_factory.getbasetemp() / "adb-key" / "adbkey"))
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", "1")  # no adb server: only the phones named


def measure(device, variant: str, tmp_path: Path):
    frame = api.bench("digits_cnn", variant, device, iterations=3, warmup=1, repetitions=1, results=tmp_path)
    return frame, frame.iloc[0]


def test_a_phone_file_damaged_mid_run_is_re_pushed_and_the_cell_retried(phone, x86_64_bundle, tmp_path):
    folder = phone.root / WORK_ROOT.lstrip("/") / read_bundle(x86_64_bundle).bundle_id
    device = AdbDevice(f"tcp:{phone.address}")
    try:
        _, first = measure(device, "fp32", tmp_path)
        assert first["status"] == "ok" and first["device_repairs"] is None
        with open(folder / LIB, "r+b") as handle:  # the phone's copy goes bad between two cells
            handle.write(b"garbage!")
        frame, row = measure(device, "int8", tmp_path)
    finally:
        device.close()
    assert row["status"] == "ok", row["error"]
    assert row["device_repairs"] == f"re-pushed {LIB} (the phone's copy was damaged)" and row["device_retried"]
    assert sha256_file(folder / LIB) == sha256_file(x86_64_bundle / LIB)
    (note,) = [n for n in warnings(frame) if n.startswith("repaired:")]
    assert f"re-pushed {LIB} (the phone's copy was damaged); the runner could not start before" in note
    # A file gone between two runs is put back when the next run starts, and said so.
    (folder / LIB).unlink()
    args = ["bench", "-m", "digits_cnn", "-v", "int8", "--iterations", "3", "--warmup", "1", "--repetitions", "1"]
    result = runner.invoke(app, [*args, "-d", f"tcp:{phone.address}", "--results", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.stderr
    (again,) = json.loads(result.stdout)["rows"]
    assert again["device_repairs"] == f"re-pushed {LIB} (the phone's copy was missing)"
    assert not again["device_retried"]
    assert f"repaired: digits_cnn int8 on tcp:{phone.address}: re-pushed {LIB}" in " ".join(result.stderr.split())


def check(*specs: str):
    args = ["devices", "--check"]
    for spec in specs:
        args += ["--device", spec]
    return runner.invoke(app, args)


def test_the_bundle_passes_under_android_app_seccomp_and_sigsys_is_named_without_the_hedge(
    phone_factory, x86_64_bundle, tmp_path, monkeypatch
):
    strict = phone_factory(seccomp="android-app")
    result = check(f"tcp:{strict.address}")
    assert result.exit_code == 0, result.stdout
    assert f"tcp:{strict.address}: PASS" in result.stdout
    # The launcher without GLIBC_TUNABLES=glibc.pthread.rseq=0: the filter kills the runner.
    monkeypatch.setenv("POCKETBENCH_DEVICE_RUNNER", str(unhedged_bundle(x86_64_bundle, tmp_path / "unhedged")))
    failed = check(f"tcp:{strict.address}")
    assert failed.exit_code == 1
    (line,) = [ln for ln in failed.stdout.splitlines() if ln.startswith(f"tcp:{strict.address}: ")]
    assert "FAIL: fp32 run failed: killed by seccomp: syscall rseq (SIGSYS)" in line
    assert "GLIBC_TUNABLES=glibc.pthread.rseq=0" in line
    _, row = measure(f"tcp:{strict.address}", "fp32", tmp_path)
    assert row["status"] == "crashed" and row["error"].startswith("killed by seccomp: syscall rseq (SIGSYS)")


@pytest.fixture
def wide(monkeypatch):
    """The devices table one line per row (no cell wraps)."""
    from pocketbench import cli

    monkeypatch.setattr(cli.stdout, "width", 400)


def test_personas_from_a_props_file(phone_factory, tmp_path, wide):
    props = tmp_path / "props"
    # An x86_64 image that also runs arm code (a native bridge), as `adb shell getprop` prints it.
    props.write_text("[ro.product.cpu.abilist]: [x86_64,x86,arm64-v8a,armeabi-v7a]\n[ro.product.model]: [Fold]\n")
    multi = phone_factory(props=read_props(props))
    info = AdbDevice(f"tcp:{multi.address}").info()
    assert (info.abi, info.model) == ("x86_64", "Google Fold")
    # A 32-bit-only phone: listed with one line saying there is no runner for it.
    props.write_text("# a 32-bit phone\nro.product.cpu.abi=armeabi-v7a\nro.product.cpu.abilist=armeabi-v7a,armeabi\n")
    old = phone_factory(props=read_props(props))
    listed = runner.invoke(app, ["devices", "-d", f"tcp:{old.address}"])
    assert "no pocket_runner for the phone's ABI 'armeabi-v7a'" in " ".join(listed.stdout.split())
    props.write_text("ro.product.model\n")
    with pytest.raises(Exception, match=r"props:1: 'ro.product.model' is not a property line"):
        read_props(props)


def test_devices_lists_a_phone_once_with_its_routes_and_check_says_which(phone, host_adb, monkeypatch, wide):
    host_adb.connect(phone)
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(host_adb.server_port))
    listed = runner.invoke(app, ["devices", "-d", f"tcp:{phone.address}"])
    assert listed.exit_code == 0, listed.stdout
    (line,) = [ln for ln in listed.stdout.splitlines() if phone.address in ln]
    assert f"adb:{phone.address}, tcp:{phone.address}" in line
    checked = check(f"tcp:{phone.address}")
    assert f"checking tcp:{phone.address}: the phones named with -d" in checked.stdout
    assert [ln for ln in checked.stdout.splitlines() if ": PASS" in ln or ": FAIL" in ln] == [
        ln for ln in checked.stdout.splitlines() if ln.startswith(f"tcp:{phone.address}: PASS")
    ]


def test_the_emulator_command_takes_clusters_props_and_seccomp(tmp_path, wide):
    props = tmp_path / "props"
    props.write_text("ro.product.model=Pixel 8 Pro\n")
    port = free_port()
    args = ["--port", str(port), "--clusters", "4,3,1", "--props", str(props), "--seccomp", "android-app"]
    served = subprocess.Popen(
        [sys.executable, "-m", "pocketbench", "emulator", *args], stdout=subprocess.PIPE, text=True
    )
    try:
        assert "listening on" in served.stdout.readline()
        listed = runner.invoke(app, ["devices", "-d", f"tcp:127.0.0.1:{port}"])
        flat = " ".join(listed.stdout.split())
        assert "Google Pixel 8 Pro" in flat and "4×1.70 GHz + 3×2.37 GHz + 1×2.91 GHz" in flat
    finally:
        served.send_signal(2)
        served.wait(120)  # a loaded machine stops the phone slowly; a phone that ignores Ctrl-C never does
    bad = subprocess.run(
        [sys.executable, "-m", "pocketbench", "emulator", "--port", str(port), "--clusters", "4,x"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 1 and "--clusters '4,x': give 1 to 3 CPU counts" in bad.stderr
