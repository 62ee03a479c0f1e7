"""The emulated phone gives a phone's rights, not the host owner's (issue 14 item 7): commands
run as Android's shell user, host folders are read-only, sync cannot be led outside the
phone's storage, and only trusted keys get in."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.auth.keygen import keygen
from adb_shell.auth.sign_cryptography import CryptographySigner
from adb_shell.exceptions import AdbCommandFailureException, DeviceAuthError, PushFailedError, TcpTimeoutException
from pocketbench.emulator.fixtures import free_port, harness_signers


def connected(emu) -> AdbDeviceTcp:
    device = AdbDeviceTcp(emu.host, emu.port, default_transport_timeout_s=10)
    device.connect(rsa_keys=harness_signers())
    return device


@pytest.fixture
def host_probe() -> Path:
    """A host path in a folder anyone may write (/tmp), which the phone must not touch."""
    path = Path(tempfile.gettempdir()) / f"pocketbench-probe-{uuid.uuid4().hex}"
    yield path
    path.unlink(missing_ok=True)


def test_commands_run_as_the_shell_user_without_privileges(phone):
    device = connected(phone)
    assert device.shell("id") == "uid=2000 gid=2000 groups=2000\n"
    status = dict(line.split(":\t", 1) for line in device.shell("cat /proc/self/status").splitlines() if ":\t" in line)
    assert status["CapEff"].strip("0\n") == "" and status["CapBnd"].strip("0\n") == ""
    assert status["NoNewPrivs"].strip() == "1"
    device.close()


def test_the_host_is_read_only_and_the_phone_storage_writable(phone, host_probe):
    device = connected(phone)
    out = device.shell(f"touch {host_probe} 2>&1; echo rc=$?")
    assert "Read-only file system" in out and out.endswith("rc=1\n")
    assert not host_probe.exists()
    repo = Path(__file__).resolve().parent
    assert "rc=1" in device.shell(f"touch {repo}/probe 2>&1; echo rc=$?") and not (repo / "probe").exists()
    # /data itself is not the shell user's; /data/local/tmp and /sdcard are
    assert "Permission denied" in device.shell("touch /data/probe 2>&1")
    assert device.shell("echo ok > /data/local/tmp/w && cat /data/local/tmp/w && echo ok > /sdcard/w && echo sd") == (
        "ok\nsd\n"
    )
    assert (phone.root / "data/local/tmp/w").stat().st_uid == phone.sandbox.shell_host_uid
    device.close()


def test_sync_cannot_be_led_out_of_the_phone(phone, host_probe, tmp_path):
    device = connected(phone)
    src = tmp_path / "payload"
    src.write_text("x")
    # a symlink the shell user made, pointing at the host's /tmp: a push through it is refused
    device.shell(f"ln -s {host_probe.parent} /data/local/tmp/escape")
    with pytest.raises(PushFailedError, match="Permission denied"):
        device.push(str(src), f"/data/local/tmp/escape/{host_probe.name}")
    assert not host_probe.exists()
    with pytest.raises(PushFailedError, match="Permission denied"):
        device.push(str(src), "/data/misc/adb/adb_keys")  # the phone's trusted keys stay the phone's
    # a host file others may not read cannot be pulled; readable host files can, as with `cat`
    host_probe.write_text("secret")
    host_probe.chmod(0o600)
    with pytest.raises(AdbCommandFailureException):
        device.pull(str(host_probe), str(tmp_path / "stolen"))
    assert "Permission denied" in device.shell(f"cat {host_probe} 2>&1")
    host_probe.chmod(0o644)
    device.pull(str(host_probe), str(tmp_path / "read"))
    assert (tmp_path / "read").read_text() == "secret"
    device.close()


def test_only_trusted_keys_get_in(phone, tmp_path):
    keygen(str(tmp_path / "stranger"))
    stranger = AdbDeviceTcp(phone.host, phone.port, default_transport_timeout_s=2)
    with pytest.raises((DeviceAuthError, TcpTimeoutException)):
        stranger.connect(rsa_keys=[CryptographySigner(str(tmp_path / "stranger"))], auth_timeout_s=1)
    with pytest.raises(DeviceAuthError):
        AdbDeviceTcp(phone.host, phone.port, default_transport_timeout_s=2).connect(rsa_keys=None, auth_timeout_s=1)
    assert connected(phone).shell("echo in") == "in\n"


def _serve(*args: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pocketbench", "emulator", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert f"127.0.0.1:{port}" in proc.stdout.readline()
    return proc, port


def test_cli_phone_demands_auth_unless_told_not_to(tmp_path):
    keygen(str(tmp_path / "stranger"))
    proc, port = _serve()
    try:
        with pytest.raises((DeviceAuthError, TcpTimeoutException)):
            AdbDeviceTcp("127.0.0.1", port, default_transport_timeout_s=2).connect(
                rsa_keys=[CryptographySigner(str(tmp_path / "stranger"))], auth_timeout_s=1
            )
        device = AdbDeviceTcp("127.0.0.1", port, default_transport_timeout_s=10)
        device.connect(rsa_keys=harness_signers())  # this computer's key ($POCKETBENCH_ADB_KEY)
        assert device.shell("id -u") == "2000\n"
        device.close()
    finally:
        proc.send_signal(2)
        proc.wait(120)  # a loaded machine stops the phone slowly; a phone that ignores Ctrl-C never does
    proc, port = _serve("--no-auth")
    try:
        device = AdbDeviceTcp("127.0.0.1", port, default_transport_timeout_s=10)
        device.connect(rsa_keys=None)
        assert device.shell("echo open") == "open\n"
        device.close()
    finally:
        proc.send_signal(2)
        proc.wait(120)  # a loaded machine stops the phone slowly; a phone that ignores Ctrl-C never does
    assert os.environ.get("POCKETBENCH_ADB_KEY")  # the harness never used ~/.android
