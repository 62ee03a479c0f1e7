"""A lease kept on the phone itself, so that coordinators on different hosts all see it.

The flock of lease.py keeps two processes of one computer off a phone. A lab whose phones are
reachable from several computers (another host's adb server, a `tcp:` phone on a shared network)
needs the lease where every coordinator looks: a folder on the phone, made with `mkdir` through
its shell (atomic: of two takers exactly one succeeds), holding its owner (this computer, the
process, a random token) and an expiry by the phone's own clock. The holder renews it while it
works. An expired lease, or one whose owner is a process of this very computer that is gone (a
coordinator killed with SIGKILL), is broken by the next taker, under a second `mkdir` so two
breakers cannot both win.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pocketbench.devices.adb.deploy import WORK_ROOT, q
from pocketbench.devices.adb.lease import LeaseHeld
from pocketbench.devices.adb.transport import ShellResult
from pocketbench.errors import DeviceError

LEASE_DIR = f"{WORK_ROOT}/lease"
TTL_S = 600  # a holder renews at least every TTL_S / 4 while it works
HALF_TAKEN_S = 60  # a lease folder still without its owner file after this: its taker died in between

Shell = Callable[[str, float], ShellResult]


@dataclass(frozen=True)
class Holder:
    """Who holds the lease, as its owner file says, and the phone's clock when it was read."""

    token: str
    expires: int
    machine: str
    process: str  # pid:start time (a reused pid is not the same process)
    hostname: str
    now: int
    age_s: int  # of the lease folder

    def describe(self) -> str:
        left = self.expires - self.now
        return f"{self.hostname or '?'} (process {self.process.split(':')[0] or '?'}, expires in {left} s)"


def machine_id() -> str:
    """This computer, as the owner file records it (survives restarts of pocketbench, not of the OS
    when there is no machine-id)."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id", "/proc/sys/kernel/random/boot_id"):
        try:
            text = Path(path).read_text().strip().replace("-", "")
        except OSError:
            continue
        if text:
            return text[:32]
    return socket.gethostname()


def process_id(pid: int) -> str:
    """`pid:start time` of a process of this computer; empty when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return f"{pid}:{stat.rsplit(')', 1)[1].split()[19]}"


class PhoneLease:
    """`acquire()` (waits up to `wait_s`), `renew()` while working, `release()` at the end."""

    def __init__(self, shell: Shell, label: str, wait_s: float = 60.0, ttl_s: int = TTL_S, poll_s: float = 1.0):
        self.shell = shell
        self.label = label
        self.wait_s = wait_s
        self.ttl_s = ttl_s
        self.poll_s = poll_s
        self.token = secrets.token_hex(8)
        self.machine = machine_id()
        self.process = process_id(os.getpid())
        self.held = False
        self._renewed = 0.0

    def _owner_line(self) -> str:
        name = "".join(c for c in socket.gethostname() if c.isalnum() or c in ".-_")[:64] or "unknown"
        return f'{self.token} "$((now + {int(self.ttl_s)}))" {self.machine} {self.process} {name}'

    def _write_owner(self) -> str:
        """Shell lines writing the owner file whole (a reader sees the old one or the new one)."""
        return f'echo {self._owner_line()} > "$L/owner.tmp" && mv "$L/owner.tmp" "$L/owner"'

    def acquire(self) -> PhoneLease:
        deadline = time.monotonic() + self.wait_s
        while True:
            holder = self._try_take()
            if holder is None:
                self.held, self._renewed = True, time.monotonic()
                return self
            if self._breakable(holder):
                self._break(holder.token)
                continue
            if time.monotonic() >= deadline:
                raise LeaseHeld(
                    f"phone {self.label} is leased by another pocketbench coordinator: {holder.describe()}"
                    f" (lease {LEASE_DIR} on the phone); waited {self.wait_s:.0f} s: let it finish, or wait longer"
                    " with POCKETBENCH_LEASE_WAIT_S",
                    serial=self.label,
                )
            time.sleep(self.poll_s)

    def _try_take(self) -> Holder | None:
        """None when this lease now holds the phone, else who does."""
        script = (
            f"L={q(LEASE_DIR)}; mkdir -p {q(WORK_ROOT)}; now=$(date +%s)\n"
            f'if mkdir "$L" 2>/dev/null; then {self._write_owner()} && echo TAKEN; exit 0; fi\n'
            'made=$(stat -c %Y "$L" 2>/dev/null || echo "$now")\n'
            'echo HELD "$now" "$((now - made))" $(cat "$L/owner" 2>/dev/null)'
        )
        result = self.shell(script, 30.0)
        words = result.output.split()
        if words[:1] == ["TAKEN"]:
            return None
        if words[:1] != ["HELD"] or len(words) < 3:
            raise DeviceError(
                f"phone {self.label}: cannot take the lease {LEASE_DIR}: {result.output.strip()[:200]}",
                serial=self.label,
            )
        now, age, owner = int(words[1]), int(words[2]), words[3:]
        if len(owner) < 5 or not owner[1].isdigit():
            return Holder("", now + HALF_TAKEN_S - age, "", "", "", now, age)  # being taken right now
        return Holder(owner[0], int(owner[1]), owner[2], owner[3], owner[4], now, age)

    def _breakable(self, holder: Holder) -> bool:
        if not holder.token:
            return holder.age_s > HALF_TAKEN_S
        if holder.expires < holder.now:
            return True
        gone = holder.machine == self.machine and process_id(int(holder.process.split(":")[0] or 0)) != holder.process
        return gone  # its coordinator ran here and has ended without releasing it

    def _break(self, token: str) -> None:
        """Remove the lease only if `token` still holds it (a breaker killed half-way frees its
        own guard after a minute)."""
        script = (
            f'L={q(LEASE_DIR)}; B="$L.break"\n'
            'find "$B" -maxdepth 0 -mmin +1 -exec rmdir {} \\; 2>/dev/null\n'
            'mkdir "$B" 2>/dev/null || exit 0\n'
            f'[ "$(cut -d" " -f1 "$L/owner" 2>/dev/null)" = {q(token)} ] && rm -rf "$L"\n'
            'rmdir "$B"'
        )
        self.shell(script, 30.0)

    def renew(self, every_s: float | None = None) -> None:
        """Push the expiry on (at most every `every_s`, default a quarter of the lease's life); a
        lease lost meanwhile (expired and taken) is taken again or fails naming the new holder."""
        if not self.held or time.monotonic() - self._renewed < (self.ttl_s / 4 if every_s is None else every_s):
            return
        script = (
            f"L={q(LEASE_DIR)}; now=$(date +%s)\n"
            f'[ "$(cut -d" " -f1 "$L/owner" 2>/dev/null)" = {self.token} ] && {self._write_owner()} && echo RENEWED'
        )
        if self.shell(script, 30.0).output.split()[:1] != ["RENEWED"]:
            self.held = False
            self.acquire()
        self._renewed = time.monotonic()

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        script = f'L={q(LEASE_DIR)}; [ "$(cut -d" " -f1 "$L/owner" 2>/dev/null)" = {self.token} ] && rm -rf "$L"; true'
        self.shell(script, 30.0)
