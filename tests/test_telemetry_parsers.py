"""Pure parsers of device text on captures from the emulated phone and from this host."""

import pytest
from pocketbench.devices.shell import parse_file_dump, read_files_command
from pocketbench.telemetry.energy import detect_sources
from pocketbench.telemetry.parsers import (
    celsius,
    parse_cpu_list,
    parse_dumpsys_battery,
    parse_odpm,
)
from pocketbench.telemetry.thermal import parse_state, throttle_reasons

from tests.conftest import DATA


def test_file_dump_splits_files_and_marks_unreadable_ones():
    files = parse_file_dump((DATA / "emulator_energy_probe.txt").read_text())
    assert files["/sys/class/power_supply/battery/current_now"] == "519"
    assert files["/sys/class/power_supply/battery/status"] == "Discharging"
    assert files["/sys/bus/iio/devices/iio:device0/energy_value"].count("\n") == 3
    denied = "@@pocketbench err /sys/class/powercap/intel-rapl:0/energy_uj\ncat: Permission denied\n"
    assert parse_file_dump(denied) == {"/sys/class/powercap/intel-rapl:0/energy_uj": None}


def test_read_files_refuses_unsafe_patterns():
    with pytest.raises(ValueError, match="unsafe"):
        read_files_command(["/sys/x; rm -rf /"])


def test_odpm_energy_value():
    reading = parse_odpm((DATA / "emulator_odpm_energy_value.txt").read_text())
    assert reading.t_ms == 3602000
    assert reading.rails_uj == {
        "S2M_VDD_CPUCL2": 3602000000,
        "S2M_VDD_CPUCL1": 2161200000,
        "S2M_VDD_CPUCL0": 1440800000,
    }
    assert parse_odpm("not odpm") is None


def test_energy_sources_on_the_phone_best_first():
    plan = detect_sources(parse_file_dump((DATA / "emulator_energy_probe.txt").read_text()))
    assert [s.kind for s in plan.sources] == ["odpm", "fuel_gauge"]
    assert plan.sources[0].label == "ODPM iio:device0 (3 rails)"
    assert "/sys/class/power_supply/battery/status" in plan.sample_files


def test_energy_on_this_vm_is_not_available_with_the_reasons():
    plan = detect_sources(parse_file_dump((DATA / "host_energy_probe.txt").read_text()))
    assert plan.sources == ()
    assert "no RAPL" in plan.unavailable and "fuel gauge" in plan.unavailable
    assert plan.describe().startswith("not available: ")


def test_rapl_root_only_says_so():
    files = {"/sys/class/powercap/intel-rapl:0/energy_uj": None, "/sys/class/powercap/intel-rapl:0:0/energy_uj": "5"}
    assert "not readable" in detect_sources(files).unavailable
    readable = {
        "/sys/class/powercap/intel-rapl:0/energy_uj": "123",
        "/sys/class/powercap/intel-rapl:0/max_energy_range_uj": "262143328850",
    }
    (rapl,) = detect_sources(readable).sources
    assert rapl.kind == "rapl" and rapl.wrap_uj == (262143328850,)


def test_state_from_the_phone():
    state = parse_state((DATA / "emulator_state.txt").read_text())
    assert state.zones == {"cpu-big": 52.3, "battery": 31.0, "skin-therm": 33.5}
    assert state.status == 2
    assert [(p.name, p.cpus, p.cpuinfo_max_khz, p.scaling_max_khz) for p in state.policies] == [
        ("policy0", (0,), 1_800_000, 1_800_000),
        ("policy1", (1,), 2_800_000, 1_400_000),
    ]


def test_state_of_this_vm_is_empty_not_an_error():
    state = parse_state((DATA / "host_state.txt").read_text())
    assert state.zones == {} and state.status is None and state.policies == ()
    assert throttle_reasons(state, state) == []


def test_units_and_lists():
    assert celsius(52300) == 52.3 and celsius(310) == 31.0 and celsius(45) == 45.0
    assert parse_cpu_list("0-3,6") == (0, 1, 2, 3, 6) and parse_cpu_list("4 5") == (4, 5)


def test_dumpsys_battery_names_the_status():
    values = parse_dumpsys_battery((DATA / "emulator_dumpsys_battery.txt").read_text())
    assert values["status"] == "Discharging" and values["USB powered"] == "false" and values["voltage"] == "3850"
