"""Device leases: two pocketbench processes never measure on one device at once.

A lease is an exclusive `flock` on `<cache>/leases/<device>.lock`. The kernel drops it when
the holder exits, even on SIGKILL, so a killed run never leaves a phone locked. The holder's
pid and command are written into the file only to name it in the error the next one sees.
"""

from __future__ import annotations

import fcntl
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pocketbench.errors import DeviceError
from pocketbench.paths import cache_dir


def lease_path(device_id: str, root: Path | None = None) -> Path:
    folder = (root or cache_dir()) / "leases"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / (re.sub(r"[^A-Za-z0-9._-]", "_", device_id) + ".lock")


@contextmanager
def device_lease(device_id: str, wait_s: float = 0.0, root: Path | None = None) -> Iterator[None]:
    """Hold `device_id` exclusively; wait up to `wait_s` for another holder, then fail naming it."""
    path = lease_path(device_id, root)
    handle = open(path, "a+")  # noqa: SIM115 - held open for the lease's lifetime
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    raise DeviceError(
                        f"device {device_id} is in use by {holder}: wait for it to finish or stop it",
                        serial=device_id,
                    ) from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} ({' '.join(sys.argv[:3])})")
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the flock
