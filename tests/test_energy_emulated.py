"""Energy against the emulated phone: the real runner samples a scripted sysfs over adb-shell.

The truth is the injected power profile integrated over the idle window and the loop the
runner reports. The runner's steady_clock and the emulator's script clock are both this
host's CLOCK_MONOTONIC, so the windows map onto the script exactly.
"""

import time

import numpy as np
import pytest
from pocketbench.devices.shell import device_shell
from pocketbench.emulator import SysfsScript, constant, ramp, steps
from pocketbench.runner.report import BenchJob, RunnerSamples
from pocketbench.telemetry.energy import (
    BATTERY,
    NOT_MEASURABLE_CONSTANT,
    NOT_MEASURABLE_NOISE,
    NOT_MEASURABLE_RESOLUTION,
    EnergyResult,
    EnergySource,
    best_energy,
    combine,
    compute_energy,
    probe_energy,
)

from tests.runner_support import android_bundle, input_sets, tiny_ptes, write_inputs
from tests.test_adb_device import adb_key, device_for  # noqa: F401 (adb_key is an autouse fixture)

WINDOW_S = 1.0


@pytest.fixture(scope="module")
def pte(tmp_path_factory):
    android_bundle("x86_64")
    return tiny_ptes(tmp_path_factory.getbasetemp() / "runner-ptes")["fp32"].path  # shared with the runner tests


@pytest.fixture
def inputs(tmp_path):
    return write_inputs(tmp_path / "inputs.pbtf", input_sets(1, seed=1))


def truth_net_mj(script: SysfsScript, script_start: float, report, share: float = 1.0) -> float:
    """∫P over the loop minus the idle window's mean power × the loop's length (mJ)."""

    def energy(window):
        a, b = (t / 1e9 - script_start for t in window)
        return share * (script.power_w.integral(b) - script.power_w.integral(a))

    idle_s = (report.idle_window_ns[1] - report.idle_window_ns[0]) / 1e9
    loop_s = (report.loop_window_ns[1] - report.loop_window_ns[0]) / 1e9
    return 1e3 * (energy(report.loop_window_ns) - energy(report.idle_window_ns) / idle_s * loop_s)


def measure(phone, script, pte, inputs, allow_charging=False):
    phone.sysfs.set_script(script)
    script_start = time.monotonic() - phone.sysfs.now()
    device = device_for(phone)
    shell = device_shell(device)
    plan = probe_energy(shell)
    job = BenchJob(
        pte=pte,
        inputs=inputs,
        iterations=20,
        min_seconds=WINDOW_S,
        sample_files=plan.sample_files,
        sample_interval_ms=10,
        idle_baseline_s=WINDOW_S,
    )
    report = device.benchmark(job)
    device.close()
    assert report.ok, report.error
    result = best_energy(
        plan, report.samples, report.idle_window_ns, report.loop_window_ns, len(report.iterations_ns), allow_charging
    )
    return plan, report, result, script_start


# A staircase that keeps rising, so the loop (after the idle window) draws more than idle did.
STAIRS = steps(*[(0.25 * k, 0.8 + 0.3 * k) for k in range(80)])


@pytest.mark.parametrize(
    ("name", "script", "share"),
    [
        ("ramp-uA-negative", SysfsScript(power_w=ramp((0, 0.5), (20, 20.5))), 1.0),
        ("stepped-mA-positive", SysfsScript(power_w=STAIRS, current_unit="mA", discharging_sign=1), 1.0),
        ("stepped-odpm", SysfsScript(power_w=STAIRS, odpm_rails=((3, "S2M_VDD_CPUCL2", 0.6), (4, "CL1", 0.4))), 1.0),
    ],
)
def test_net_energy_within_5_percent_of_the_injected_profile(phone, pte, inputs, name, script, share):
    plan, report, result, start = measure(phone, script, pte, inputs)
    assert result.invalid is None, result.invalid
    truth = truth_net_mj(script, start, report, share)
    assert result.net_mj == pytest.approx(truth, rel=0.05), (name, result, truth)
    assert result.per_inference_mj == pytest.approx(result.net_mj / len(report.iterations_ns))
    if "odpm" in name:
        assert plan.sources[0].kind == "odpm" and result.source.startswith("ODPM")
    else:
        unit = "mA" if "mA" in name else "µA"
        sign = "positive" if "positive" in name else "negative"
        assert result.notes == (f"current in {unit}, {sign} while discharging (seen)",)


