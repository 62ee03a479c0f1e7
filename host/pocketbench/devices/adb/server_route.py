"""Through a running adb server, with adbutils speaking the server protocol: `adb:SERIAL` on this
computer's server, `adb://HOST:PORT/SERIAL` on another host's (server_address.py).

Most users have a server running (Android Studio starts one) and it owns every USB phone, so
this is the route that works beside it; a lab's other hosts run their own. We never start a
server ourselves (adbutils would, with its own bundled adb, whenever a connection fails — also
for a remote address): when none answers we say so, naming it, within about a second.
"""

from __future__ import annotations

import re
import socket
import stat as stat_mod
import struct
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pocketbench.devices.adb.server_address import (
    ServerAddress,
    is_server_spec,
    local_server,
    parse_server_spec,
    server_port,
)
from pocketbench.devices.adb.transport import (
    ReconnectingRoute,
    RemoteStat,
    ServerUnreachable,
    ShellResult,
    Unauthorized,
    Unreachable,
    parse_sentinel,
    with_sentinel,
)
from pocketbench.errors import DeviceError

if TYPE_CHECKING:  # adbutils is imported where it is used (keeps `--help` fast)
    import adbutils

__all__ = ["server_port"]  # re-exported: callers ask this module for this computer's port
SERVER_TIMEOUT_S = 1.0  # a server that does not accept a connection within this is down
_TCP_SERIAL = re.compile(r"^[\w.-]+:\d+$")


def server_running(port: int | None = None, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port or server_port()), timeout=SERVER_TIMEOUT_S):
            return True
    except OSError:
        return False


def _where(address: ServerAddress) -> str:
    return "this computer's adb server" if address == local_server() else f"the adb server at {address}"


def _start_hint(address: ServerAddress) -> str:
    if address.is_local:
        return (
            f"start one with `adb -P {address.port} start-server` (or use tcp:HOST:PORT / usb:SERIAL to talk to"
            " the phone directly; an ssh tunnel to another host's server must be open)"
        )
    return (
        f"is that host up and its server running (`adb -a -P {address.port} nodaemon server` on a private"
        " interface), and is the address right?"
    )


def client(port: int | None = None, address: ServerAddress | None = None) -> adbutils.AdbClient:
    """An adbutils client for the server at `address` (default: this computer's, on `port`);
    raises ServerUnreachable, naming it, when it does not answer within SERVER_TIMEOUT_S."""
    address = address or local_server(port)
    try:
        socket.create_connection((address.host, address.port), timeout=SERVER_TIMEOUT_S).close()
    except OSError as exc:
        timed_out = isinstance(exc, TimeoutError)
        why = f"no answer within {SERVER_TIMEOUT_S:.0f} s" if timed_out else exc.strerror or str(exc)
        raise ServerUnreachable(
            f"no adb server answers at {address} ({why}): {_start_hint(address)}", serial=address.spec
        ) from exc
    return _client_class()(host=address.host, port=address.port, socket_timeout=None)


def _client_class() -> Any:
    """adbutils' client, minus its habit of starting an adb server when a connection fails."""
    import adbutils
    from adbutils._adb import AdbConnection

    class NoStartConnection(AdbConnection):
        def _safe_connect(self) -> socket.socket:
            return self._create_socket()

    class NoStartClient(adbutils.AdbClient):
        def make_connection(self, timeout: float | None = None) -> AdbConnection:
            connection = NoStartConnection(self.host, self.port)
            if timeout:
                connection.conn.settimeout(timeout)
            return connection

    return NoStartClient


def state_fix(serial: str, state: str) -> str:
    """What to do about a phone the server lists in `state` (empty when it is usable)."""
    if state == "device":
        return ""
    if state == "unauthorized":
        return "unlock the phone and tap 'Allow' on the USB-debugging prompt (tick 'Always allow')"
    if state == "offline":
        reconnect = (
            f"`adb disconnect {serial} && adb connect {serial}`" if _TCP_SERIAL.match(serial) else "replug the cable"
        )
        return f"{reconnect}; if it stays offline, `adb kill-server` and retry"
    if state == "no permissions":
        return "add a udev rule for the phone (Debian: apt install android-sdk-platform-tools-common) and replug"
    return f"wait until `adb devices` shows it as 'device' (now {state!r})"


