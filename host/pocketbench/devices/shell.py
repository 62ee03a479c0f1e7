"""The one seam where device readings leave the process: run a shell command, get its stdout.

`local_shell` runs on this computer (LocalDevice.shell); AdbDevice.shell runs on a phone over adb;
`device_shell` turns either into a `Shell`. `read_files` reads
many sysfs/procfs files in one round trip and `parse_file_dump` splits the answer (pure).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterable

from pocketbench.devices.base import ShellDevice
from pocketbench.errors import DeviceError
from pocketbench.runner.process import die_with_parent

Shell = Callable[[str], str]

_MARK = "@@pocketbench"
# Paths and glob patterns we send unquoted so the device's shell expands them: our own constants,
# checked against this so no user text can reach the shell this way.
_SAFE_PATTERN = re.compile(r"[A-Za-z0-9_/.:*\-]+")


def local_shell(command: str, timeout_s: float = 30.0) -> str:
    """Run `command` with /bin/sh on this computer; stdout (stderr is dropped)."""
    try:
        proc = subprocess.run(
            ["/bin/sh", "-c", command],
            capture_output=True, text=True, timeout=timeout_s, check=False, preexec_fn=die_with_parent,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise DeviceError(f"local shell command did not finish within {timeout_s:.0f} s: {command[:80]}") from exc
    return proc.stdout


def device_shell(device: object) -> Shell | None:
    """The device's shell seam as a `Shell`: LocalDevice's returns text, AdbDevice's a result
    with `.output`; None when the device offers none."""
    if not isinstance(device, ShellDevice):
        return None
    run = device.shell

    def shell(command: str) -> str:
        result = run(command)
        return result if isinstance(result, str) else str(result.output)

    return shell


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
    path, ok, lines = None, False, list[str]()

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
