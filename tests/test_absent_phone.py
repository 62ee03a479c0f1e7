"""Issue 14 item 6: a phone that is not there fails at once, naming the phones that are; waiting
for one is an explicit option. Real parts: Debian's adb server, emulated phones on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from pocketbench.devices.select import open_device
from pocketbench.emulator.fixtures import free_port
from pocketbench.errors import DeviceError


@pytest.fixture
def server_with_a_phone(phone, host_adb, monkeypatch):
    """Debian's adb server holding one emulated phone; pocketbench talks to that server."""
    assert "connected" in host_adb.connect(phone).stdout
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(host_adb.server_port))
    return phone


def test_an_unknown_adb_serial_fails_at_once_naming_the_serials_the_server_sees(server_with_a_phone):
    with pytest.raises(DeviceError) as caught:
        open_device("adb:no-such-phone")
    message = str(caught.value)
    assert "phone no-such-phone is not attached to this computer's adb server" in message
    assert server_with_a_phone.address in message  # what `adb devices` does list
    assert "(not waited for)" in message and "--" not in message  # the library names no CLI option
    assert isinstance(open_device(f"adb:{server_with_a_phone.address}").device_id, str)


def test_bench_with_an_unknown_serial_is_one_line_and_measures_nothing(server_with_a_phone, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pocketbench", "bench", "--model", "digits_cnn", "--variants", "fp32",
         "--device", "adb:no-such-phone", "--results", "R"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, env=dict(os.environ), check=False,
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no-such-phone is not attached" in lines[0]
    assert server_with_a_phone.address in lines[0]
    assert "--wait-for-device SECONDS waits for it" in lines[0]  # the CLI names its option
    assert not (tmp_path / "R").exists()


def test_a_tcp_phone_nothing_answers_for_fails_at_once():
    port = free_port()
    with pytest.raises(DeviceError, match=f"nothing answers at 127.0.0.1:{port}"):
        open_device(f"tcp:127.0.0.1:{port}")


def test_waiting_for_a_phone_is_explicit_and_finds_one_that_comes_up(phone_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("POCKETBENCH_ADB_KEY", str(tmp_path / "adbkey"))  # never the user's ~/.android
    port = free_port()
    later = threading.Timer(1.0, lambda: phone_factory(port=port))
    later.start()
    try:
        device = open_device(f"tcp:127.0.0.1:{port}", wait_s=30)
    finally:
        later.join()
    assert device.info().model.endswith("Pixel 8")
    device.close()


def test_auto_without_a_phone_tells_the_caller_and_prints_nothing(monkeypatch, tmp_path, capfd):
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(free_port()))  # no server listens there
    monkeypatch.setenv("POCKETBENCH_CACHE", str(tmp_path))  # no emulated phone registered here
    notes: list[str] = []
    device = open_device("auto", notes=notes)
    assert device.device_id == "local"
    assert len(notes) == 1 and notes[0].endswith("measuring on this computer")
    assert capfd.readouterr().err == ""  # a library does not print: the CLI shows the note
