"""Turn `--device` values into devices: `local`, or `auto` (the first attached phone, else local)."""

from __future__ import annotations

from pocketbench.devices.base import Device
from pocketbench.errors import PocketbenchError


def attached_phones() -> list[Device]:
    """Phones reachable right now (none until a phone route is configured)."""
    return []


def open_device(spec: str) -> Device:
    from pocketbench.devices.local import LocalDevice

    if spec == "local":
        return LocalDevice()
    if spec == "auto":
        phones = attached_phones()
        return phones[0] if phones else LocalDevice()
    raise PocketbenchError(f"unknown device {spec!r}: use local or auto")


def open_devices(specs: list[str]) -> list[Device]:
    devices = [open_device(s) for s in specs]
    ids = [d.device_id for d in devices]
    if len(set(ids)) != len(ids):
        raise PocketbenchError(f"device list {specs} names one device twice")
    return devices
