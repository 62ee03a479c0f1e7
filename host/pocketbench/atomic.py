"""Crash-safe file writes: readers see the old file or the new one, never half of one.

Temporary files are named `.<name>.<pid>.tmp`; readers ignore names starting with a dot, so a
write killed half-way leaves only a file nobody reads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path


def _write_temp(path: Path, data: bytes) -> Path:
    """The fsynced temporary file. A write that fails (a full disk) removes it and names `path`:
    the OS's own error for a failed write carries no file name."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
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


LOCK_NAME = ".lock"


class FolderBusy(Exception):
    """Another process holds the folder's lock; `pid` is the holder's, as it wrote it."""

    def __init__(self, folder: Path, pid: str) -> None:
        super().__init__(f"{folder} is held by pid {pid}")
        self.folder, self.pid = folder, pid


def lock_folder(folder: Path) -> int:
    """Hold an exclusive lock on `folder` (its `.lock` file, flock) until the returned descriptor
    is closed or the process ends — a kill -9 included, where the kernel drops it: no stale lock
    is ever left. The holder's pid is written in the file for the next one to name."""
    import fcntl

    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise FolderBusy(folder, holder) from None
    _sign(fd)
    return fd


def _holder(fd: int) -> str:
    return os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"


def _sign(fd: int) -> None:
    """Write this process's pid in a lock file it holds, for the next one to name."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


@contextmanager
def exclusive(lock: Path, waiting: Callable[[str], AbstractContextManager[object]] | None = None) -> Iterator[None]:
    """Hold an exclusive flock on the file `lock` (created if absent) for the block, waiting as long
    as another process holds it: the one-at-a-time guard around computing a shared cache entry,
    so two processes (or two hosts sharing the cache folder) never compute the same one twice.
    While it waits, `waiting(holder pid)` is entered (e.g. a progress line naming the holder).
    The kernel drops the lock when its holder dies, a kill -9 included: no stale lock is left."""
    import fcntl

    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            with waiting(_holder(fd)) if waiting else nullcontext():
                fcntl.flock(fd, fcntl.LOCK_EX)
        _sign(fd)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


def lock_beside(entry: Path) -> Path:
    """The lock file that guards computing `entry`: a dot file beside it (readers skip dot files)."""
    return entry.with_name(f".{entry.name}.lock")


def folder_locked(folder: Path) -> bool:
    """Whether a live process holds `folder`'s lock (a run being written now)."""
    import fcntl

    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
