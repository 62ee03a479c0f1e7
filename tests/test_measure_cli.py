"""`pocketbench bench --device tcp:HOST:PORT` against the emulated phone: energy from its scripted
ODPM rails, temperatures, repetitions and the speedup test, end to end through the CLI."""

import json
import os
import subprocess
import sys

from pocketbench.emulator import SysfsScript, constant, ramp

# Power rises steadily, so every loop draws more than the idle window before it did.
SCRIPT = SysfsScript(
    power_w=ramp((0, 0.8), (600, 60.8)),
    odpm_rails=((3, "S2M_VDD_CPUCL2", 0.6), (4, "S2M_VDD_CPUCL1", 0.4)),
    thermal_zones=(("cpu-big", constant(39.0)), ("battery", constant(31.0))),
)


def test_bench_on_the_emulated_phone_reports_energy_and_stability(phone_factory, tmp_path):
    from tests.runner_support import android_bundle

    android_bundle("x86_64")  # what the emulated x86_64 phone runs
    phone = phone_factory(script=SCRIPT)
    env = {**os.environ, "COLUMNS": "200"}  # the harness key (POCKETBENCH_ADB_KEY) the phone trusts
    # Idle and loop windows of 2 s: the ramp's extra draw over idle grows with the time between them,
    # while a loaded host delays when each rail sample is read by a fraction of a second.
    argv = [
        sys.executable, "-m", "pocketbench", "bench", "--device", f"tcp:{phone.address}", "--model", "digits_cnn",
        "--variants", "fp32,int8", "--repetitions", "2", "--iterations", "20", "--energy-window", "2",
        "--results", str(tmp_path / "results"), "--json",
    ]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = {r["variant"]: r for r in json.loads(out.stdout)["rows"]}
    for row in rows.values():
        assert row["status"] == "ok" and row["repetitions"] == 2
        assert row["energy_source"] == "ODPM iio:device0 (2 rails)"
        assert row["energy_mj_per_inference"] is not None, (row["energy_status"], row["notes"])
        assert row["energy_mj_per_inference"] > 0 and row["energy_mj_per_inference_err"] >= 0
        assert row["power_loop_w"] > row["power_idle_w"] > 0.8
        assert row["temp_start_c"] == 39.0 and row["throttled"] is False
        assert row["peak_rss_swap_kb"] >= row["peak_rss_kb"] > 0
    assert rows["int8"]["speedup_p_value"] is not None
    assert "mJ/inf" in out.stderr and "[95% CI]" in out.stderr
