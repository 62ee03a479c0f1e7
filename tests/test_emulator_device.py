"""The phone behind the protocol: Android paths, getprop, scripted sysfs, native binaries."""

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from adb_shell.adb_device import AdbDeviceTcp
from pocketbench.emulator import Cluster, SysfsScript, constant, ramp, steps
from pocketbench.emulator.fixtures import free_port, harness_signers

BATTERY = "/sys/class/power_supply/battery"
POLICY1 = "/sys/devices/system/cpu/cpufreq/policy1"


def connected(emu) -> AdbDeviceTcp:
    device = AdbDeviceTcp(emu.host, emu.port, default_transport_timeout_s=10)
    device.connect(rsa_keys=harness_signers())
    return device


def test_android_paths_without_touching_the_host(phone, tmp_path):
    device = connected(phone)
    assert device.shell("ls -d /data/local/tmp /system/bin/getprop /sdcard /sys/class") == (
        "/data/local/tmp\n/sdcard\n/sys/class\n/system/bin/getprop\n"
    )
    assert "Read-only file system" in device.shell("touch /sys/x /system/x 2>&1")
    src = tmp_path / "f"
    src.write_text("x")
    with pytest.raises(Exception, match="Read-only file system"):
        device.push(str(src), "/system/bin/f")
    assert device.shell("cat /proc/self/status | grep -c '^Pid:'") == "1\n"


def test_getprop_answers_the_scripted_identity(phone_factory):
    emu = phone_factory(model="Pixel 7", serial="EMU7", props={"ro.soc.model": "Tensor G2"})
    device = connected(emu)
    out = device.shell(
        "getprop ro.product.model; getprop ro.serialno; getprop ro.soc.model;"
        " getprop ro.build.version.sdk; getprop no.such.prop fallback"
    )
    assert out == "Pixel 7\nEMU7\nTensor G2\n34\nfallback\n"
    emu.set_props(**{"ro.build.version.sdk": "30"})
    assert device.shell("getprop ro.build.version.sdk") == "30\n"
    listing = device.shell("getprop").splitlines()
    assert "[ro.product.manufacturer]: [Google]" in listing
    assert listing == sorted(listing)


def test_scripted_battery_and_thermal_profile_reads_back_exactly(phone, host_adb):
    phone.sysfs.set_script(
        SysfsScript(
            power_w=steps((0, 1.0), (10, 4.0)),
            voltage_v=constant(4.0),
            current_unit="mA",
            discharging_sign=1,
            status=steps((0, "Discharging"), (20, "Charging")),
            thermal_zones=(("cpu-big", ramp((0, 40.0), (30, 70.0))), ("battery", constant(30.5))),
        )
    )
    host_adb.connect(phone)
    files = " ".join(
        [
            f"{BATTERY}/current_now",
            f"{BATTERY}/voltage_now",
            f"{BATTERY}/status",
            f"{BATTERY}/temp",
            "/sys/class/thermal/thermal_zone0/type",
            "/sys/class/thermal/thermal_zone0/temp",
            "/sys/class/thermal/thermal_zone1/temp",
        ]
    )
    expected = {
        0.0: "250 4000000 Discharging 305 cpu-big 40000 30500",
        15.0: "1000 4000000 Discharging 305 cpu-big 55000 30500",
        25.0: "-1000 4000000 Charging 305 cpu-big 65000 30500",
    }
    for t, values in expected.items():
        phone.sysfs.pin_time(t)
        out = host_adb.run("-s", phone.address, "shell", f"cat {files}")
        assert out.stdout.split() == values.split(), f"at t={t}"


def test_sysfs_changes_while_a_command_runs(phone, tmp_path):
    phone.sysfs.set_script(SysfsScript(power_w=steps((0, 2.0), (5, 6.0)), voltage_v=constant(4.0)))
    phone.sysfs.pin_time(0)
    marker = phone.root / "data/local/tmp/first-read"
    go = phone.root / "data/local/tmp/go"
    command = (
        f"cat {BATTERY}/current_now; touch /data/local/tmp/first-read;"
        f" while [ ! -e /data/local/tmp/go ]; do sleep 0.01; done; cat {BATTERY}/current_now"
    )
    device = connected(phone)
    result = {}

    worker = threading.Thread(target=lambda: result.update(out=device.shell(command)))
    worker.start()
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    phone.sysfs.pin_time(6.0)
    go.touch()
    worker.join(10)
    assert result["out"] == "-500000\n-1500000\n"


def test_frequency_cap_drops_mid_run_on_the_real_clock(phone):
    # The script's clock starts once the shell is up and waiting (connecting and starting a shell
    # take what the machine's load makes them take); from there the first read is one poll away.
    ready, go = phone.root / "data/local/tmp/ready", phone.root / "data/local/tmp/go"
    command = (
        "touch /data/local/tmp/ready; while [ ! -e /data/local/tmp/go ]; do sleep 0.01; done;"
        f" cat {POLICY1}/scaling_max_freq; sleep 2.5; cat {POLICY1}/scaling_max_freq;"
        f" cat {POLICY1}/cpuinfo_max_freq; cat /sys/devices/system/cpu/cpu1/cpufreq/related_cpus"
    )
    device, result = connected(phone), {}
    worker = threading.Thread(target=lambda: result.update(out=device.shell(command, read_timeout_s=120)))
    worker.start()
    deadline = time.monotonic() + 120
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    capped = Cluster((1,), 2_800_000, cap_khz=steps((0, 2_800_000), (1.5, 1_400_000)))
    phone.sysfs.set_script(SysfsScript(clusters=(Cluster((0,), 1_800_000), capped)))
    go.touch()
    worker.join(120)
    assert result["out"].split() == ["2800000", "1400000", "2800000", "1"]