def test_a_gauge_reading_one_constant_power_is_not_measurable(phone, pte, inputs):
    """The emulated phone's default gauge reads 1.2 W whatever runs: its net energy was rounding
    noise shown as a figure (`-3.54e-13 ± 1.4e-15 mJ/inf`); it is "not measurable" with why."""
    _, _, result, _ = measure(phone, SysfsScript(), pte, inputs)
    assert result.per_inference_mj is None and result.net_mj is None
    assert result.invalid is not None and result.invalid.startswith(NOT_MEASURABLE_CONSTANT), result.invalid
    assert "constant 1.2 W" in result.invalid
    columns = combine([result, result])
    assert columns["energy_status"] == result.invalid and "energy_mj_per_inference" not in columns


def _gauge_samples(currents_ua: list[int], status: str = "Discharging") -> RunnerSamples:
    """A gauge read every 10 ms at 3.85 V, with these currents and this battery status."""
    files = [f"{BATTERY}/current_now", f"{BATTERY}/voltage_now", f"{BATTERY}/status"]
    values: list[list[str | None]] = [[str(-c), "3850000", status] for c in currents_ua]
    n = len(currents_ua)
    return RunnerSamples(10, files, {}, [k * 10_000_000 for k in range(n)], values, [None] * n, [None] * n, [None] * n)


def test_a_change_below_one_count_of_the_gauge_is_not_measurable():
    """The loop's current flickers one µA count above idle for a few readings: less energy than
    one count over the whole loop, so no figure."""
    source = EnergySource(
        "fuel_gauge", "battery fuel gauge", (f"{BATTERY}/current_now", f"{BATTERY}/voltage_now", f"{BATTERY}/status")
    )
    currents = [259_740] * 100 + [259_741 if k % 10 == 0 else 259_740 for k in range(100)]
    result = compute_energy(source, _gauge_samples(currents), (0, 990_000_000), (1_000_000_000, 1_990_000_000), 50)
    assert result.per_inference_mj is None
    assert result.invalid is not None and result.invalid.startswith(NOT_MEASURABLE_RESOLUTION), result.invalid
    stepped = [259_740] * 100 + [269_740] * 100  # 10 mA more while the loop runs: a figure
    result = compute_energy(source, _gauge_samples(stepped), (0, 990_000_000), (1_000_000_000, 1_990_000_000), 50)
    assert result.invalid is None and result.per_inference_mj == pytest.approx(0.01 * 3.85 * 0.99 * 1e3 / 50, rel=0.02)


def test_a_charging_battery_is_a_flag_on_the_row_whether_refused_or_allowed():
    """The battery status, not the words of `energy_status`, decides `energy_charging`."""
    gauge = (f"{BATTERY}/current_now", f"{BATTERY}/voltage_now", f"{BATTERY}/status")
    source = EnergySource("fuel_gauge", "battery fuel gauge", gauge)
    stepped = [259_740] * 100 + [269_740] * 100
    windows = ((0, 990_000_000), (1_000_000_000, 1_990_000_000))
    refused = compute_energy(source, _gauge_samples(stepped, "Charging"), *windows, 50)
    allowed = compute_energy(source, _gauge_samples(stepped, "Full"), *windows, 50, allow_charging=True)
    discharging = compute_energy(source, _gauge_samples(stepped), *windows, 50)
    assert refused.invalid is not None and refused.charging
    assert allowed.invalid is None and allowed.charging and discharging.invalid is None and not discharging.charging
    assert combine([refused])["energy_charging"] is True and "energy_mj_per_inference" not in combine([refused])
    assert combine([allowed, allowed])["energy_charging"] is True
    assert combine([discharging, discharging])["energy_charging"] is False
    # A repetition refused for charging beside measured ones: the figure comes from those, unflagged.
    assert combine([discharging, refused, discharging])["energy_charging"] is False
    assert combine([])["energy_charging"] is None


