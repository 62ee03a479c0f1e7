"""The arm64-v8a emulated phone: arm64 identity, aarch64 programs run by qemu-user through a
binfmt_misc instance of the phone's own, and no aarch64 system library inside it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from adb_shell.adb_device import AdbDeviceTcp
from pocketbench.devices.adb.device import AdbDevice
from pocketbench.emulator.fixtures import free_port, harness_signers

CROSS_CC = shutil.which("aarch64-linux-gnu-gcc")
AARCH64_SYSROOT = Path("/usr/aarch64-linux-gnu/lib")
needs_cross = pytest.mark.skipif(CROSS_CC is None, reason="needs aarch64-linux-gnu-gcc (`just system-deps`)")
HELLO = """#include <stdio.h>
int main(int argc, char **argv) { printf("hello %s from aarch64\\n", argv[1]); return 0; }
"""


def connected(emu) -> AdbDeviceTcp:
    device = AdbDeviceTcp(emu.host, emu.port, default_transport_timeout_s=30)
    device.connect(rsa_keys=harness_signers(), read_timeout_s=30)
    return device


def run(device: AdbDeviceTcp, command: str) -> tuple[str, int]:
    out = device.shell(f"{command}; echo rc=$?", read_timeout_s=60)
    body, _, rc = out.rstrip("\n").rpartition("rc=")
    return body, int(rc)


@pytest.fixture(scope="module")
def programs(tmp_path_factory) -> dict[str, Path]:
    """A static and a dynamically linked aarch64 program, cross-compiled now."""
    if CROSS_CC is None:
        pytest.skip("needs aarch64-linux-gnu-gcc (`just system-deps`)")
    folder = tmp_path_factory.mktemp("aarch64")
    (folder / "hello.c").write_text(HELLO)
    out = {}
    for name, flags in (("static", ["-static"]), ("dynamic", [])):
        out[name] = folder / f"hello-{name}"
        subprocess.run([CROSS_CC, *flags, "-O1", "-o", out[name], folder / "hello.c"], check=True)
    return out


def test_arm64_phone_says_it_is_an_emulated_arm64_phone(arm64_phone):
    device = connected(arm64_phone)
    props = device.shell(
        "getprop ro.product.cpu.abi; getprop ro.product.cpu.abilist; getprop ro.kernel.qemu;"
        " getprop ro.pocketbench.emulation"
    ).splitlines()
    assert props[:3] == ["arm64-v8a", "arm64-v8a", "1"]
    assert props[3].startswith("qemu-user aarch64 on ")
    cpuinfo = device.shell("cat /proc/cpuinfo")
    assert "CPU implementer\t: 0x41" in cpuinfo and "asimddp" in cpuinfo
    assert cpuinfo.count("processor\t:") == (os.cpu_count() or 1)
    freqs = device.shell("cat /sys/devices/system/cpu/cpufreq/policy*/cpuinfo_max_freq").split()
    assert len(freqs) == min(os.cpu_count() or 1, 3) and freqs == sorted(freqs, key=int)
    device.close()
    phone = AdbDevice(f"tcp:{arm64_phone.address}")
    info = phone.info()
    phone.close()
    assert (info.abi, info.emulated) == ("arm64-v8a", True)
    assert info.emulation.startswith("qemu-user aarch64")


def test_default_phone_is_x86_64_and_says_it_is_emulated(phone):
    if os.uname().machine != "x86_64":
        pytest.skip("the default persona is this host's ABI")
    device = AdbDevice(f"tcp:{phone.address}")
    info = device.info()
    device.close()
    assert (info.abi, info.emulated, info.emulation) == ("x86_64", True, "native x86_64 (host CPU)")


@needs_cross
def test_aarch64_programs_run_only_when_self_contained(arm64_phone, programs, tmp_path):
    device = connected(arm64_phone)
    for name, path in programs.items():
        device.push(str(path), f"/data/local/tmp/hello-{name}", 0o755)
    assert run(device, "/data/local/tmp/hello-static phone") == ("hello phone from aarch64\n", 0)
    # Needs the system's aarch64 loader and libc: a phone has neither, nor has this one.
    out, rc = run(device, "/data/local/tmp/hello-dynamic phone 2>&1")
    assert rc != 0 and "ld-linux-aarch64.so.1" in out
    assert run(device, "ls /usr/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu | grep -c so")[0] == "0\n"
    # The same program with its own loader and libc in one folder (a bundle) runs.
    if not (AARCH64_SYSROOT / "ld-linux-aarch64.so.1").exists():
        pytest.skip("needs glibc's aarch64 runtime (libc6-arm64-cross)")
    for lib in ("ld-linux-aarch64.so.1", "libc.so.6"):
        device.push(str(AARCH64_SYSROOT / lib), f"/data/local/tmp/bundle/{lib}", 0o755)
    device.push(str(programs["dynamic"]), "/data/local/tmp/bundle/hello", 0o755)
    bundle = "cd /data/local/tmp/bundle && ./ld-linux-aarch64.so.1 --library-path . ./hello bundle"
    assert run(device, bundle) == ("hello bundle from aarch64\n", 0)
    device.close()


@needs_cross
def test_binfmt_registration_is_private_to_the_arm64_phone(arm64_phone, phone, programs):
    host_binfmt = Path("/proc/sys/fs/binfmt_misc")
    assert not (host_binfmt / "pocketbench-aarch64").exists()  # the host's instance is untouched
    in_arm64 = connected(arm64_phone)
    assert "interpreter " in in_arm64.shell("cat /proc/sys/fs/binfmt_misc/pocketbench-aarch64")
    in_arm64.close()
    if os.uname().machine != "x86_64":
        return
    device = connected(phone)  # an x86_64 phone cannot run aarch64 code
    device.push(str(programs["static"]), "/data/local/tmp/hello-static", 0o755)
    out, rc = run(device, "/data/local/tmp/hello-static x 2>&1")
    assert rc == 126 and "Exec format error" in out
    device.close()


def test_cli_serves_an_arm64_phone_and_refuses_an_unknown_abi():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pocketbench", "emulator", "--port", str(port), "--abi", "arm64-v8a"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "(arm64-v8a, " in proc.stdout.readline()
        device = AdbDevice(f"tcp:127.0.0.1:{port}")
        info = device.info()
        device.close()
        assert (info.abi, info.emulated) == ("arm64-v8a", True)
    finally:
        proc.send_signal(2)
        proc.wait(120)  # a loaded machine stops the phone slowly; a phone that ignores Ctrl-C never does
    bad = subprocess.run(
        [sys.executable, "-m", "pocketbench", "emulator", "--port", str(free_port()), "--abi", "mips"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1
    assert bad.stderr.strip() == "error: --abi 'mips' is not an emulated phone ABI; pick one of x86_64, arm64-v8a"
