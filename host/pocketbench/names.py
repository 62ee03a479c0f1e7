"""Names users give that become paths: run ids, farm and device names, files on a phone.

One rule for all of them, the one device paths already follow: a single path component of
letters, digits, '.', '_' and '-', starting with a letter or digit (so never '.', '..', a
hidden file or something that reads as an option), at most 100 characters. `inside` also
checks that the resolved path lies in its root, so a symlink cannot lead a name out of it.
"""

from __future__ import annotations

import re
from pathlib import Path

from pocketbench.errors import PocketbenchError

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
NAME_RULE = "use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a path component, or None when it can."""
    if not name:
        return "it is empty"
    if "/" in name or "\\" in name:
        return "it contains a path separator"
    if ".." in name:
        return "it contains '..'"
    if not NAME_PATTERN.fullmatch(name):
        return "it has characters a file name may not carry here"
    return None


def safe_name(name: str, what: str = "name") -> str:
    """`name` unchanged when it is a safe single path component; else one line naming the fix."""
    problem = name_problem(name)
    if problem is not None:
        raise PocketbenchError(f"{what} {name!r} is not allowed ({problem}): {NAME_RULE}")
    return name


def inside(root: Path, name: str, what: str = "name") -> Path:
    """`root/name`, refusing a name that is not a safe component or resolves outside `root`."""
    path = root / safe_name(name, what)
    resolved, base = path.resolve(), root.resolve()
    if resolved == base or not resolved.is_relative_to(base):
        raise PocketbenchError(f"{what} {name!r} leads outside {root} (through a link): pick another name")
    return path
