"""Emulated phones that `pocketbench emulator` serves on this computer, found by discovery the
way adb finds its own emulators: each running one leaves a small file under the cache
(`emulators/`), removed when it stops; a file whose process is gone is ignored and removed."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pocketbench.paths import cache_dir

FOLDER = "emulators"


def register(host: str, port: int) -> Path:
    """Announce the phone served on host:port by this process; returns the file to `unregister`."""
    folder = cache_dir() / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{host}_{port}"
    path.write_text(f"{os.getpid()} tcp:{host}:{port}\n")
    return path


def unregister(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def registered() -> list[str]:
    """`tcp:HOST:PORT` of every emulated phone whose serving process is still running."""
    folder = cache_dir() / FOLDER
    specs = []
    for path in sorted(folder.glob("*_*")) if folder.is_dir() else []:
        try:
            pid_text, spec = path.read_text().split()
            alive = Path(f"/proc/{int(pid_text)}").exists()
        except (OSError, ValueError):
            continue
        if alive and spec.startswith("tcp:"):
            specs.append(spec)
        elif not alive:
            unregister(path)
    return specs