def test_odpm_energy_counter_only_when_scripted(phone):
    device = connected(phone)
    assert device.shell("test -e /sys/bus/iio/devices || echo absent") == "absent\n"
    phone.sysfs.set_script(SysfsScript(power_w=constant(2.0), odpm_rails=((3, "S2M_VDD_CPUCL2", 1.0),)))
    phone.sysfs.pin_time(1.0)
    lines = device.shell("cat '/sys/bus/iio/devices/iio:device0/energy_value'").splitlines()
    assert lines == ["t=3601000", "CH3(T=3601000)[S2M_VDD_CPUCL2], 7202000000"]


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_host_built_binary_with_rpath_library_runs_from_data_local_tmp(phone_factory, tmp_path, monkeypatch):
    # The Python environment lies in a folder others may not enter (pytest's tmp root is
    # 0700, like a home): the phone exposes only the path to it to its shell user.
    assert not os.stat(tmp_path.parent.parent).st_mode & 0o001
    lib_dir = tmp_path / "venv-like" / "lib"
    lib_dir.mkdir(parents=True)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv-like"))
    phone = phone_factory()
    (tmp_path / "answer.c").write_text("int pb_answer(void) { return 42; }\n")
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\nint pb_answer(void);\nint main(void) { printf("%d\\n", pb_answer()); return 0; }\n'
    )
    cc = shutil.which("cc")
    subprocess.run(
        [cc, "-shared", "-fPIC", "-o", lib_dir / "libpbanswer.so", tmp_path / "answer.c"],
        check=True,
    )
    subprocess.run(
        [
            cc,
            "-o",
            tmp_path / "prog",
            tmp_path / "main.c",
            f"-L{lib_dir}",
            "-lpbanswer",
            f"-Wl,-rpath,{lib_dir}",
        ],
        check=True,
    )
    device = connected(phone)
    device.push(str(tmp_path / "prog"), "/data/local/tmp/runner/prog", 0o755)
    assert device.shell("cd /data/local/tmp/runner && ./prog; echo rc=$?") == "42\nrc=0\n"


def test_three_phones_side_by_side(phone_factory, host_adb, tmp_path):
    phones = [phone_factory(serial=f"FARM{i}", model=f"Phone {i}") for i in range(3)]
    assert len({p.port for p in phones}) == 3
    src = tmp_path / "only-on-0"
    src.write_text("zero")
    connected(phones[0]).push(str(src), "/data/local/tmp/only-on-0")
    for i, emu in enumerate(phones):
        device = connected(emu)
        assert device.shell("getprop ro.serialno") == f"FARM{i}\n"
        assert device.shell("ls /data/local/tmp") == ("only-on-0\n" if i == 0 else "")
        assert host_adb.connect(emu).stdout.strip() == f"connected to {emu.address}"
    listed = host_adb.run("devices", "-l").stdout
    for i, emu in enumerate(phones):
        assert f"model:Phone_{i}" in next(ln for ln in listed.splitlines() if emu.address in ln)


def test_cli_serves_a_phone_until_interrupted(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pocketbench",
            "emulator",
            "--port",
            str(port),
            "--serial",
            "CLI1",
            "--model",
            "Pixel 8",
            "--root",
            str(tmp_path / "phone"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = proc.stdout.readline()
        assert f"127.0.0.1:{port}" in banner
        device = AdbDeviceTcp("127.0.0.1", port, default_transport_timeout_s=10)
        device.connect(rsa_keys=harness_signers())  # the CLI trusts $POCKETBENCH_ADB_KEY
        assert device.shell("getprop ro.serialno; echo x > /data/local/tmp/kept") == "CLI1\n"
        device.close()
    finally:
        proc.send_signal(2)
        proc.wait(120)  # a loaded machine stops the phone slowly; a phone that ignores Ctrl-C never does
    assert proc.returncode == 0
    assert (tmp_path / "phone/data/local/tmp/kept").read_text() == "x\n"


def test_ctrl_c_the_moment_the_phone_is_announced_stops_it_cleanly(tmp_path):
    """The line that announces the phone comes after its Ctrl-C handling is in: a Ctrl-C sent as
    soon as it is read stops the phone (exit 0, its temporary files removed), never a half-stopped
    phone behind an `interrupted` line."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pocketbench", "emulator", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    banner = proc.stdout.readline()
    proc.send_signal(2)
    _, err = proc.communicate(timeout=120)
    assert (proc.returncode, err) == (0, ""), err
    root = Path(banner.split(" files in ", 1)[1].split(";", 1)[0])
    assert root.name.startswith("pocketbench-phone-") and not root.exists()


def test_cli_refuses_adb_ports():
    result = subprocess.run(
        [sys.executable, "-m", "pocketbench.emulator", "--port", "5555"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "5555-5585" in result.stderr


def test_dumpsys_battery_and_thermalservice_follow_the_script(phone):
    phone.sysfs.set_script(
        SysfsScript(
            voltage_v=constant(3.9),
            status=constant("Charging"),
            thermal_zones=(("cpu-big", ramp((0, 40.0), (10, 60.0))), ("battery", constant(31.0))),
        )
    )
    phone.sysfs.pin_time(6.0)  # cpu-big at 52 °C: moderate (2)
    device = connected(phone)
    battery = device.shell("dumpsys battery")
    assert "  status: 2\n" in battery
    assert "  USB powered: true\n" in battery
    assert "  voltage: 3900\n" in battery
    assert "  temperature: 310\n" in battery
    thermal = device.shell("dumpsys thermalservice").splitlines()
    assert "Thermal Status: 2" in thermal
    assert "\tTemperature{mValue=52.0, mType=0, mName=cpu-big, mStatus=0}" in thermal