def test_energy_lost_in_the_idle_noise_is_not_a_figure():
    """Repetitions that disagree around zero give no figure that could be negative: the status
    gives the interval and its upper bound instead."""
    pairs = ((1.2, 0.02), (0.9, -0.01))
    reps = [
        EnergyResult(
            "gauge",
            gross_mj=g,
            idle_mj=1.0,
            net_mj=g - 1.0,
            per_inference_mj=p,
            per_inference_err_mj=0.001,
            idle_w=1.0,
            loop_w=1.0,
        )
        for g, p in pairs
    ]
    columns = combine(reps)
    assert "energy_mj_per_inference" not in columns
    assert str(columns["energy_status"]).startswith(NOT_MEASURABLE_NOISE) and "at most" in str(columns["energy_status"])
    clear = [
        EnergyResult(
            "gauge",
            gross_mj=2.0,
            idle_mj=1.0,
            net_mj=1.0,
            per_inference_mj=p,
            per_inference_err_mj=0.001,
            idle_w=1.0,
            loop_w=2.0,
        )
        for p in (0.05, 0.052)
    ]
    assert combine(clear)["energy_mj_per_inference"] == pytest.approx(0.051)


def test_charging_with_only_the_fuel_gauge_is_flagged_with_the_fix(phone, pte, inputs):
    script = SysfsScript(power_w=STAIRS, status=constant("Charging"))
    _, _, result, _ = measure(phone, script, pte, inputs)
    assert result.invalid and "Charging" in result.invalid and "wireless adb" in result.invalid
    assert "--allow-charging" in result.invalid
    _, _, allowed, _ = measure(phone, script, pte, inputs, allow_charging=True)
    assert allowed.invalid is None and "charging allowed (--allow-charging)" in allowed.notes
    assert combine([result])["energy_status"] == result.invalid and combine([result])["energy_charging"] is True
    assert combine([allowed, allowed])["energy_charging"] is True


def test_charging_does_not_spoil_odpm(phone, pte, inputs):
    script = SysfsScript(power_w=STAIRS, status=constant("Charging"), odpm_rails=((3, "S2M_VDD_CPUCL2", 1.0),))
    _, report, result, start = measure(phone, script, pte, inputs)
    assert result.invalid is None and result.source.startswith("ODPM") and not result.charging
    assert result.net_mj == pytest.approx(truth_net_mj(script, start, report), rel=0.05)


def test_repetitions_combine_with_an_uncertainty(phone, pte, inputs):
    script = SysfsScript(power_w=ramp((0, 1.0), (60, 9.0)))
    results = [measure(phone, script, pte, inputs)[2] for _ in range(2)]
    columns = combine(results)
    per = [r.per_inference_mj for r in results]
    assert columns["energy_mj_per_inference"] == pytest.approx(np.mean(per))
    assert columns["energy_mj_per_inference_err"] >= np.std(per, ddof=1) / np.sqrt(2) - 1e-12


def test_a_counter_that_never_moves_is_not_measurable_rather_than_a_signed_zero(phone, pte, inputs):
    """Issue 14 item 8: a constant counter used to become `-4.07e-16 ± 1.4e-15 mJ/inf`."""
    _, _, result, _ = measure(phone, SysfsScript(power_w=constant(0.0)), pte, inputs)
    assert result.per_inference_mj is None
    assert result.invalid is not None and result.invalid.startswith("not measurable: counter did not change")
    assert combine([result, result])["energy_status"] == result.invalid
