"""adb-shell straight to the phone's adbd: `tcp:HOST:PORT` (wireless debugging) or `usb:SERIAL`.

No adb server is involved, so nothing else may hold the phone: over USB a running server
(Android Studio's) owns the device and this route cannot claim it — use `adb:SERIAL` then.
"""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from pocketbench.devices.adb.keys import load_signer
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

if TYPE_CHECKING:  # adb-shell is imported where it is used (keeps `--help` fast)
    from adb_shell.adb_device import AdbDeviceTcp, AdbDeviceUsb

CONNECT_TIMEOUT_S = 5.0


def _lost_errors() -> tuple[type[BaseException], ...]:
    from adb_shell import exceptions as e

    return (
        OSError,
        e.TcpTimeoutException,
        e.InvalidResponseError,
        e.InvalidCommandError,
        e.InvalidChecksumError,
        e.AdbConnectionError,
        e.AdbTimeoutError,
        e.UsbReadFailedError,
        e.UsbWriteFailedError,
    )


class AdbShellTransport(ReconnectingRoute):
    """One adb-shell connection; `connect()` again after ConnectionLost."""

    def __init__(self, spec: str, key_path: Path | None = None, auth_timeout_s: float = 10.0):
        kind, _, address = spec.partition(":")
        if kind not in ("tcp", "usb") or not address:
            raise DeviceError(f"bad device {spec!r}: use tcp:HOST:PORT or usb:SERIAL", serial=spec)
        if kind == "tcp":
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit():
                raise DeviceError(f"bad device {spec!r}: use tcp:HOST:PORT, e.g. tcp:192.168.1.7:37199", serial=spec)
            self._address: tuple[str, int] | str = (host, int(port))
        else:
            self._address = address
        self.spec = spec
        self.key_path = key_path
        self.auth_timeout_s = auth_timeout_s
        self._device = None

    def connect(self) -> None:
        from adb_shell.exceptions import DeviceAuthError

        self.close()
        device = self._make_device()
        asked = []
        try:
            device.connect(
                rsa_keys=[load_signer(self.key_path)],
                auth_timeout_s=self.auth_timeout_s,
                read_timeout_s=CONNECT_TIMEOUT_S,
                auth_callback=lambda _d: asked.append(True),
            )
        except DeviceAuthError as exc:
            raise self._unauthorized() from exc
        except ConnectionRefusedError as exc:
            raise self._unreachable(exc) from exc
        except _lost_errors() as exc:
            if asked:  # we offered our key and the phone never accepted it
                raise self._unauthorized() from exc
            raise self._unreachable(exc) from exc
        if isinstance(self._address, tuple):
            # adb-shell leaves Nagle on: every small packet then waits ~40 ms for a delayed ACK.
            sock = device._io_manager._transport._connection
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._device = device

    def _make_device(self) -> AdbDeviceTcp | AdbDeviceUsb:
        if isinstance(self._address, tuple):
            from adb_shell.adb_device import AdbDeviceTcp

            host, port = self._address
            return AdbDeviceTcp(host, port, default_transport_timeout_s=CONNECT_TIMEOUT_S)
        try:
            from adb_shell.adb_device import AdbDeviceUsb
        except ImportError as exc:
            raise DeviceError(
                f"{self.spec}: USB without an adb server needs libusb1: pip install 'pocketbench[usb]'"
                f" (or start `adb start-server` and use adb:{self._address})",
                serial=self.spec,
            ) from exc
        return AdbDeviceUsb(serial=self._address, default_transport_timeout_s=CONNECT_TIMEOUT_S)

    def _unauthorized(self) -> Unauthorized:
        return Unauthorized(
            f"phone {self.spec} is unauthorized: unlock it and tap 'Allow' on the USB-debugging prompt"
            " (tick 'Always allow'), then retry; no prompt? revoke USB debugging authorizations and reconnect",
            serial=self.spec,
        )

    def _unreachable(self, exc: BaseException) -> Unreachable:
        return Unreachable(
            f"phone {self.spec} is offline ({type(exc).__name__}: {exc}): check the address/port"
            " (wireless debugging shows it) or the cable, and that the phone is awake",
            serial=self.spec,
        )

    def close(self) -> None:
        device, self._device = self._device, None
        if device is not None:
            # Closing a dead link fails in many ways; it is gone either way.
            with contextlib.suppress(Exception):
                device.close()

    def _lost_errors(self) -> tuple[type[BaseException], ...]:
        return _lost_errors()

    def shell(self, command: str, timeout_s: float) -> ShellResult:
        wrapped = with_sentinel(command)
        text = self._call(
            "a command",
            lambda d: d.shell(wrapped, transport_timeout_s=timeout_s, read_timeout_s=timeout_s, decode=False),
        )
        return parse_sentinel(text.decode(errors="replace"), command, self.spec)

    def push(self, local: Path, remote: str) -> None:
        from adb_shell.exceptions import PushFailedError

        try:
            self._call("a push", lambda d: d.push(str(local), remote, st_mode=0o100644, read_timeout_s=30))
        except PushFailedError as exc:
            raise DeviceError(f"phone {self.spec}: push of {local.name} failed: {exc}", serial=self.spec) from exc

    def pull(self, remote: str, local: Path) -> None:
        self._call("a pull", lambda d: d.pull(remote, str(local), read_timeout_s=30))

    def stat(self, remote: str) -> RemoteStat | None:
        mode, size, _ = self._call("a stat", lambda d: d.stat(remote))
        return None if mode == 0 else RemoteStat(mode, size)
