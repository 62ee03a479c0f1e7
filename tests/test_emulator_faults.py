"""Every fault of the emulated phone, seen from real clients as the real failure looks."""

import os
import shutil
import signal
import time

import pytest
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.auth.keygen import keygen
from adb_shell.auth.sign_pythonrsa import PythonRSASigner
from adb_shell.exceptions import PushFailedError, TcpTimeoutException
from pocketbench.emulator.fixtures import harness_signers


def connected(emu, read_timeout_s: float = 10) -> AdbDeviceTcp:
    device = AdbDeviceTcp(emu.host, emu.port, default_transport_timeout_s=read_timeout_s)
    device.connect(rsa_keys=harness_signers(), read_timeout_s=read_timeout_s)
    return device


@pytest.fixture
def big_file(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(2 * 1024 * 1024))
    return path


def install_runner(emu) -> str:
    """A stand-in for pocket_runner: a real program (sleep) under the runner's name."""
    target = emu.root / "data/local/tmp/pocket_runner"
    shutil.copy("/bin/sleep", target)
    return "/data/local/tmp/pocket_runner"


def process_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_connection_reset_at_byte_n_of_a_push(phone, big_file):
    phone.faults.drop_after_sync_bytes = 1_000_000
    with pytest.raises(ConnectionResetError):
        connected(phone).push(str(big_file), "/data/local/tmp/big.bin")
    assert not (phone.root / "data/local/tmp/big.bin").exists()  # adbd removes partial files


