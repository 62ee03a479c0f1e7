"""Names users give that become paths: run ids, farm and device names, files on a phone.

One rule for all of them, the one device paths already follow: a single path component of
letters, digits, '.', '_', '+' and '-', starting with a letter or digit (so never '.', '..', a
hidden file or something that reads as an option), at most 64 characters: a name is shown in
tables and joined into file names, where a longer one only truncates or fails. `inside` also
checks that the resolved path lies in its root, so a symlink cannot lead a name out of it.
"""

from __future__ import annotations

import re
from pathlib import Path

from pocketbench.errors import PocketbenchError, shown

NAME_MAX = 64
NAME_PATTERN = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._+-]{{0,{NAME_MAX - 1}}}")
NAME_RULE = f"use 1-{NAME_MAX} letters, digits, '.', '_', '+' or '-', starting with a letter or digit"
# A device serial as adb prints it may also hold ':' (a tcp route, `192.168.1.5:5555`).
SERIAL_PATTERN = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._+:-]{{0,{NAME_MAX - 1}}}")
SERIAL_RULE = f"use 1-{NAME_MAX} letters, digits, '.', '_', '+', ':' or '-', starting with a letter or digit"


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a path component, or None when it can."""
    if not name:
        return "it is empty"
    if "/" in name or "\\" in name:
        return "it contains a path separator"
    if ".." in name:
        return "it contains '..'"
    if len(name) > NAME_MAX:
        return f"it is {len(name)} characters long, over {NAME_MAX}"
    if not NAME_PATTERN.fullmatch(name):
        return "it has characters a file name may not carry here"
    return None


def safe_name(name: str, what: str = "name") -> str:
    """`name` unchanged when it is a safe single path component; else one line naming the fix."""
    problem = name_problem(name)
    if problem is not None:
        raise PocketbenchError(f"{what} {shown(name)} is not allowed ({problem}): {NAME_RULE}")
    return name


def inside(root: Path, name: str, what: str = "name") -> Path:
    """`root/name`, refusing a name that is not a safe component or resolves outside `root`."""
    path = root / safe_name(name, what)
    resolved, base = path.resolve(), root.resolve()
    if resolved == base or not resolved.is_relative_to(base):
        raise PocketbenchError(f"{what} {shown(name)} leads outside {root} (through a link): pick another name")
    return path


def safe_serial(serial: str, what: str = "serial") -> str:
    """`serial` unchanged when it is a device serial (a name that may hold ':'); else one line."""
    if not SERIAL_PATTERN.fullmatch(serial) or ".." in serial:
        problem = f"{len(serial)} characters" if len(serial) > NAME_MAX else "characters a serial does not carry"
        raise PocketbenchError(f"{what} {shown(serial)} is not allowed ({problem}): {SERIAL_RULE}")
    return serial


def slug(text: str) -> str:
    """A file-name-safe rendering of any text (a device id, a model or variant name) for names
    that are built, not given: the row or manifest keeps the real name."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-.")[:40] or "x"
