"""Crash-safe file writes: readers see the old file or the new one, never half of one.

Temporary files are named `.<name>.<pid>.tmp`; readers ignore names starting with a dot, so a
write killed half-way leaves only a file nobody reads.
"""

from __future__ import annotations

import os
from pathlib import Path


def _write_temp(path: Path, data: bytes) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return tmp


def _fsync_dir(folder: Path) -> None:
    """Make the new directory entry itself durable (a rename is only safe once its dir is synced)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a temporary file beside `path`, fsync it, then rename it over `path`."""
    tmp = _write_temp(path, data)
    tmp.replace(path)
    _fsync_dir(path.parent)


def write_new_bytes(path: Path, data: bytes) -> None:
    """Like `atomic_write_bytes`, but `path` must not exist yet: an existing file is never replaced.

    The fsynced temporary file is hard-linked to its final name (link fails if the name is
    taken, which rename would silently overwrite), then the temporary name is removed.
    """
    tmp = _write_temp(path, data)
    try:
        os.link(tmp, path)
    finally:
        tmp.unlink()
    _fsync_dir(path.parent)
