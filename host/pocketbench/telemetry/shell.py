"""The one seam where device readings leave the process: run a shell command, get its stdout.

`local_shell` runs on this computer; `AdbTcpShell` speaks the adb protocol to a phone (or the
emulated phone) over TCP with adb-shell; a full adb device exposes its own. `read_files` reads
many sysfs/procfs files in one round trip and `parse_file_dump` splits the answer (pure).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterable

from pocketbench.errors import DeviceError

Shell = Callable[[str], str]

_MARK = "@@pocketbench"
# Paths and glob patterns we send unquoted so the device's shell expands them: our own constants,
# checked against this so no user text can reach the shell this way.
_SAFE_PATTERN = re.compile(r"[A-Za-z0-9_/.:*\-]+")


def local_shell(command: str, timeout_s: float = 30.0) -> str:
    """Run `command` with /bin/sh on this computer; stdout (stderr is dropped)."""
    try:
        proc = subprocess.run(
            ["/bin/sh", "-c", command], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise DeviceError(f"local shell command did not finish within {timeout_s:.0f} s: {command[:80]}") from exc
    return proc.stdout


class AdbTcpShell:
    """adb shell over TCP (adb-shell's AdbDeviceTcp): a phone on wireless adb or the emulated one."""

    def __init__(self, host: str, port: int, timeout_s: float = 30.0) -> None:
        self.address = f"{host}:{port}"
        self._host, self._port, self._timeout_s = host, port, timeout_s
        self._device = None

    def __call__(self, command: str) -> str:
        from adb_shell.adb_device import AdbDeviceTcp
        from adb_shell.exceptions import AdbConnectionError, AdbTimeoutError, DeviceAuthError

        try:
            if self._device is None:
                device = AdbDeviceTcp(self._host, self._port, default_transport_timeout_s=self._timeout_s)
                device.connect(rsa_keys=None, auth_timeout_s=2)
                self._device = device
            return str(self._device.shell(command, timeout_s=self._timeout_s, read_timeout_s=self._timeout_s))
        except (OSError, AdbConnectionError, AdbTimeoutError, DeviceAuthError) as exc:
            self.close()
            raise DeviceError(f"adb shell on {self.address} failed: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        if self._device is not None:
            self._device.close()
            self._device = None


def read_files_command(patterns: Iterable[str]) -> str:
    """One shell command that prints every existing file matching `patterns`, each behind a mark."""
    patterns = list(patterns)
    for pattern in patterns:
        if not _SAFE_PATTERN.fullmatch(pattern):
            raise ValueError(f"unsafe device path pattern {pattern!r}")
    return (
        f'for f in {" ".join(patterns)}; do [ -f "$f" ] || continue; '
        f'if v=$(cat "$f" 2>&1); then echo "{_MARK} ok $f"; else echo "{_MARK} err $f"; fi; '
        "printf '%s\\n' \"$v\"; done"
    )


def parse_file_dump(text: str) -> dict[str, str | None]:
    """`read_files_command` output → {path: content, or None when it was unreadable}."""
    files: dict[str, str | None] = {}
    path, ok, lines = None, False, []

    def flush() -> None:
        if path is not None:
            files[path] = "\n".join(lines).strip() if ok else None

    for line in text.splitlines():
        if line.startswith(_MARK + " "):
            flush()
            _, status, path = line.split(" ", 2)
            ok, lines = status == "ok", []
        elif path is not None:
            lines.append(line)
    flush()
    return files


def read_files(shell: Shell, patterns: Iterable[str]) -> dict[str, str | None]:
    """Read every file matching `patterns` on the device in one round trip."""
    return parse_file_dump(shell(read_files_command(patterns)))
