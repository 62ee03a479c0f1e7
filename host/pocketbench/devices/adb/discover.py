"""Every phone by every route, with its state and the fix for a bad one; `--device auto`.

Routes: the adb server (when one answers: it lists USB and network phones it holds; other hosts'
servers when named, `adb://HOST:PORT`), adb-shell
over USB (needs the `usb` extra; a phone the server holds cannot be claimed — that is reported),
and any `tcp:HOST:PORT` the user names (a network cannot be scanned).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pocketbench.devices.adb import local_phones, server_route
from pocketbench.devices.adb.server_address import ServerAddress, local_server
from pocketbench.devices.adb.transport import ServerUnreachable, Unauthorized, Unreachable
from pocketbench.errors import DeviceError, PocketbenchError

PROBE_TIMEOUT_S = 1.0


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


def server_phones(address: ServerAddress) -> list[Found]:
    """Every phone the adb server at `address` lists (raises ServerUnreachable, naming it). Phones
    of this computer's own server are `adb:SERIAL`, of any other (another host's, or a tunnel to
    it on a local port) `adb://HOST:PORT/SERIAL`."""
    listed = server_route.client(address=address).list()
    return [
        Found(
            f"adb:{i.serial}" if address == local_server() else address.phone(i.serial),
            i.state,
            server_route.state_fix(i.serial, i.state),
            serial=i.serial,
        )
        for i in listed
    ]


def list_server(address: ServerAddress | None = None) -> tuple[list[Found], str]:
    """`server_phones` of `address` (default: this computer's server) and a note on the search;
    a server that does not answer is said in the note instead."""
    address = address or local_server()
    where = f"adb server on port {address.port}" if address == local_server() else f"adb server at {address}"
    try:
        found = server_phones(address)
    except ServerUnreachable as exc:
        return [], f"no adb server on port {address.port}" if address == local_server() else str(exc)
    except Exception as exc:  # a server in a bad state: report it, keep looking elsewhere
        return [], f"the {where} did not answer ({exc})"
    return found, f"{where}: {len(found)} phone(s)"


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
    server, server_note = list_server()
    usb, usb_note = _via_usb({f.serial for f in server})
    emulated = [spec for spec in local_phones.registered() if spec not in extra_specs]
    tcp = [_probe_tcp(spec) for spec in [*extra_specs, *emulated] if spec.startswith("tcp:")]
    notes = [server_note, usb_note]
    if emulated:
        notes.append(f"emulated phones of `pocketbench emulator`: {', '.join(emulated)}")
    return [*server, *usb, *tcp], notes


class SeveralPhones(PocketbenchError):
    """`auto` is ambiguous: more than one usable phone is reachable (`specs` names each)."""

    def __init__(self, specs: list[str]) -> None:
        super().__init__(f"several phones are attached ({', '.join(specs)}): name one, e.g. {specs[0]}")
        self.specs = specs


class NotPresent(DeviceError):
    """The phone a device spec names is not there (after waiting `waited_s` for it)."""

    def __init__(self, message: str, *, serial: str, waited_s: float) -> None:
        super().__init__(message, serial=serial)
        self.waited_s = waited_s


def pick_auto(found: list[Found], notes: list[str]) -> Found | None:
    """The single usable phone; None when there is none at all; an error that explains otherwise."""
    usable = [f for f in found if f.usable]
    distinct = {f.serial or f.spec: f for f in usable}
    if len(distinct) == 1:
        return next(iter(distinct.values()))
    if len(distinct) > 1:
        raise SeveralPhones(sorted(f.spec for f in distinct.values()))
    bad = [f for f in found if not f.usable]
    if bad:
        problems = "; ".join(f"{f.spec} is {f.state}: {f.fix}" for f in bad)
        raise PocketbenchError(f"no usable phone: {problems}")
    return None


def check_present(spec: str, wait_s: float = 0.0, poll_s: float = 0.5) -> None:
    """Fail in about a second when the phone `spec` names is not there (the adb server's list
    for adb:SERIAL, one TCP connect for tcp:HOST:PORT), naming what is there; with `wait_s`,
    keep looking that long first. usb: phones are checked when they are opened."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            _probe_presence(spec)
            return
        except DeviceError as exc:
            if time.monotonic() >= deadline:
                how = f"waited {wait_s:.0f} s" if wait_s else "not waited for"
                raise NotPresent(f"{exc} ({how})", serial=spec, waited_s=wait_s) from None
        time.sleep(poll_s)


def _probe_presence(spec: str) -> None:
    kind, _, address = spec.partition(":")
    if kind == "adb":
        transport = server_route.AdbServerTransport(spec)
        try:
            transport.connect()  # lists the server's phones; a tcp-style serial it forgot is re-connected
        except DeviceError:
            raise
        except Exception as exc:  # a server in a bad state
            raise Unreachable(f"the adb server did not answer for {spec} ({exc})", serial=spec) from exc
        finally:
            transport.close()
    elif kind == "tcp":
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise PocketbenchError(f"bad device {spec!r}: use tcp:HOST:PORT, e.g. tcp:192.168.1.7:37199")
        try:
            socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S).close()
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            raise Unreachable(
                f"nothing answers at {address} ({why}): is the phone on this network with wireless debugging on,"
                " and is the port right?",
                serial=spec,
            ) from exc