def _lost_errors() -> tuple[type[BaseException], ...]:
    from adbutils.errors import AdbError

    return (OSError, EOFError, AdbError)


class AdbServerTransport(ReconnectingRoute):
    """One phone through an adb server (this computer's or another host's); each call opens its own
    server connection."""

    def __init__(self, spec: str, port: int | None = None):
        if is_server_spec(spec):
            self.server, serial = parse_server_spec(spec)
            if serial is None:
                raise DeviceError(
                    f"{spec} names a whole adb server: name one phone, adb://HOST:PORT/SERIAL", serial=spec
                )
        else:
            kind, _, serial = spec.partition(":")
            if kind != "adb" or not serial:
                raise DeviceError(f"bad device {spec!r}: use adb:SERIAL (a serial from `adb devices`)", serial=spec)
            self.server = local_server(port)
        self.spec = spec
        self.serial = serial
        self._device = None

    def client(self) -> adbutils.AdbClient:
        return client(address=self.server)

    def connect(self) -> None:
        adb = self.client()
        states = {info.serial: info.state for info in adb.list()}
        if self.serial not in states and _TCP_SERIAL.match(self.serial):
            adb.connect(self.serial, timeout=5)  # a network phone the server has forgotten
            states = {info.serial: info.state for info in adb.list()}
        state = states.get(self.serial)
        if state is None:
            raise Unreachable(
                f"phone {self.serial} is not attached to {_where(self.server)} ({self.server}):"
                f" it lists {sorted(states) or 'nothing'}",
                serial=self.spec,
            )
        if state == "unauthorized":
            raise Unauthorized(
                f"phone {self.serial} is unauthorized: {state_fix(self.serial, state)}", serial=self.spec
            )
        if state != "device":
            raise Unreachable(f"phone {self.serial} is {state}: {state_fix(self.serial, state)}", serial=self.spec)
        self._device = adb.device(serial=self.serial)

    def reconnect_network(self) -> None:
        """After a reboot the server may hold a dead network transport for ~10 s: renew it."""
        if _TCP_SERIAL.match(self.serial):
            try:
                adb = self.client()
                adb.disconnect(self.serial)
                adb.connect(self.serial, timeout=5)
            except (DeviceError, *_lost_errors()):  # type: ignore[misc]
                pass  # the next health probe says what is wrong

    def close(self) -> None:
        self._device = None

    def _lost_errors(self) -> tuple[type[BaseException], ...]:
        return _lost_errors()

    def _label(self) -> str:
        return self.serial if self.server == local_server() else f"{self.serial} (adb server {self.server})"

    def shell(self, command: str, timeout_s: float) -> ShellResult:
        wrapped = with_sentinel(command)
        text = self._call("a command", lambda d: d.shell(wrapped, timeout=timeout_s, encoding=None, rstrip=False))
        return parse_sentinel(text.decode(errors="replace"), command, self.serial)

    def push(self, local: Path, remote: str) -> None:
        """SEND with 64 KiB DATA chunks; a FAIL keeps the phone's message (adbutils drops it)."""

        def send(device: adbutils.AdbDevice) -> None:
            header = f"{remote},{stat_mod.S_IFREG | 0o644}".encode()
            with device.open_transport(timeout=30) as c:
                c.send_command("sync:")
                c.check_okay()
                c.conn.sendall(b"SEND" + struct.pack("<I", len(header)) + header)
                with open(local, "rb") as source:
                    while chunk := source.read(65536):
                        c.conn.sendall(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
                c.conn.sendall(b"DONE" + struct.pack("<I", int(time.time())))
                status = c.read_exact(4)
                if status != b"OKAY":
                    (length,) = struct.unpack("<I", c.read_exact(4))
                    message = c.read_exact(length).decode(errors="replace")
                    raise DeviceError(f"phone {self.serial}: push of {local.name} failed: {message}", serial=self.spec)
                c.read_exact(4)

        self._call("a push", send)

    def pull(self, remote: str, local: Path) -> None:
        self._call("a pull", lambda d: d.sync.pull_file(remote, local))

    def stat(self, remote: str) -> RemoteStat | None:
        info = self._call("a stat", lambda d: d.sync.stat(remote))
        return None if info.mode == 0 else RemoteStat(info.mode, info.size)
