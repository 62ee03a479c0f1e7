"""A lab of two "hosts": two Debian adb servers on this machine (each on its own port, as another
host's server or an ssh tunnel to it would be), each with two emulated phones attached by
`adb connect` (the route a reserved phone of a device service takes: reserve, remoteConnect,
`adb connect`, then the farm names the serials). The farm reaches every phone through the servers
(`adb://HOST:PORT/SERIAL`): all four measured at once, a server going away mid-night, SIGKILL and
resume, `pocketbench devices`, and the lease on the phone that coordinators of other hosts see."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
from pocketbench.devices.adb.device import AdbDevice
from pocketbench.devices.adb.lease import LeaseHeld
from pocketbench.devices.adb.phone_lease import LEASE_DIR
from pocketbench.devices.select import open_device
from pocketbench.emulator.fixtures import HostAdb
from pocketbench.farm.hosts import list_server_phones
from pocketbench.farm.matrix import parse_matrix
from pocketbench.farm.run import open_farm_devices, run_farm
from pocketbench.results.cell_status import CellStatus
from pocketbench.results.store import RunStore, read_cells

from tests.farm_support import farm_killed_mid_run, write_models

pytestmark = pytest.mark.skipif(subprocess.run(["which", "adb"], capture_output=True).returncode, reason="no adb")


@pytest.fixture
def lab(tmp_path_factory, phone_factory):
    """Two adb servers ("hosts" lab-a and lab-b), two emulated phones attached to each."""
    from tests.runner_support import android_bundle

    android_bundle("x86_64")  # the emulated phones run the x86_64 runner bundle
    servers = []
    try:
        for name in ("lab-a", "lab-b"):
            home = tmp_path_factory.mktemp(f"adb-{name}")
            server = HostAdb(home)
            server.run("start-server", check=True)
            servers.append(server)
            for _ in range(2):
                assert "connected" in server.connect(phone_factory()).stdout
        yield servers
    finally:
        for server in servers:
            server.stop()


def _matrix(tmp_path, servers, **run):
    models = write_models(tmp_path)
    data = {
        "name": "lab",
        "variants": ["fp32", "int8"],
        "models": [f"{models}:small"],
        "servers": [
            {"name": f"lab-{c}", "address": f"127.0.0.1:{s.server_port}"} for c, s in zip("ab", servers, strict=True)
        ],
        "run": {"iterations": 8, "warmup": 1, "threads": 1, **run},
    }
    return data, parse_matrix(data, tmp_path / "lab.toml")


def test_both_servers_phones_measured_at_once(tmp_path, lab):
    _, plan = _matrix(tmp_path, lab)
    plan, down = list_server_phones(plan)
    assert not down and len(plan.devices) == 4
    assert {d.host for d in plan.devices} == {"lab-a", "lab-b"}
    devices, absent = open_farm_devices(plan)
    assert not absent
    spans: dict[str, list[tuple[float, float]]] = {}
    for name, device in devices.items():
        measure = device.benchmark

        def timed(job, name=name, measure=measure):
            started = time.monotonic()
            try:
                return measure(job)
            finally:
                spans.setdefault(name, []).append((started, time.monotonic()))

        device.benchmark = timed
    run = run_farm(plan, RunStore(tmp_path / "results", "night-1"), devices)
    frame = run.frame
    assert len(frame) == 4 * 2 and set(frame["status"]) == {"ok"}, frame[["device", "status", "error"]]
    assert dict(frame.groupby("device")["device_host"].first()) == {d.name: d.host for d in plan.devices}
    assert set(frame["device_serial"]) == {d.serial for d in plan.devices}
    assert all(serial.startswith("adb://127.0.0.1:") for serial in frame["device_serial"])
    # Every phone was measuring while every other was: one worker per phone, across both servers.
    first = {name: min(start for start, _ in own) for name, own in spans.items()}
    last = {name: max(end for _, end in own) for name, own in spans.items()}
    assert max(first.values()) < min(last.values()), (first, last)


def test_a_server_gone_mid_night_leaves_its_phones_not_run(tmp_path, lab):
    _, plan = _matrix(tmp_path, lab, health_timeout_s=2, retries=1)
    data = {
        "name": "lab",
        "variants": ["fp32", "int8", "int8-dynamic"],
        "models": list(plan.models),
        "servers": [{"name": s.name, "address": str(s.address)} for s in plan.servers],
        "run": {"iterations": 8, "warmup": 1, "threads": 1, "health_timeout_s": 2, "retries": 1},
    }
    plan, _ = list_server_phones(parse_matrix(data, tmp_path / "lab.toml"))
    devices, _ = open_farm_devices(plan)
    doomed = [d.name for d in plan.devices if d.host == "lab-b"]
    gone = threading.Event()
    for name in doomed:
        device = devices[name]
        device.reconnect_wait_s = 2
        measure = device.benchmark

        def then_the_server_goes(job, measure=measure):
            report = measure(job)
            if not gone.is_set():  # after lab-b's first measured cell its server stops for good
                gone.set()
                lab[1].stop()
            return report

        device.benchmark = then_the_server_goes
    run = run_farm(plan, RunStore(tmp_path / "results", "night-1"), devices)
    by_host = {host: rows for host, rows in run.frame.groupby("device_host")}
    assert set(by_host["lab-a"]["status"]) == {"ok"} and len(by_host["lab-a"]) == 6
    lost = by_host["lab-b"]
    assert CellStatus.NOT_RUN in set(lost["status"]), lost[["device", "status", "error"]]
    not_run = lost[lost["status"] == CellStatus.NOT_RUN]
    assert not_run["error"].str.contains(f"adb server went away .*127.0.0.1:{lab[1].server_port}").all()
    assert set(run.quarantined) == set(doomed)


def test_sigkill_then_resume_across_two_servers(tmp_path, lab):
    data, _ = _matrix(tmp_path, lab)
    lines = ['name = "lab"', 'variants = ["fp32", "int8"]', f"models = {data['models']!r}"]
    for server in data["servers"]:
        lines += ["[[servers]]", f'name = "{server["name"]}"', f'address = "{server["address"]}"']
    lines += ["[run]", "iterations = 100", "warmup = 2", "threads = 1"]
    (tmp_path / "lab.toml").write_text("\n".join(lines).replace("'", '"') + "\n")
    command = farm_killed_mid_run(tmp_path, "lab.toml")
    before = read_cells(tmp_path / "r" / "n1")
    assert 2 <= len(before) < 8, "the kill should land mid-run"

    # The killed coordinator's leases on the phones name a process of this computer that is gone:
    # the resumed run breaks them instead of waiting for them to expire.
    resumed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = read_cells(tmp_path / "r" / "n1")
    assert len(after) == 8 and set(after["status"]) == {"ok"}
    assert not after.duplicated(["device", "model", "variant"]).any()
    assert set(after["device_host"]) == {"lab-a", "lab-b"}
    kept = after.set_index(["device", "variant"]).loc[before.set_index(["device", "variant"]).index]
    assert list(kept["started_at"]) == list(before["started_at"])


def test_devices_shows_each_server_and_a_silent_one_by_name(tmp_path, lab):
    silent = HostAdb(tmp_path).server_port  # nothing listens there
    specs = [f"adb://127.0.0.1:{s.server_port}" for s in lab] + [f"adb://127.0.0.1:{silent}"]
    args = [a for spec in specs for a in ("-d", spec)]
    env = {**os.environ, "COLUMNS": "400", "ANDROID_ADB_SERVER_PORT": "1"}
    shown = subprocess.run(
        [sys.executable, "-m", "pocketbench", "devices", *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert shown.returncode == 0, shown.stderr
    for server in lab:
        section = shown.stdout.split(f"adb server 127.0.0.1:{server.server_port}")[1].split("adb server")[0]
        listed = server.run("devices").stdout.split("\n")[1:]
        serials = [line.split()[0] for line in listed if line.strip()]
        assert len(serials) == 2 and all(f"{serial} " in section for serial in serials), section
        assert section.count("device") >= 2 and "Pixel 8" in section
    assert f"no adb server answers at 127.0.0.1:{silent} (Connection refused)" in shown.stdout


def test_the_phone_lease_is_seen_through_every_server(tmp_path, lab, phone_factory):
    """One phone attached to both hosts' servers: a coordinator holding it through one server keeps
    another off it through the other (the holder has its own cache, as on another host, so only the
    lease on the phone stands between them); the holder killed with SIGKILL does not keep it."""
    phone = phone_factory()
    for server in lab:
        server.connect(phone)
    via = [f"adb://127.0.0.1:{s.server_port}/{phone.address}" for s in lab]
    holder_code = (
        "import sys, time\n"
        "from pocketbench.devices.adb.device import AdbDevice\n"
        "d = AdbDevice(sys.argv[1]); d.take_lease(5); print('held', flush=True); time.sleep(600)\n"
    )
    elsewhere = {**os.environ, "POCKETBENCH_CACHE": str(tmp_path / "other-host-cache")}
    holder = subprocess.Popen(
        [sys.executable, "-c", holder_code, via[0]], stdout=subprocess.PIPE, text=True, env=elsewhere
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        other = open_device(via[1])
        assert isinstance(other, AdbDevice)
        with pytest.raises(LeaseHeld, match=rf"leased by another pocketbench coordinator: .*process {holder.pid}"):
            other.take_lease(wait_s=1)
        owner = other.shell(f"cat {LEASE_DIR}/owner").output.split()
        assert owner[3].startswith(f"{holder.pid}:")
    finally:
        holder.kill()
        holder.wait()
    other.take_lease(wait_s=5)  # its owner is a process of this computer that is gone
    assert other.phone_lease is not None and other.phone_lease.held
    other.close()
    assert other.shell(f"ls {LEASE_DIR} 2>/dev/null; true").output.strip() == ""
