"""adb-shell, a real independent client, against the emulated phone over real sockets."""

import hashlib
import os
import threading
import time

import pytest
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.auth.keygen import keygen
from adb_shell.auth.sign_cryptography import CryptographySigner
from adb_shell.auth.sign_pythonrsa import PythonRSASigner
from adb_shell.exceptions import DeviceAuthError
from pocketbench.emulator.fixtures import harness_signers

SIGNERS = {
    "python-rsa": PythonRSASigner.FromRSAKeyPath,
    "cryptography": CryptographySigner,
}


def client(emu) -> AdbDeviceTcp:
    return AdbDeviceTcp(emu.host, emu.port, default_transport_timeout_s=5)


@pytest.fixture
def host_key(tmp_path):
    keygen(str(tmp_path / "adbkey"))
    return tmp_path / "adbkey"


def test_connect_without_auth_and_run_commands(phone_factory):
    device = client(phone_factory(require_auth=False))  # --no-auth, for protocol tests
    assert device.connect(rsa_keys=None, auth_timeout_s=1)
    out = device.shell("echo out; echo err >&2; getprop ro.product.model; exit 3; echo no")
    assert out == "out\nerr\nPixel 8\n"
    assert device.shell("pwd; echo $TMPDIR") == "/\n/data/local/tmp\n"
    assert device.exec_out("printf 'a\\0b'", decode=False) == b"a\0b"
    device.close()


@pytest.mark.parametrize("signer", sorted(SIGNERS))
def test_auth_with_a_registered_key(phone_factory, host_key, signer):
    emu = phone_factory(require_auth=True)
    emu.authorize_key((host_key.parent / "adbkey.pub").read_text())
    device = client(emu)
    assert device.connect(rsa_keys=[SIGNERS[signer](str(host_key))], auth_timeout_s=1)
    assert device.shell("echo authed") == "authed\n"
    device.close()


def test_auth_required_without_keys_is_refused(phone_factory):
    emu = phone_factory(require_auth=True)
    with pytest.raises(DeviceAuthError):
        client(emu).connect(rsa_keys=None, auth_timeout_s=1)


def test_unknown_key_waits_for_the_user_to_allow_it(phone_factory, host_key):
    emu = phone_factory(require_auth=True)
    signer = PythonRSASigner.FromRSAKeyPath(str(host_key))

    def tap_allow(_device):
        def wait_and_accept():
            while emu.accept_pending_keys() == 0:
                time.sleep(0.01)

        threading.Thread(target=wait_and_accept, daemon=True).start()

    device = client(emu)
    assert device.connect(rsa_keys=[signer], auth_timeout_s=10, auth_callback=tap_allow)
    device.close()
    # "Always allow": the key is now trusted on the next connection without a prompt.
    again = client(emu)
    assert again.connect(rsa_keys=[signer], auth_timeout_s=1)
    assert emu.keys.lines() == [(host_key.parent / "adbkey.pub").read_text().strip()]
    again.close()


def test_push_pull_stat_list_of_a_multi_megabyte_file(phone, tmp_path):
    payload = os.urandom(5 * 1024 * 1024 + 123)
    src = tmp_path / "model.pte"
    src.write_bytes(payload)
    device = client(phone)
    device.connect(rsa_keys=harness_signers())
    device.push(str(src), "/data/local/tmp/bench/model.pte")
    mode, size, _ = device.stat("/data/local/tmp/bench/model.pte")
    assert size == len(payload)
    assert mode & 0o170000 == 0o100000
    names = {bytes(f.filename).decode(): f.size for f in device.list("/data/local/tmp/bench")}
    assert names == {".": names["."], "..": names[".."], "model.pte": len(payload)}
    on_device = device.shell("sha256sum /data/local/tmp/bench/model.pte").split()[0]
    assert on_device == hashlib.sha256(payload).hexdigest()
    back = tmp_path / "back.pte"
    device.pull("/data/local/tmp/bench/model.pte", str(back))
    assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(payload).digest()
    assert device.stat("/data/local/tmp/missing") == (0, 0, 0)
    device.close()


def test_pushed_file_is_in_the_phone_not_on_the_host(phone, tmp_path):
    src = tmp_path / "x"
    src.write_bytes(b"hello")
    device = client(phone)
    device.connect(rsa_keys=harness_signers())
    device.push(str(src), "/data/local/tmp/x")
    assert device.shell("cat /data/local/tmp/x") == "hello"
    assert not os.path.exists("/data/local/tmp/x")
    assert (phone.root / "data/local/tmp/x").read_bytes() == b"hello"
    device.close()