def test_connection_reset_at_byte_n_of_a_pull(phone, big_file, tmp_path):
    connected(phone).push(str(big_file), "/data/local/tmp/big.bin")
    phone.faults.drop_after_sync_bytes = 1_000_000
    with pytest.raises(OSError):
        connected(phone).pull("/data/local/tmp/big.bin", str(tmp_path / "back.bin"))
    phone.faults.clear()
    connected(phone).pull("/data/local/tmp/big.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == big_file.read_bytes()


def test_connection_dropped_during_a_command_hangs_up_on_it(phone):
    phone.faults.drop_after_command_s = 0.2
    with pytest.raises(ConnectionResetError):
        connected(phone).shell("sleep 30; echo finished")
    deadline = time.monotonic() + 5
    while phone.sandbox.pids() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert phone.sandbox.pids() == []  # SIGHUP ended the command, as on a phone


def test_debian_adb_sees_the_transport_go_offline(phone, host_adb, big_file):
    host_adb.connect(phone)
    phone.faults.drop_after_sync_bytes = 500_000
    push = host_adb.run("-s", phone.address, "push", str(big_file), "/data/local/tmp/big.bin")
    assert push.returncode == 1
    assert "couldn't read from device" in push.stdout + push.stderr
    phone.faults.clear()
    phone.faults.drop_after_command_s = 0.2
    # adb 29 reports no exit status when the transport dies mid-command: output just ends.
    cut = host_adb.run("-s", phone.address, "shell", "sleep 30; echo finished")
    assert "finished" not in cut.stdout


def test_stall_times_out_the_client_until_cleared(phone):
    device = connected(phone, read_timeout_s=0.5)
    phone.faults.stall = True
    with pytest.raises(TcpTimeoutException):
        device.shell("echo hi", read_timeout_s=0.5)
    phone.faults.stall = False
    assert connected(phone).shell("echo hi") == "hi\n"


def test_rejected_auth_never_lets_a_known_key_in(phone_factory, tmp_path, host_adb):
    keygen(str(tmp_path / "adbkey"))
    emu = phone_factory(require_auth=True, accept_new_keys=True)
    emu.authorize_key((tmp_path / "adbkey.pub").read_text())
    emu.faults.reject_auth = True
    signer = PythonRSASigner.FromRSAKeyPath(str(tmp_path / "adbkey"))
    device = AdbDeviceTcp(emu.host, emu.port, default_transport_timeout_s=2)
    with pytest.raises(TcpTimeoutException):
        device.connect(rsa_keys=[signer], auth_timeout_s=0.5)
    assert "failed to authenticate" in host_adb.connect(emu).stdout
    assert f"{emu.address}\tunauthorized" in host_adb.run("devices").stdout


def test_unauthorized_until_the_user_allows(phone_factory, host_adb):
    emu = phone_factory(require_auth=True)
    assert "failed to authenticate" in host_adb.connect(emu).stdout
    assert f"{emu.address}\tunauthorized" in host_adb.run("devices").stdout
    deadline = time.monotonic() + 5
    while emu.pending_auth_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emu.accept_pending_keys() == 1
    while "\tdevice" not in host_adb.run("devices").stdout and time.monotonic() < deadline:
        time.sleep(0.02)
    assert host_adb.run("-s", emu.address, "shell", "echo in").stdout == "in\n"


def test_disk_full_fails_the_push_and_leaves_no_partial_file(phone, host_adb, big_file):
    phone.faults.disk_free_bytes = 100_000
    with pytest.raises(PushFailedError, match="No space left on device"):
        connected(phone).push(str(big_file), "/data/local/tmp/full.bin")
    host_adb.connect(phone)
    push = host_adb.run("-s", phone.address, "push", str(big_file), "/data/local/tmp/full.bin")
    assert push.returncode == 1
    assert "remote write failed: No space left on device" in push.stdout + push.stderr
    assert not (phone.root / "data/local/tmp/full.bin").exists()


def test_runner_crash_is_a_segfault_exit_status(phone, host_adb):
    runner = install_runner(phone)
    phone.faults.crash_process("pocket_runner")
    host_adb.connect(phone)
    result = host_adb.run("-s", phone.address, "shell", f"{runner} 30")
    assert result.returncode == 128 + signal.SIGSEGV
    assert connected(phone).shell(f"{runner} 30; echo rc=$?").endswith("rc=139\n")


def test_a_runner_started_through_its_loader_still_answers_to_its_name(phone):
    runner = install_runner(phone)
    loader = next(p for p in ("/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1") if os.path.exists(p))
    phone.faults.crash_process("pocket_runner")  # /proc/PID/exe is the loader, argv names the runner
    out = connected(phone).shell(f"{loader} --library-path /data/local/tmp {runner} 30; echo rc=$?")
    assert out.endswith("rc=139\n")


def test_runner_hang_leaves_it_stopped_and_silent(phone):
    runner = install_runner(phone)
    phone.faults.hang_process("pocket_runner")
    device = connected(phone, read_timeout_s=1)
    with pytest.raises(TcpTimeoutException):
        device.shell(f"{runner} 0.5; echo done", read_timeout_s=1)
    hung = [pid for pid in phone.sandbox.pids() if process_state(pid) == "T"]
    assert len(hung) == 1


def test_reboot_drops_refuses_then_comes_back_with_data_kept(phone, big_file):
    device = connected(phone)
    boot_id = device.shell("cat /proc/sys/kernel/random/boot_id")
    device.push(str(big_file), "/data/local/tmp/kept.bin")
    device.shell("nohup sleep 300 >/dev/null 2>&1 &")
    assert phone.sandbox.pids()
    phone.reboot(down_s=1.0)
    with pytest.raises(ConnectionError):
        device.shell("echo hi")
    with pytest.raises(ConnectionRefusedError):
        connected(phone)
    assert phone.wait_until_up(10)
    again = connected(phone)
    assert again.shell("ls /data/local/tmp") == "kept.bin\n"
    assert again.shell("cat /proc/sys/kernel/random/boot_id") != boot_id
    assert phone.sandbox.pids() == []  # nothing survives a reboot


def test_adb_reboot_command_reboots_the_phone(phone, host_adb):
    host_adb.connect(phone)
    assert host_adb.run("-s", phone.address, "reboot").returncode == 0
    assert not phone.is_up
    assert phone.wait_until_up(10)
    assert connected(phone).shell("echo up") == "up\n"


def test_cable_pull_drops_every_connection_now(phone):
    first, second = connected(phone), connected(phone)
    phone.drop_connections()
    for device in (first, second):
        with pytest.raises(ConnectionError):
            device.shell("echo hi")
    assert connected(phone).shell("echo hi") == "hi\n"


def test_a_fault_names_the_program_a_process_runs_not_its_arguments():
    """A runner started through glibc's loader or qemu-user answers to its name; a command that
    only takes the runner's path as an argument (the deploy's `sha256sum`) does not."""
    from pocketbench.emulator.faults import program_words

    folder = "/data/local/tmp/pocketbench/0123abcd"
    loader = [f"{folder}/ld-linux-x86-64.so.2", "--inhibit-cache", "--library-path", folder, f"{folder}/pocket_runner"]
    assert program_words([*loader, "--model", "m.pte"])[-1] == f"{folder}/pocket_runner"
    qemu = [
        "/usr/bin/qemu-aarch64",
        f"{folder}/ld-linux-aarch64.so.1",
        "--library-path",
        folder,
        f"{folder}/pocket_runner",
    ]
    assert program_words([*qemu, "--json", "r.json"])[-1] == f"{folder}/pocket_runner"
    assert program_words(["sha256sum", f"{folder}/pocket_runner", f"{folder}/libc.so.6"]) == ["sha256sum"]
