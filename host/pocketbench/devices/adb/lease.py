"""One pocketbench process per phone: a lock file per serial under the cache directory.

Two runs on one phone would measure each other. flock() is released by the kernel when the
holder exits, however it exits, so a killed run never leaves the phone locked.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from pathlib import Path

from pocketbench.errors import DeviceError
from pocketbench.paths import cache_dir


def lease_path(serial: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", serial) or "unknown"
    folder = cache_dir() / "leases"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{safe}.lock"


class LeaseHeld(DeviceError):
    """Another pocketbench process or coordinator holds the phone: nothing may run on it now."""


class DeviceLease:
    """`with DeviceLease(serial, wait_s=60): ...` — waits up to `wait_s`, then fails clearly."""

    def __init__(self, serial: str, wait_s: float = 60.0, poll_s: float = 0.1):
        self.serial = serial
        self.wait_s = wait_s
        self.poll_s = poll_s
        self.path = lease_path(serial)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> DeviceLease:
        if self._fd is not None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                    os.close(fd)
                    raise LeaseHeld(
                        f"phone {self.serial} is in use by another pocketbench process (pid {holder}, lock"
                        f" {self.path}); waited {self.wait_s:.0f} s: let it finish,"
                        " or wait longer with POCKETBENCH_LEASE_WAIT_S",
                        serial=self.serial,
                    ) from None
                time.sleep(self.poll_s)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> DeviceLease:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
