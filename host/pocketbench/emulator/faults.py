"""Faults a test can switch on to see how the host copes with a misbehaving phone.

Each fault reproduces what a client really sees: a dropped socket, silence, an auth
prompt that is never accepted, a failed push, a runner killed by a signal or stuck.
Fields are set from the test's thread and read by the emulator's event loop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass
class ProcessFault:
    """Signal every process named `name` (see process_names) `after_s` after it starts."""

    name: str
    after_s: float
    signal: int


@dataclass
class Faults:
    """Switchable faults; `clear()` restores a healthy phone."""

    # Close the connection once this many file bytes moved through sync (push or pull).
    drop_after_sync_bytes: int | None = None
    # Close the connection this long after a shell/exec command started.
    drop_after_command_s: float | None = None
    # Stop answering: packets are read but nothing is sent until cleared.
    stall: bool = False
    # Refuse every signature and every offered key: the host sees "unauthorized" for good.
    reject_auth: bool = False
    # Free space on /data for SEND, in bytes (None: unlimited). A push past it fails
    # with "No space left on device" and the partial file is removed, as adbd does.
    disk_free_bytes: int | None = None
    process_faults: list[ProcessFault] = field(default_factory=list)

    def clear(self) -> None:
        self.drop_after_sync_bytes = None
        self.drop_after_command_s = None
        self.reject_auth = False
        self.disk_free_bytes = None
        self.process_faults = []
        self.stall = False

    def crash_process(self, name: str, after_s: float = 0.0, sig: int = signal.SIGSEGV) -> None:
        """Kill `name` with `sig` (default SIGSEGV: the shell reports exit status 139)."""
        self.process_faults = [*self.process_faults, ProcessFault(name, after_s, sig)]

    def hang_process(self, name: str, after_s: float = 0.0) -> None:
        """Freeze `name` (SIGSTOP): it never finishes and prints nothing more."""
        self.process_faults = [*self.process_faults, ProcessFault(name, after_s, signal.SIGSTOP)]


# Programs that run another program named later on their command line (glibc's loader started
# by a bundle's launcher, qemu-user started by binfmt_misc), and their options that take a value.
LAUNCHERS = ("ld-linux", "ld-musl", "qemu-")
LAUNCHER_OPTIONS = {"--library-path", "--preload", "--argv0", "--audit", "-L", "-cpu", "-E", "-U", "-0"}


def program_words(words: list[str]) -> list[str]:
    """The programs an argv runs: argv[0] and, while that is a loader or qemu-user, the program
    it starts (its first word that is not an option). Arguments are never names: a
    `sha256sum DIR/pocket_runner` is not the runner."""
    programs, rest = [], list(words)
    while rest:
        program, rest = rest[0], rest[1:]
        programs.append(program)
        if not os.path.basename(program).startswith(LAUNCHERS):
            break
        while rest and rest[0].startswith("-"):
            rest = rest[2:] if rest[0] in LAUNCHER_OPTIONS else rest[1:]
    return programs


def process_names(pid: int) -> set[str]:
    """What a process answers to: its executable's basename, its comm, and the programs its argv
    runs, so a program started through its loader (`ld-linux-*.so --library-path DIR
    DIR/pocket_runner …`, or qemu-user for another ISA) still matches its own name."""
    names = set()
    with contextlib.suppress(OSError):
        names.add(os.path.basename(os.readlink(f"/proc/{pid}/exe")))
    with contextlib.suppress(OSError), open(f"/proc/{pid}/comm") as f:
        names.add(f.read().strip())
    with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as f:
        words = [w.decode(errors="replace") for w in f.read().split(b"\0") if w]
        names.update(os.path.basename(word) for word in program_words(words))
    return names


class ProcessFaultWatcher:
    """Polls the sandbox's processes and applies `Faults.process_faults` to matching ones."""

    def __init__(self, faults: Faults, list_pids: Callable[[], Iterable[int]], period_s=0.01):
        self._faults = faults
        self._list_pids = list_pids
        self._period_s = period_s
        self._first_seen: dict[int, float] = {}
        self._done: set[tuple[int, int]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="emulator-faults", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.wait(self._period_s):
            rules = self._faults.process_faults
            if not rules:
                self._first_seen.clear()
                continue
            self.poll(rules)

    def poll(self, rules: list[ProcessFault]) -> None:
        now = time.monotonic()
        alive = set()
        for pid in self._list_pids():
            alive.add(pid)
            names = process_names(pid)
            for index, rule in enumerate(rules):
                if rule.name not in names or (pid, index) in self._done:
                    continue
                started = self._first_seen.setdefault(pid, now)
                if now - started >= rule.after_s:
                    self._done.add((pid, index))
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, rule.signal)
        self._first_seen = {p: t for p, t in self._first_seen.items() if p in alive}
        self._done = {(p, i) for p, i in self._done if p in alive}
