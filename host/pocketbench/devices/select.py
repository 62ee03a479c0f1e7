"""Turn device specs (the CLI's `--device` values) into devices: `local`; `tcp:HOST:PORT`, `usb:SERIAL`, `adb:SERIAL`
(a phone over adb); `adb://HOST:PORT/SERIAL` (a phone of another host's adb server) or `adb://HOST:PORT`
(every phone it lists); or `auto` (the single phone reachable by any route, else this computer)."""

from __future__ import annotations

from pocketbench.devices.base import Device
from pocketbench.errors import DeviceError, PocketbenchError, shown
from pocketbench.names import safe_serial

PHONE_ROUTES = ("tcp:", "usb:", "adb:")  # adb: also starts adb://HOST:PORT/SERIAL
DEVICE_SPECS = "local, auto, tcp:HOST:PORT, usb:SERIAL, adb:SERIAL, adb://HOST:PORT/SERIAL or adb://HOST:PORT"


def open_device(spec: str, wait_s: float = 0.0, notes: list[str] | None = None) -> Device:
    """The device `spec` names; a phone that is not there fails at once (or after `wait_s`).
    `notes` receives what the user should hear about the choice (`auto` found no phone), for the
    caller to show: a library does not print."""
    from pocketbench.devices.local import LocalDevice

    if spec == "local":
        return LocalDevice()
    if spec.startswith(PHONE_ROUTES):
        from pocketbench.devices.adb.device import AdbDevice
        from pocketbench.devices.adb.discover import check_present
        from pocketbench.devices.adb.server_address import is_server_spec, parse_server_spec

        if is_server_spec(spec):
            if parse_server_spec(spec)[1] is None:
                raise PocketbenchError(f"{spec} names a whole adb server: name one phone, {spec}/SERIAL")
        else:
            route, _, serial = spec.partition(":")  # a serial becomes part of commands and lease files
            safe_serial(serial, f"device {route}: serial")

        device = AdbDevice(spec)  # checks the spec's form without any I/O
        check_present(spec, wait_s)
        return device
    if spec == "auto":
        from pocketbench.devices.adb.device import AdbDevice
        from pocketbench.devices.adb.discover import find_phones, pick_auto

        found, searched = find_phones()
        phone = pick_auto(found, searched)
        if phone is None:
            if notes is not None:
                notes.append(f"no phone found ({'; '.join(searched)}): measuring on this computer")
            return LocalDevice()
        return AdbDevice(phone.spec)
    raise PocketbenchError(f"unknown device {shown(spec)}: use {DEVICE_SPECS}")


def expand_servers(specs: list[str], notes: list[str] | None = None) -> list[str]:
    """`specs` with each `adb://HOST:PORT` replaced by the usable phones that server lists (a phone
    in another state is left out and said in `notes`); a server that does not answer, or lists no
    usable phone, fails naming it."""
    from pocketbench.devices.adb.discover import server_phones
    from pocketbench.devices.adb.server_address import is_server_spec, parse_server_spec

    expanded = []
    for spec in specs:
        server = parse_server_spec(spec)[0] if is_server_spec(spec) and spec.count("/") == 2 else None
        if server is None:
            expanded.append(spec)
            continue
        found = server_phones(server)
        usable = [f.spec for f in found if f.usable]
        left_out = [f"{f.spec} is {f.state}: {f.fix}" for f in found if not f.usable]
        if not usable:
            raise PocketbenchError(
                f"the adb server at {server} lists no usable phone" + (f" ({'; '.join(left_out)})" if left_out else "")
            )
        if left_out and notes is not None:
            notes.append(f"left out: {'; '.join(left_out)}")
        expanded += usable
    return expanded


def open_devices(specs: list[str], wait_s: float = 0.0, notes: list[str] | None = None) -> list[Device]:
    """The devices `specs` name, each once (`notes` as for open_device); `adb://HOST:PORT` opens
    every usable phone of that server."""
    devices = [open_device(s, wait_s, notes) for s in expand_servers(specs, notes)]
    ids = [d.device_id for d in devices]
    if len(set(ids)) != len(ids):
        raise PocketbenchError(f"device list {specs} names one device twice")
    return devices


def check_runners(devices: list[Device]) -> None:
    """Before any export or phone work: every phone has a runner for its ABI, else one error
    naming each phone without one and how to build it. A phone that cannot be asked is left to
    the run itself (it fails or is retried there like any lost link)."""
    from pocketbench.devices.adb.device import AdbDevice
    from pocketbench.devices.adb.runner_choice import built_runner

    problems = []
    for device in devices:
        if not isinstance(device, AdbDevice):
            continue
        try:
            abi = device.identity().abi
        except DeviceError:
            continue
        try:
            built_runner(abi)
        except PocketbenchError as exc:
            problems.append(f"{device.device_id}: {exc}")
    if problems:
        raise PocketbenchError("nothing was run: " + "; ".join(problems))
