"""The farm over three emulated phones on loopback, through the real adb device (AdbDevice):
every cell measured in parallel, a phone dropping out for good quarantined while the others
finish, and `pocketbench farm` SIGKILLed mid-run then resumed. Timing is never asserted:
the parallel speed-up is measured in benchmarks/farm_parallel.py."""

from __future__ import annotations

import subprocess

import pytest
from pocketbench.devices.select import open_device
from pocketbench.farm.run import run_farm
from pocketbench.results.cell_status import CellStatus
from pocketbench.results.store import RunStore, read_cells

from tests.farm_support import farm_killed_mid_run, matrix, write_models


@pytest.fixture(autouse=True)
def adb_key(tmp_path_factory, monkeypatch):
    """A private adb key (never the user's ~/.android)."""
    monkeypatch.setenv("POCKETBENCH_ADB_KEY", str(tmp_path_factory.getbasetemp() / "farm-adb-key" / "adbkey"))


@pytest.fixture
def phones(phone_factory):
    from tests.runner_support import android_bundle

    android_bundle("x86_64")  # the emulated phones run the x86_64 runner bundle
    return [phone_factory() for _ in range(3)]


def _specs(phones):
    return [(f"phone-{i}", f"tcp:{emu.host}:{emu.port}") for i, emu in enumerate(phones)]


def test_three_emulated_phones_measure_the_matrix_in_parallel(tmp_path, phones):
    models = write_models(tmp_path)
    plan = matrix(models, _specs(phones), variants=("fp32", "int8"))
    devices = {spec.name: open_device(spec.serial) for spec in plan.devices}
    run = run_farm(plan, RunStore(tmp_path / "results", "night-1"), devices)
    frame = run.frame
    assert len(frame) == 3 * 2
    assert set(frame["status"]) == {"ok"}, frame[["device", "status", "error"]]
    assert set(frame["device_kind"]) == {"adb"}
    assert set(frame["device_model"]) == {"Google Pixel 8"}
    assert set(frame["device_serial"]) == {serial for _, serial in _specs(phones)}
    assert frame.groupby("variant")["artifact_sha256"].nunique().eq(1).all()  # built once, pushed to each
    # The bench protocol on every phone: a CI on the p50, energy from the phone's rails, its temperatures.
    assert set(frame["energy_source"]) == {"battery fuel gauge"}  # the default script's only source
    # The default script's gauge reads one constant power: energy is refused with the reason, never a number.
    assert frame["energy_mj_per_inference"].isna().all() and frame["temp_start_c"].notna().all()
    assert frame["energy_status"].str.startswith("not measurable").all(), frame["energy_status"]
    assert frame["latency_p50_ci_low_ms"].notna().all() and not frame["throttled"].any()


def test_a_phone_gone_for_good_is_quarantined_and_the_others_finish(tmp_path, phones):
    models = write_models(tmp_path)
    plan = matrix(
        models, _specs(phones), ("small", "wide"), ("fp32", "int8"), quarantine_after=2, retries=1, health_timeout_s=3
    )
    devices = {spec.name: open_device(spec.serial) for spec in plan.devices}
    gone = devices["phone-1"]
    gone.reconnect_wait_s = 3
    measure, started = gone.benchmark, []

    def unplug_from_the_second_cell_on(job):
        if started:  # the phone disappears from the network as its second cell starts, for good
            phones[1].stop()
        started.append(job)
        return measure(job)

    gone.benchmark = unplug_from_the_second_cell_on
    run = run_farm(plan, RunStore(tmp_path / "results", "night-1"), devices)
    by_device = {d: f for d, f in run.frame.groupby("device")}
    assert set(by_device["phone-0"]["status"]) == {"ok"}
    assert set(by_device["phone-2"]["status"]) == {"ok"}
    statuses = list(by_device["phone-1"]["status"])
    assert statuses[0] == "ok"
    assert statuses[1:3] == ["device_unhealthy", "device_unhealthy"]
    assert statuses[3:] == [CellStatus.NOT_RUN]
    assert list(run.quarantined) == ["phone-1"]


def test_sigkill_mid_run_then_resume_over_emulated_phones(tmp_path, phones):
    models = write_models(tmp_path)
    lines = ['name = "emulated"', 'variants = ["fp32", "int8", "int8-dynamic"]', f'models = ["{models}:small"]']
    for name, serial in _specs(phones):
        lines += ["[[devices]]", f'name = "{name}"', f'serial = "{serial}"']
    lines += ["[run]", "iterations = 200", "warmup = 2", "threads = 1"]
    (tmp_path / "farm.toml").write_text("\n".join(lines) + "\n")
    command = farm_killed_mid_run(tmp_path, "farm.toml")
    before = read_cells(tmp_path / "r" / "n1")
    assert 2 <= len(before) < 9, "the kill should land mid-run"

    resumed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = read_cells(tmp_path / "r" / "n1")
    assert len(after) == 9  # every cell once: the killed run's cells plus the rest
    assert set(after["status"]) == {"ok"}
    assert not after.duplicated(["device", "model", "variant"]).any()
    kept = after.set_index(["device", "variant"]).loc[before.set_index(["device", "variant"]).index]
    assert list(kept["started_at"]) == list(before["started_at"])
    assert (tmp_path / "r" / "n1" / "report.html").exists() and (tmp_path / "r" / "n1" / "report.md").exists()
