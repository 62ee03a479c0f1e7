"""The `sync:` service: stat, list, push (SEND) and pull (RECV) of the phone's files.

Requests may be split across WRTEs arbitrarily, so input is buffered. Errors follow adbd:
a missing path stats as zeros (v1) or carries its errno (v2); a failed SEND drains the
host's DATA up to DONE, removes the partial file, answers FAIL and ends the service.
adbd on a phone runs as the shell user: every request is checked against what that user
may do (sandbox.shell_may*), and pushed files belong to it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from pocketbench.emulator import wire as p
from pocketbench.emulator.faults import Faults
from pocketbench.emulator.sandbox import Sandbox
from pocketbench.emulator.server import Stream, StreamClosed

MAX_PATH = 1024


class _Input:
    """Exact-size reads over a stream whose WRTE boundaries mean nothing."""

    def __init__(self, stream: Stream):
        self._stream = stream
        self._buffer = bytearray()

    async def take(self, n: int) -> bytes:
        while len(self._buffer) < n:
            data = await self._stream.read()
            if data is None:
                raise StreamClosed
            self._buffer += data
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out


def _fail(message: str) -> bytes:
    data = message.encode()
    return p.SYNC_REQUEST.pack(b"FAIL", len(data)) + data


def _fail_errno(what: str, exc: OSError) -> bytes:
    return _fail(f"{what}: {os.strerror(exc.errno or errno.EIO)}")


def stat_v1(path: Path, visible: bool = True) -> bytes:
    try:
        if not visible:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        st = os.lstat(path)
    except OSError:
        return p.SYNC_STAT_V1.pack(b"STAT", 0, 0, 0)
    return p.SYNC_STAT_V1.pack(b"STAT", st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime))


def _v2_fields(st: os.stat_result) -> tuple:
    return (
        st.st_dev,
        st.st_ino,
        st.st_mode,
        st.st_nlink,
        st.st_uid,
        st.st_gid,
        st.st_size,
        int(st.st_atime),
        int(st.st_mtime),
        int(st.st_ctime),
    )


def stat_v2(path: Path, request: bytes, visible: bool = True) -> bytes:
    try:
        if not visible:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        st = os.lstat(path) if request == b"LST2" else os.stat(path)
    except OSError as exc:
        return p.SYNC_STAT_V2.pack(request, exc.errno or errno.EIO, *([0] * 10))
    return p.SYNC_STAT_V2.pack(request, 0, *_v2_fields(st))


def listing(path: Path, v2: bool, visible: bool = True) -> bytes:
    """DENT (or DNT2) records for every entry, '.' and '..' first, then a zeroed DONE."""
    names = [".", ".."]
    try:
        names += [entry.name for entry in os.scandir(path)] if visible else []
    except OSError:
        names = []
    if not visible:
        names = []
    out = bytearray()
    for name in names:
        try:
            st = os.lstat(path / name)
        except OSError:
            continue
        raw = name.encode()
        if v2:
            out += p.SYNC_DENT_V2.pack(b"DNT2", 0, *_v2_fields(st), len(raw)) + raw
        else:
            out += p.SYNC_DENT_V1.pack(b"DENT", st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime), len(raw)) + raw
    done = p.SYNC_DENT_V2 if v2 else p.SYNC_DENT_V1
    out += b"DONE" + bytes(done.size - 4)
    return bytes(out)


async def serve_sync(stream: Stream, sandbox: Sandbox, faults: Faults) -> None:
    data = _Input(stream)
    while True:
        request, length = p.SYNC_REQUEST.unpack(await data.take(p.SYNC_REQUEST.size))
        if request == b"QUIT":
            return
        if length > MAX_PATH:
            await stream.write(_fail(f"path too long: {length}"))
            return
        device_path = (await data.take(length)).decode("utf-8", "surrogateescape")
        path = sandbox.host_path(device_path)[0]
        # a missing folder on the way answers ENOENT by itself
        reachable = not os.path.lexists(path.parent) or sandbox.shell_may(path.parent, 1)
        if request == b"STAT":
            await stream.write(stat_v1(path, reachable))
        elif request in (b"STA2", b"LST2"):
            await stream.write(stat_v2(path, request, reachable))
        elif request in (b"LIST", b"LIS2"):
            await stream.write(listing(path, request == b"LIS2", sandbox.shell_may(path, 5)))
        elif request == b"SEND":
            if not await _receive_file(stream, data, device_path, sandbox, faults):
                return
        elif request == b"RECV":
            if not await _send_file(stream, device_path, sandbox, faults):
                return
        else:
            await stream.write(_fail(f"unknown sync request {request!r}"))
            return


async def _send_file(stream: Stream, device_path: str, sandbox: Sandbox, faults: Faults) -> bool:
    """RECV: the file in DATA records of ≤ 64 KiB, then DONE.

    Records are a byte stream to the host, so like adbd's socket they are packed into WRTEs
    of the full negotiated payload (a record may span two WRTEs).
    """
    path = sandbox.host_path(device_path)[0]
    try:
        if not sandbox.shell_may(path, 4):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        f = open(path, "rb")  # noqa: SIM115 - closed below; reads interleave with awaits
    except OSError as exc:
        await stream.write(_fail_errno("open failed", exc))
        return False
    cut_at = faults.drop_after_sync_bytes
    sent = 0
    out = bytearray()
    with f:
        while chunk := f.read(p.SYNC_DATA_MAX):
            cut = False
            if cut_at is not None and sent + len(chunk) >= cut_at:
                chunk, cut = chunk[: cut_at - sent], True
            out += p.SYNC_REQUEST.pack(b"DATA", len(chunk)) + chunk
            sent += len(chunk)
            if cut:
                await stream.write(bytes(out))
                stream.conn.abort()
                raise StreamClosed
            if len(out) >= stream.conn.max_payload:
                await stream.write(bytes(out[: stream.conn.max_payload]))
                del out[: stream.conn.max_payload]
    out += p.SYNC_REQUEST.pack(b"DONE", 0)
    await stream.write(bytes(out))
    return True


def _check_create(path: Path, writable: bool, sandbox: Sandbox) -> None:
    """Raise what the shell user would meet creating `path` (its parents are made)."""
    if not writable:
        # /data is writable storage the shell user lacks rights to; /system, /sys and the
        # host's folders are read-only mounts.
        raise OSError(errno.EACCES if path.is_relative_to(sandbox.root / "data") else errno.EROFS, "")
    if not sandbox.shell_may_create(path):
        raise OSError(errno.EACCES, "")


def _open_for_send(path: Path, mode: int, writable: bool, sandbox: Sandbox) -> int:
    _check_create(path, writable, sandbox)
    if path.is_dir() and not path.is_symlink():
        raise OSError(errno.EISDIR, os.strerror(errno.EISDIR))
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode & 0o777)
    sandbox.give_to_shell(path)
    return fd


async def _receive_file(stream: Stream, data: _Input, spec: str, sandbox: Sandbox, faults: Faults) -> bool:
    """SEND "path,mode": DATA records until DONE(mtime); OKAY, or FAIL after draining."""
    device_path, _, mode_text = spec.rpartition(",")
    try:
        mode = int(mode_text)
    except ValueError:
        device_path, mode = spec, 0o644
    path, writable = sandbox.host_path(device_path)
    error = ""
    fd = -1
    is_link = stat.S_ISLNK(mode)
    link_target = bytearray()
    try:
        if is_link:
            _check_create(path, writable, sandbox)
        else:
            fd = _open_for_send(path, mode, writable, sandbox)
    except OSError as exc:
        error = f"couldn't create file: {os.strerror(exc.errno or errno.EIO)}"
    received = 0
    cut_at = faults.drop_after_sync_bytes
    mtime = 0
    try:
        while True:
            request, length = p.SYNC_REQUEST.unpack(await data.take(p.SYNC_REQUEST.size))
            if request == b"DONE":
                mtime = length
                break
            if request != b"DATA" or length > p.SYNC_DATA_MAX:
                error = error or "invalid data message"
                break
            chunk = await data.take(length)
            received += length
            if cut_at is not None and received >= cut_at:
                stream.conn.abort()
                raise StreamClosed
            if error:
                continue
            if is_link:
                link_target += chunk
                continue
            free = faults.disk_free_bytes
            if free is not None and received > free:
                error = f"write failed: {os.strerror(errno.ENOSPC)}"
                continue
            os.write(fd, chunk)
    except StreamClosed:
        if fd >= 0:
            os.close(fd)
            path.unlink(missing_ok=True)
        raise
    if fd >= 0:
        os.close(fd)
    if not error and is_link:
        path.unlink(missing_ok=True)
        os.symlink(link_target.decode(), path)
        sandbox.give_to_shell(path)
    if error:
        if fd >= 0:
            path.unlink(missing_ok=True)
        await stream.write(_fail(error))
        return False
    os.utime(path, (mtime, mtime), follow_symlinks=False)
    await stream.write(b"OKAY" + bytes(4))
    return True
