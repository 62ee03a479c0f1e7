"""Pure parts of the emulated phone: packets, service names, key blobs, sysfs scripts."""

import pytest
from adb_shell.auth.keygen import keygen
from adb_shell.auth.sign_pythonrsa import PythonRSASigner
from pocketbench.emulator import wire as p
from pocketbench.emulator.auth import (
    KeyFormatError,
    KeyStore,
    decode_public_key,
    new_token,
)
from pocketbench.emulator.sysfs_script import (
    Cluster,
    SysfsScript,
    battery_current,
    constant,
    ramp,
    render,
    steps,
)


def test_packet_round_trip_and_byte_sum_checksum():
    packet = p.pack(p.WRTE, 7, 9, b"\x01\x02\xff")
    header = p.unpack_header(packet[:24], p.MAX_PAYLOAD)
    assert (header.command, header.arg0, header.arg1, header.data_length) == (p.WRTE, 7, 9, 3)
    assert header.checksum == 0x102
    assert packet[24:] == b"\x01\x02\xff"


def test_checksum_of_large_payloads_is_the_plain_byte_sum():
    payload = bytes(range(256)) * 70_000  # 17.9 MB: the sum wraps past 2**32
    assert p.checksum(payload) == sum(payload) & 0xFFFFFFFF


def test_bad_magic_and_oversized_payload_are_fatal():
    packet = bytearray(p.pack(p.OKAY, 1, 2))
    packet[20] ^= 1
    with pytest.raises(p.ProtocolError, match="bad packet header"):
        p.unpack_header(bytes(packet[:24]), p.MAX_PAYLOAD)
    big = p.HEADER.pack(p.WRTE, 1, 2, p.MAX_PAYLOAD + 1, 0, p.WRTE ^ 0xFFFFFFFF)
    with pytest.raises(p.ProtocolError, match="exceeds"):
        p.unpack_header(big, p.MAX_PAYLOAD)


def test_version_and_payload_negotiation():
    assert p.negotiate_version(0x01000000) == 0x01000000
    assert p.negotiate_version(0x01000002) == 0x01000001
    assert p.negotiate_max_payload(256 * 1024) == 256 * 1024
    assert p.negotiate_max_payload(16 * 1024 * 1024) == p.MAX_PAYLOAD


def test_banner_lists_identity_and_features_and_rejects_separators():
    text = p.banner("shiba", "Pixel_8", "shiba").decode()
    assert text.startswith("device::ro.product.name=shiba;ro.product.model=Pixel_8;")
    assert text.endswith("features=shell_v2,cmd,stat_v2,ls_v2,fixed_push_mkdir")
    with pytest.raises(ValueError, match="model"):
        p.banner("shiba", "Pixel:8", "shiba")


@pytest.mark.parametrize(
    ("service", "command", "v2", "merged"),
    [
        ("shell:ls -l", "ls -l", False, True),
        ("shell,v2,TERM=xterm-256color,raw:echo a:b", "echo a:b", True, False),
        ("shell,v2,raw:", "", True, False),
        ("exec:cat /x", "cat /x", False, True),
    ],
)
def test_shell_service_names(service, command, v2, merged):
    request = p.parse_shell_service(service)
    assert request is not None
    assert (request.command, request.protocol_v2, request.merge_stderr) == (command, v2, merged)


def test_non_shell_services_are_not_shells():
    assert p.parse_shell_service("sync:") is None
    assert p.parse_shell_service("shellfish:x") is None


def test_shell_frames_split_only_when_complete():
    buffer = bytearray(p.shell_frame(p.SHELL_STDIN, b"abc") + p.shell_frame(p.SHELL_CLOSE_STDIN, b""))
    tail = p.shell_frame(p.SHELL_STDIN, b"xyz")
    buffer += tail[:6]
    assert p.split_shell_frames(buffer) == [(0, b"abc"), (4, b"")]
    assert bytes(buffer) == tail[:6]


def test_adb_public_key_blob_decodes_to_the_signing_key(tmp_path):
    keygen(str(tmp_path / "adbkey"))
    signer = PythonRSASigner.FromRSAKeyPath(str(tmp_path / "adbkey"))
    store = KeyStore(tmp_path / "adb_keys")
    store.add((tmp_path / "adbkey.pub").read_text())
    token = new_token()
    assert store.verify(token, signer.Sign(token))
    assert not store.verify(new_token(), signer.Sign(token))
    assert decode_public_key((tmp_path / "adbkey.pub").read_text()).key_size == 2048


def test_malformed_public_keys_are_refused():
    with pytest.raises(KeyFormatError):
        decode_public_key("not-base64!! user@host")
    with pytest.raises(KeyFormatError, match="blob"):
        decode_public_key("QUJD user@host")


def test_timelines_hold_steps_interpolate_ramps_and_integrate():
    power = steps((0, 1.0), (2, 3.0))
    assert power.at(1.99) == 1.0
    assert power.at(2.0) == 3.0
    assert power.integral(3.0) == pytest.approx(1.0 * 2 + 3.0 * 1)
    temp = ramp((0, 30.0), (10, 40.0))
    assert temp.at(5) == pytest.approx(35.0)
    assert temp.at(20) == 40.0
    assert temp.integral(10) == pytest.approx(350.0)
    with pytest.raises(ValueError, match="start at 0"):
        steps((1, 2.0))


@pytest.mark.parametrize(
    ("unit", "sign", "status", "expected"),
    [
        ("uA", -1, "Discharging", -500_000),
        ("mA", -1, "Discharging", -500),
        ("uA", 1, "Discharging", 500_000),
        ("uA", -1, "Charging", 500_000),
    ],
)
def test_battery_current_follows_vendor_conventions(unit, sign, status, expected):
    script = SysfsScript(
        power_w=constant(2.0),
        voltage_v=constant(4.0),
        current_unit=unit,
        discharging_sign=sign,
        status=constant(status),
    )
    assert battery_current(script, 0.0) == expected


def test_render_writes_kernel_units_and_the_frequency_cap():
    script = SysfsScript(
        power_w=constant(2.0),
        voltage_v=constant(4.0),
        thermal_zones=(("cpu", ramp((0, 40.0), (10, 50.0))),),
        clusters=(
            Cluster((0,), 1_800_000),
            Cluster((1,), 2_800_000, cap_khz=steps((0, 2_800_000), (5, 1_200_000))),
        ),
        odpm_rails=((3, "S2M_VDD_CPUCL2", 0.5),),
        odpm_boot_offset_s=100.0,
    )
    files = render(script, 6.0)
    assert files["class/power_supply/battery/voltage_now"] == "4000000\n"
    assert files["class/thermal/thermal_zone0/temp"] == "46000\n"
    assert files["devices/system/cpu/cpufreq/policy1/scaling_max_freq"] == "1200000\n"
    assert files["devices/system/cpu/cpufreq/policy1/cpuinfo_max_freq"] == "2800000\n"
    assert files["devices/system/cpu/online"] == "0-1\n"
    energy = files["bus/iio/devices/iio:device0/energy_value"].splitlines()
    assert energy == ["t=106000", "CH3(T=106000)[S2M_VDD_CPUCL2], 106000000"]
