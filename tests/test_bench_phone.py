"""`pocketbench bench` end to end against emulated phones: adb-shell, the adb server, and auto."""

from __future__ import annotations

import json

import pytest
from pocketbench.cli import app
from pocketbench.emulator.fixtures import free_port
from typer.testing import CliRunner

runner = CliRunner()
MEASURED = ("size_bytes", "latency_p50_ms", "latency_p90_ms", "load_ms", "peak_rss_kb", "accuracy", "sqnr_db")


@pytest.fixture(scope="module", autouse=True)
def x86_64_bundle():
    from tests.runner_support import android_bundle

    return android_bundle("x86_64")  # what the emulated x86_64 phone runs


@pytest.fixture(autouse=True)
def adb_key(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("POCKETBENCH_ADB_KEY", str(tmp_path_factory.getbasetemp() / "adb-key" / "adbkey"))


def bench(tmp_path, *devices: str, variants: str = "fp32,int8"):
    args = ["bench", "--model", "digits_cnn", "--variants", variants, "--iterations", "5", "--warmup", "1"]
    args += ["--repetitions", "1"]
    for device in devices:
        args += ["--device", device]
    result = runner.invoke(app, [*args, "--results", str(tmp_path / "results"), "--json"])
    return result, json.loads(result.stdout) if result.stdout.strip() else None


def test_bench_over_adb_shell_has_the_local_columns_plus_identity(phone, tmp_path):
    result, run = bench(tmp_path, f"tcp:{phone.host}:{phone.port}")
    assert result.exit_code == 0, result.stderr
    fp32, int8 = run["rows"]
    for row in (fp32, int8):
        assert row["status"] == "ok"
        assert all(row[column] is not None for column in MEASURED), row
        assert row["device_model"].endswith("Pixel 8") and row["device_serial"] == phone.serial
        assert row["backend"] == "native-runner"
        assert (row["device_emulated"], row["device_emulation"]) == (True, phone.persona.emulation)
        # One thread per performance core, pinned: this computer's CPUs as little + big, so one.
        assert (row["threads_source"], row["threads"], row["cores"]) == ("device-policy", 1, "big")
        assert row["threads_note"].startswith("the performance cores (big ")
    assert abs(int8["accuracy"] - fp32["accuracy"]) <= 0.02
    assert f"emulated: tcp:{phone.host}:{phone.port} is an emulator" in result.stderr


def test_bench_through_the_adb_server(phone, host_adb, tmp_path, monkeypatch):
    assert "connected" in host_adb.connect(phone).stdout
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(host_adb.server_port))
    result, run = bench(tmp_path, f"adb:{phone.address}", variants="int8")
    assert result.exit_code == 0, result.stderr
    (row,) = run["rows"]
    assert row["status"] == "ok" and row["device_serial"] == phone.serial and row["accuracy"] > 0.9


def test_auto_picks_the_single_phone_the_server_holds(phone, host_adb, tmp_path, monkeypatch):
    host_adb.connect(phone)
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(host_adb.server_port))
    result, run = bench(tmp_path, "auto", variants="fp32")
    assert result.exit_code == 0, result.stderr
    assert run["rows"][0]["device_serial"] == phone.serial


@pytest.mark.slow  # a real bench on this computer
def test_auto_without_any_phone_measures_on_this_computer(tmp_path, monkeypatch):
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(free_port()))  # no server listens there
    result, run = bench(tmp_path, "auto", variants="fp32")
    assert result.exit_code == 0, result.stderr
    assert run["rows"][0]["device"] == "local"
    assert "measuring on this computer" in result.stderr
    # This computer's default is one thread, and the table says so and why.
    assert (run["rows"][0]["threads"], run["rows"][0]["threads_source"]) == (1, "device-policy")
    assert "threads: 1 on local, the device's policy: a computer's multi-thread timings move" in result.stderr


def test_auto_with_two_phones_asks_which(phone_factory, host_adb, tmp_path, monkeypatch):
    for emu in (phone_factory(), phone_factory()):
        host_adb.connect(emu)
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(host_adb.server_port))
    result, _ = bench(tmp_path, "auto", variants="fp32")
    assert result.exit_code == 1  # main() prints this PocketbenchError as one line; the runner keeps it
    assert "several phones are attached" in str(result.exception)
    assert "pick one with --device" in str(result.exception)


def test_an_unauthorized_phone_fails_its_cells_and_the_other_device_still_runs(phone_factory, tmp_path):
    locked = phone_factory(require_auth=True)
    result, run = bench(tmp_path, f"tcp:{locked.host}:{locked.port}", "local", variants="fp32")
    assert result.exit_code == 4  # no or partial data
    by_device = {row["device"]: row for row in run["rows"]}
    phone_row = by_device[f"tcp:{locked.host}:{locked.port}"]
    assert phone_row["status"] != "ok" and "unauthorized" in phone_row["error"].lower()
    assert by_device["local"]["status"] == "ok"


def test_profile_pulls_the_trace_from_the_phone(phone, tmp_path):
    args = ["bench", "--model", "digits_cnn", "--variants", "int8", "--iterations", "3", "--warmup", "1"]
    args += ["--repetitions", "1", "--profile", "--profile-iterations", "3", "--device", f"tcp:{phone.address}"]
    result = runner.invoke(app, [*args, "--results", str(tmp_path / "results"), "--json"])
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)["rows"]
    assert row["profile_note"] is None and row["profile_delegated_ms"] > 0
    trace = tmp_path / "results" / row["run_id"] / row["profile_trace"]
    assert trace.stat().st_size > 0


@pytest.mark.parametrize("signal_name", ["SIGSEGV", "SIGKILL"])
def test_a_runner_killed_from_outside_fails_every_cell_and_still_reports(phone, tmp_path, signal_name):
    """Issue 14 item 3: every cell failing must not crash the report, and an external signal is
    named as such, not blamed on the model."""
    import signal

    phone.faults.crash_process("pocket_runner", sig=getattr(signal, signal_name))
    result, run = bench(tmp_path, f"tcp:{phone.host}:{phone.port}")
    assert result.exit_code == 4, result.stderr  # no data
    assert "Traceback" not in result.stderr and "TypeError" not in result.stderr
    assert {row["status"] for row in run["rows"]} == {"crashed"}
    for row in run["rows"]:
        assert f"killed by signal {signal_name}" in row["error"], row["error"]
        assert "corrupt" not in row["error"]
    assert f"failed: digits_cnn fp32, int8 on tcp:{phone.host}:{phone.port}" in " ".join(result.stderr.split())
    shown = runner.invoke(app, ["report", "latest", "--results", str(tmp_path / "results")])
    assert shown.exit_code == 0, shown.output
    assert f"killed by signal {signal_name}" in " ".join(shown.stdout.split())
