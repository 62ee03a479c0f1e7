"""Through a running adb server (`adb:SERIAL`), with adbutils speaking the server protocol.

Most users have a server running (Android Studio starts one) and it owns every USB phone, so
this is the route that works beside it. We never start a server ourselves (adbutils would,
with its own bundled adb, on first use): when none answers we say so.
"""

from __future__ import annotations

import os
import re
import socket
import stat as stat_mod
import struct
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pocketbench.devices.adb.transport import (
    ReconnectingRoute,
    RemoteStat,
    ShellResult,
    Unauthorized,
    Unreachable,
    parse_sentinel,
    with_sentinel,
)
from pocketbench.errors import DeviceError

if TYPE_CHECKING:  # adbutils is imported where it is used (keeps `--help` fast)
    import adbutils

DEFAULT_SERVER_PORT = 5037
_TCP_SERIAL = re.compile(r"^[\w.-]+:\d+$")


def server_port() -> int:
    """The adb server's port: $ANDROID_ADB_SERVER_PORT (what adb itself reads), else 5037."""
    value = os.environ.get("ANDROID_ADB_SERVER_PORT", "")
    return int(value) if value.isdigit() else DEFAULT_SERVER_PORT


def server_running(port: int | None = None, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port or server_port()), timeout=0.3):
            return True
    except OSError:
        return False


def client(port: int | None = None) -> adbutils.AdbClient:
    """An adbutils client for the server on `port`; refuses to start one."""
    import adbutils

    port = port or server_port()
    if not server_running(port):
        raise Unreachable(
            f"no adb server answers on 127.0.0.1:{port}: start one with `adb start-server`"
            " (or use tcp:HOST:PORT / usb:SERIAL to talk to the phone directly)"
        )
    return adbutils.AdbClient(host="127.0.0.1", port=port)


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
    """One phone through the adb server; each call opens its own server connection."""

    def __init__(self, spec: str, port: int | None = None):
        kind, _, serial = spec.partition(":")
        if kind != "adb" or not serial:
            raise DeviceError(f"bad device {spec!r}: use adb:SERIAL (a serial from `adb devices`)", serial=spec)
        self.spec = spec
        self.serial = serial
        self.port = port
        self._device = None

    def connect(self) -> None:
        adb = client(self.port)
        states = {info.serial: info.state for info in adb.list()}
        if self.serial not in states and _TCP_SERIAL.match(self.serial):
            adb.connect(self.serial, timeout=5)  # a network phone the server has forgotten
            states = {info.serial: info.state for info in adb.list()}
        state = states.get(self.serial)
        if state is None:
            raise Unreachable(
                f"phone {self.serial} is not attached to the adb server on port {adb.port}:"
                f" `adb devices` lists {sorted(states) or 'nothing'}",
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
                adb = client(self.port)
                adb.disconnect(self.serial)
                adb.connect(self.serial, timeout=5)
            except _lost_errors():
                pass

    def close(self) -> None:
        self._device = None

    def _lost_errors(self) -> tuple[type[BaseException], ...]:
        return _lost_errors()

    def _label(self) -> str:
        return self.serial

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
