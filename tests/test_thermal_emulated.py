"""Cool-down and throttle detection against the emulated phone's scripted sysfs, over adb-shell."""

import pytest
from pocketbench.devices.shell import device_shell
from pocketbench.emulator import Cluster, SysfsScript, constant, ramp, steps
from pocketbench.telemetry.thermal import DeviceState, cool_down, read_state, throttle_reasons

from tests.test_adb_device import adb_key, device_for  # noqa: F401 (adb_key is an autouse fixture)


@pytest.fixture
def shell(phone):
    device = device_for(phone)
    yield device_shell(device)
    device.close()


def zones(cpu):
    return (("cpu-big", cpu), ("battery", constant(31.0)))


def test_slow_cooling_zone_waits_then_proceeds(phone, shell):
    # Hot at 55 °C, cooling to 38 °C over 2 s; idle is 38 °C.
    phone.sysfs.set_script(SysfsScript(thermal_zones=zones(ramp((0, 55.0), (2.0, 38.0)))))
    idle = DeviceState({"cpu-big": 38.0, "battery": 31.0})
    waited, state = cool_down(shell, idle, timeout_s=30, poll_s=0.2)
    assert waited.reached and waited.still_hot == {}
    assert waited.waited_s > 0.5  # it did wait for the zone
    assert state.zones["cpu-big"] <= 38.0 + 2.0


def test_cooldown_is_bounded_by_its_timeout(phone, shell):
    phone.sysfs.set_script(SysfsScript(thermal_zones=zones(constant(60.0))))
    idle = DeviceState({"cpu-big": 38.0, "battery": 31.0})
    waited, _ = cool_down(shell, idle, timeout_s=1.0, poll_s=0.2)
    assert not waited.reached and waited.still_hot == {"cpu-big": pytest.approx(22.0)}
    assert waited.waited_s >= 1.0


def test_cool_device_does_not_wait(phone, shell):
    phone.sysfs.set_script(SysfsScript(thermal_zones=zones(constant(38.5))))
    waited, _ = cool_down(shell, DeviceState({"cpu-big": 38.0}), timeout_s=5)
    assert waited.reached and waited.waited_s == 0.0


def test_frequency_drop_during_the_run_is_throttled(phone, shell):
    capped = Cluster((1,), 2_800_000, cap_khz=steps((0, 2_800_000), (1.0, 1_400_000)))
    phone.sysfs.set_script(SysfsScript(clusters=(Cluster((0,), 1_800_000), capped)))
    phone.sysfs.pin_time(0.5)
    start = read_state(shell)
    phone.sysfs.pin_time(1.5)
    end = read_state(shell)
    assert throttle_reasons(start, end) == ["policy1 max frequency dropped 2800 → 1400 MHz"]
    assert throttle_reasons(start, start) == []


def test_a_drop_that_recovered_is_caught_by_the_samples(phone, shell):
    phone.sysfs.set_script(SysfsScript())
    state = read_state(shell)
    big = state.policies[-1]
    caps = {big.name: [big.scaling_max_khz, big.scaling_max_khz // 2, big.scaling_max_khz]}
    assert throttle_reasons(state, state, caps) == [
        f"{big.name} max frequency dropped {big.scaling_max_khz // 1000} → {big.scaling_max_khz // 2000} MHz"
    ]


def test_rising_thermal_status_is_throttled(phone, shell):
    phone.sysfs.set_script(SysfsScript(thermal_zones=zones(steps((0, 40.0), (1.0, 56.0)))))
    phone.sysfs.pin_time(0.0)
    start = read_state(shell)
    phone.sysfs.pin_time(2.0)
    end = read_state(shell)
    assert (start.status, end.status) == (0, 3)
    assert throttle_reasons(start, end) == ["thermal status rose 0 → 3"]
