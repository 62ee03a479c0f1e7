"""Debian's adb, a second real client, against the emulated phone (isolated server)."""

import hashlib
import os


def test_connect_devices_shell_exit_code(phone_factory, host_adb):
    emu = phone_factory(model="Pixel 8")
    assert host_adb.connect(emu).stdout.strip() == f"connected to {emu.address}"
    devices = host_adb.run("devices", "-l").stdout
    line = next(ln for ln in devices.splitlines() if ln.startswith(emu.address))
    assert line.split()[1] == "device"
    assert "model:Pixel_8" in line.split()
    result = host_adb.run("-s", emu.address, "shell", "echo out; echo err >&2; exit 7")
    assert (result.returncode, result.stdout, result.stderr) == (7, "out\n", "err\n")


def test_push_pull_ls(phone, host_adb, tmp_path):
    payload = os.urandom(4 * 1024 * 1024 + 5)
    src = tmp_path / "weights.bin"
    src.write_bytes(payload)
    host_adb.connect(phone)
    push = host_adb.run("-s", phone.address, "push", str(src), "/data/local/tmp/w/weights.bin")
    assert push.returncode == 0, push.stderr
    listing = host_adb.run("-s", phone.address, "ls", "/data/local/tmp/w").stdout.split("\n")
    entries = {ln.split()[3]: int(ln.split()[1], 16) for ln in listing if ln}
    assert entries["weights.bin"] == len(payload)
    back = tmp_path / "back.bin"
    pull = host_adb.run("-s", phone.address, "pull", "/data/local/tmp/w/weights.bin", str(back))
    assert pull.returncode == 0, pull.stderr
    assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(payload).digest()
    missing = host_adb.run("-s", phone.address, "pull", "/data/local/tmp/nope", str(back))
    assert missing.returncode == 1
    assert "failed to stat remote object" in missing.stdout + missing.stderr
    assert "No such file or directory" in missing.stdout + missing.stderr


def test_auth_after_the_client_key_is_registered(phone_factory, host_adb):
    emu = phone_factory(require_auth=True)
    refused = host_adb.connect(emu)
    assert "failed to authenticate" in refused.stdout + refused.stderr
    state = host_adb.run("devices").stdout
    assert f"{emu.address}\tunauthorized" in state
    host_adb.run("disconnect", emu.address)
    emu.authorize_key(host_adb.public_key())
    assert host_adb.connect(emu).stdout.strip() == f"connected to {emu.address}"
    assert host_adb.run("-s", emu.address, "shell", "getprop ro.serialno").stdout == f"{emu.serial}\n"


def test_shell_v2_forwards_stdin_and_exec_out_is_raw(phone, host_adb):
    host_adb.connect(phone)
    piped = host_adb.run("-s", phone.address, "shell", "tr a-z A-Z", stdin_text="hello phone\n")
    assert (piped.returncode, piped.stdout) == (0, "HELLO PHONE\n")
    raw = host_adb.run("-s", phone.address, "exec-out", "printf 'a\\nb'")
    assert raw.stdout == "a\nb"


def test_shell_without_a_command_reads_commands_from_stdin(phone, host_adb):
    host_adb.connect(phone)
    session = host_adb.run("-s", phone.address, "shell", stdin_text="cd /data/local/tmp\npwd\nexit 4\n")
    assert (session.returncode, session.stdout) == (4, "/data/local/tmp\n")


def test_adb_root_is_refused_on_a_user_build_and_unknown_services(phone, host_adb):
    host_adb.connect(phone)
    root = host_adb.run("-s", phone.address, "root")
    assert "adbd cannot run as root in production builds" in root.stdout + root.stderr
    assert host_adb.run("-s", phone.address, "shell", "id -u").stdout == "2000\n"
    assert host_adb.run("-s", phone.address, "jdwp", timeout=10).returncode != 0
