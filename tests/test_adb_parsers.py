"""Pure parsers of phone text, on captures: *_emulator.txt came from the emulated phone over
adb-shell; *_handmade.txt were written by hand in the formats real Pixel/Samsung phones print."""

import pytest
from pocketbench.devices.adb import identity as ident
from pocketbench.devices.adb.deploy import confined, safe_name
from pocketbench.devices.adb.transport import ConnectionLost, parse_sentinel, with_sentinel
from pocketbench.errors import PocketbenchError

from tests.conftest import DATA


def props(name: str) -> dict[str, str]:
    return ident.parse_getprop((DATA / name).read_text())


def test_emulator_getprop_capture_gives_its_identity():
    phone = ident.identity_from_props(props("getprop_emulator.txt"))
    assert (phone.manufacturer, phone.model, phone.serial) == ("Google", "Pixel 8", "EMU0001")
    assert phone.soc == "Google Tensor G3"
    assert phone.os == "Android 14 (API 34)"


def test_pixel_identity_and_multiline_value():
    p = props("getprop_pixel8pro_handmade.txt")
    assert "vendor.some.multiline" not in p  # a value spanning lines is skipped, never half-read
    assert p["sys.boot_completed"] == "1"
    phone = ident.identity_from_props(p)
    assert phone.model == "Pixel 8 Pro"
    assert phone.abi == "arm64-v8a"
    assert phone.serial == "3A021FDJH00ABC"
    assert phone.fingerprint.startswith("google/husky/husky:14/")


def test_samsung_before_api_31_falls_back_to_the_board_and_boot_serial():
    phone = ident.identity_from_props(props("getprop_samsung_s10_handmade.txt"))
    assert phone.soc == "exynos5"  # no ro.soc.* before API 31
    assert phone.serial == "RF8M30ABCDE"  # empty ro.serialno: ro.boot.serialno
    assert phone.abilist == "arm64-v8a,armeabi-v7a,armeabi"


@pytest.mark.parametrize(
    ("capture", "clusters", "big", "mask"),
    [
        ("cpufreq_emulator.txt", [((0,), 1800000), ((1,), 2800000)], (1,), "2"),
        # No cpu_capacity: the slowest cluster is the little one; the rest are the performance cores.
        (
            "cpufreq_pixel8pro_handmade.txt",
            [((0, 1, 2, 3), 1704000), ((4, 5, 6, 7), 2367000), ((8,), 2910000)],
            (4, 5, 6, 7, 8),
            "1f0",
        ),
        (
            "cpufreq_samsung_s10_handmade.txt",
            [((0, 1, 2, 3), 1950000), ((4, 5), 2314000), ((6, 7), 2730000)],
            (4, 5, 6, 7),
            "f0",
        ),
        ("cpufreq_per_cpu_policies_handmade.txt", [((0, 1), 1800000), ((2, 3), 2400000)], (2, 3), "c"),
    ],
)
def test_clusters_grouped_by_max_frequency(capture, clusters, big, mask):
    parsed = ident.parse_clusters((DATA / capture).read_text())
    assert [(c.cpus, c.max_khz) for c in parsed] == clusters
    assert ident.big_cores(parsed) == big
    assert ident.cpu_mask(big) == mask


def test_cpu_lists_and_description():
    assert ident.parse_cpu_list("0-3,6") == (0, 1, 2, 3, 6)
    assert ident.parse_cpu_list("4 5 6 7\n") == (4, 5, 6, 7)
    with pytest.raises(ValueError):
        ident.parse_cpu_list("zero")
    clusters = ident.parse_clusters((DATA / "cpufreq_samsung_s10_handmade.txt").read_text())
    assert ident.describe_clusters(clusters) == "4×1.95 GHz + 2×2.31 GHz + 2×2.73 GHz"


def test_battery_status():
    assert ident.parse_battery((DATA / "battery_emulator.txt").read_text()) == ("Discharging", "80")
    assert ident.parse_battery((DATA / "battery_charging_handmade.txt").read_text()) == ("Charging", "64")
    assert ident.parse_battery("") == ("", "")


def test_sentinel_carries_the_exit_status_and_its_absence_means_lost():
    assert parse_sentinel("out\n\n__pocketbench_rc=3\n").exit_code == 3
    result = parse_sentinel("no newline\n__pocketbench_rc=0\n")
    assert (result.output, result.exit_code) == ("no newline", 0)
    with pytest.raises(ConnectionLost):
        parse_sentinel("half of the output")
    assert "exit" in with_sentinel("exit 3")  # run in a subshell: `exit` cannot skip the sentinel


@pytest.mark.parametrize("name", ["../x", "..", ".", "a/b", "x;rm", "$(touch y)", "a b", "`id`", ""])
def test_hostile_names_never_become_device_or_host_paths(tmp_path, name):
    with pytest.raises(PocketbenchError):
        safe_name(name)
    with pytest.raises(PocketbenchError):
        confined(tmp_path, name)
    assert confined(tmp_path, "result.json") == (tmp_path / "result.json").resolve()


def test_adb_key_is_created_private_and_a_readable_one_is_refused(tmp_path):
    from pocketbench.devices.adb.keys import ensure_key, load_signer

    key = tmp_path / ".android" / "adbkey"
    assert load_signer(key) is not None
    assert key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / ".android" / "adbkey.pub").read_text().startswith("QAAAA")
    key.chmod(0o644)
    with pytest.raises(PocketbenchError, match=rf"{key} is readable by group or others .*chmod 600 {key}"):
        ensure_key(key)


@pytest.mark.parametrize(
    ("capture", "emulated", "emulation"),
    [
        ("getprop_emulator_arm64.txt", True, "qemu-user aarch64 on x86_64"),
        ("getprop_studio_emulator_handmade.txt", True, "Android emulator"),  # ro.boot.qemu=1 only
        ("getprop_pixel8pro_handmade.txt", False, ""),
        ("getprop_samsung_s10_handmade.txt", False, ""),
    ],
)
def test_an_emulator_says_so_and_a_phone_does_not(capture, emulated, emulation):
    phone = ident.identity_from_props(props(capture))
    assert (phone.emulated, phone.emulation) == (emulated, emulation)


def test_the_arm64_persona_capture_is_an_arm64_phone():
    phone = ident.identity_from_props(props("getprop_emulator_arm64.txt"))
    assert (phone.abi, phone.abilist, phone.serial) == ("arm64-v8a", "arm64-v8a", "EMUARM1")
