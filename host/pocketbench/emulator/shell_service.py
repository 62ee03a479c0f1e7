"""`shell:`, `shell,v2,…:` and `exec:` — real commands run with /bin/sh inside the sandbox.

v1 and exec put stdout and stderr on one raw stream and report no exit status (adbd runs
both in a raw PTY since Android 7). v2 frames stdout, stderr and the exit code separately.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from pocketbench.emulator import wire as p
from pocketbench.emulator.faults import Faults
from pocketbench.emulator.sandbox import Sandbox
from pocketbench.emulator.server import Stream, StreamClosed


def exit_status(returncode: int) -> int:
    """A shell's view of how its command ended: 128+N for death by signal N."""
    return 128 - returncode if returncode < 0 else returncode


async def run_shell(stream: Stream, request: p.ShellRequest, sandbox: Sandbox, faults: Faults) -> None:
    proc = await asyncio.create_subprocess_exec(
        *sandbox.command_argv(request.command),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT if request.merge_stderr else asyncio.subprocess.PIPE,
        env=sandbox.environment(request.term),
        start_new_session=True,
    )
    drop = None
    if faults.drop_after_command_s is not None:
        drop = asyncio.get_running_loop().call_later(faults.drop_after_command_s, stream.conn.abort)
    feeder = asyncio.create_task(_feed_stdin(stream, proc, request.protocol_v2))
    try:
        pumps = [_pump(stream, proc.stdout, p.SHELL_STDOUT, request.protocol_v2)]
        if proc.stderr is not None:
            pumps.append(_pump(stream, proc.stderr, p.SHELL_STDERR, request.protocol_v2))
        await asyncio.gather(*pumps)
        returncode = await proc.wait()
        if request.protocol_v2:
            await stream.write(p.shell_frame(p.SHELL_EXIT, bytes([exit_status(returncode) & 0xFF])))
    finally:
        if drop:
            drop.cancel()
        feeder.cancel()
        try:
            await _hang_up(proc)
        finally:
            # A background child may still hold the pipes; asyncio has no public way to let go
            # (and closing the transport kills the process if a second cancel cut _hang_up short).
            proc._transport.close()  # type: ignore[attr-defined]  # private, as said above


async def _hang_up(proc: asyncio.subprocess.Process) -> None:
    """The host went away: hang up on the command as closing its PTY would, then kill it."""
    if proc.returncode is not None:
        return
    _signal_group(proc.pid, signal.SIGHUP)
    _signal_group(proc.pid, signal.SIGCONT)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(proc.wait(), 2)
    if proc.returncode is None:
        _signal_group(proc.pid, signal.SIGKILL)
        await proc.wait()


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def _pump(stream: Stream, pipe: asyncio.StreamReader | None, frame_id: int, v2: bool) -> None:
    if pipe is None:
        return
    limit = stream.conn.max_payload - (p.SHELL_FRAME.size if v2 else 0)
    while chunk := await pipe.read(limit):
        await stream.write(p.shell_frame(frame_id, chunk) if v2 else chunk)


async def _feed_stdin(stream: Stream, proc: asyncio.subprocess.Process, v2: bool) -> None:
    stdin = proc.stdin
    if stdin is None:
        return
    pending = bytearray()
    try:
        while (data := await stream.read()) is not None:
            if not v2:
                stdin.write(data)
                await stdin.drain()
                continue
            pending += data
            for frame_id, payload in p.split_shell_frames(pending):
                if frame_id == p.SHELL_STDIN:
                    stdin.write(payload)
                    await stdin.drain()
                elif frame_id == p.SHELL_CLOSE_STDIN:
                    stdin.close()
                    return
    except (ConnectionError, StreamClosed):
        pass
    finally:
        if not stdin.is_closing():
            stdin.close()
