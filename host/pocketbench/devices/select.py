"""Turn device specs (the CLI's `--device` values) into devices: `local`; `tcp:HOST:PORT`, `usb:SERIAL`, `adb:SERIAL`
(a phone over adb); or `auto` (the single phone reachable by any route, else this computer)."""

from __future__ import annotations

from pocketbench.devices.base import Device
from pocketbench.errors import DeviceError, PocketbenchError, shown
from pocketbench.names import safe_serial

PHONE_ROUTES = ("tcp:", "usb:", "adb:")


def open_device(spec: str, wait_s: float = 0.0, notes: list[str] | None = None) -> Device:
    """The device `spec` names; a phone that is not there fails at once (or after `wait_s`).
    `notes` receives what the user should hear about the choice (`auto` found no phone), for the
    caller to show: a library does not print."""
    from pocketbench.devices.local import LocalDevice

    if spec == "local":
        return LocalDevice()
    if spec.startswith(PHONE_ROUTES):
        from pocketbench.devices.adb.device import AdbDevice

        route, _, serial = spec.partition(":")  # a serial becomes part of commands and lease files
        safe_serial(serial, f"device {route}: serial")
        from pocketbench.devices.adb.discover import check_present

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
    raise PocketbenchError(f"unknown device {shown(spec)}: use local, auto, tcp:HOST:PORT, usb:SERIAL or adb:SERIAL")


def open_devices(specs: list[str], wait_s: float = 0.0, notes: list[str] | None = None) -> list[Device]:
    """The devices `specs` name, each once (`notes` as for open_device)."""
    devices = [open_device(s, wait_s, notes) for s in specs]
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
