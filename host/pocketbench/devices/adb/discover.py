"""Every phone by every route, with its state and the fix for a bad one; `--device auto`.

Routes: the adb server (when one answers: it lists USB and network phones it holds), adb-shell
over USB (needs the `usb` extra; a phone the server holds cannot be claimed — that is reported),
and any `tcp:HOST:PORT` the user names (a network cannot be scanned).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pocketbench.devices.adb import server_route
from pocketbench.devices.adb.transport import Unauthorized
from pocketbench.errors import DeviceError, PocketbenchError


@dataclass(frozen=True)
class Found:
    """A phone seen on one route: `spec` opens it, `state` is adb's word for it."""

    spec: str
    state: str  # device | unauthorized | offline | held by the adb server | ...
    fix: str = ""
    serial: str = ""

    @property
    def usable(self) -> bool:
        return self.state == "device"


def _via_server() -> tuple[list[Found], str]:
    port = server_route.server_port()
    if not server_route.server_running(port):
        return [], f"no adb server on port {port}"
    try:
        listed = server_route.client(port).list()
    except Exception as exc:  # a server in a bad state: report it, keep looking elsewhere
        return [], f"the adb server on port {port} did not answer ({exc})"
    found = [
        Found(f"adb:{i.serial}", i.state, server_route.state_fix(i.serial, i.state), serial=i.serial) for i in listed
    ]
    return found, f"adb server on port {port}: {len(found)} phone(s)"


def _via_usb(server_serials: set[str]) -> tuple[list[Found], str]:
    try:
        from adb_shell.transport.usb_transport import UsbTransport
    except ImportError:
        return [], "USB without a server: not available (pip install 'pocketbench[usb]')"
    found = []
    try:
        for transport in UsbTransport.find_all_adb_devices():
            serial = transport.serial_number
            if serial in server_serials:
                found.append(Found(f"usb:{serial}", "held by the adb server", f"use adb:{serial}", serial))
            else:
                found.append(Found(f"usb:{serial}", "device", serial=serial))
    except Exception as exc:  # libusb without permissions or a busy bus
        return found, f"USB scan failed ({exc})"
    return found, f"USB: {len(found)} phone(s)"


def _probe_tcp(spec: str) -> Found:
    from pocketbench.devices.adb.device import AdbDevice

    device = AdbDevice(spec, reconnect_wait_s=0)
    try:
        serial = device.identity().serial
        return Found(spec, "device", serial=serial)
    except Unauthorized as exc:
        return Found(spec, "unauthorized", str(exc).split(": ", 1)[-1])
    except DeviceError as exc:
        return Found(spec, "offline", str(exc))
    finally:
        device.close()


def find_phones(extra_specs: Sequence[str] = ()) -> tuple[list[Found], list[str]]:
    """Every phone on every route (plus the tcp: specs given), and a note per route searched."""
    server, server_note = _via_server()
    usb, usb_note = _via_usb({f.serial for f in server})
    tcp = [_probe_tcp(spec) for spec in extra_specs if spec.startswith("tcp:")]
    return [*server, *usb, *tcp], [server_note, usb_note]


def pick_auto(found: list[Found], notes: list[str]) -> Found | None:
    """The single usable phone; None when there is none at all; an error that explains otherwise."""
    usable = [f for f in found if f.usable]
    distinct = {f.serial or f.spec: f for f in usable}
    if len(distinct) == 1:
        return next(iter(distinct.values()))
    if len(distinct) > 1:
        names = ", ".join(sorted(f.spec for f in distinct.values()))
        raise PocketbenchError(
            f"several phones are attached ({names}): pick one with --device, e.g. --device {names.split(', ')[0]}"
        )
    bad = [f for f in found if not f.usable]
    if bad:
        problems = "; ".join(f"{f.spec} is {f.state}: {f.fix}" for f in bad)
        raise PocketbenchError(f"no usable phone: {problems}")
    return None
