"""The four things pocketbench asks of a phone's adb connection: shell, push, pull, stat.

Two routes implement it: adb-shell talking to the phone's adbd directly (TCP or USB,
shell_route.py) and a running adb server (server_route.py). Every shell command ends with a
sentinel line carrying `$?`, because neither `shell:` v1 nor Debian's adb 29 reports an exit
status we can trust when the connection drops mid-command: no sentinel means "lost", never 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pocketbench.errors import DeviceError

SENTINEL = "__pocketbench_rc="
_SENTINEL_RE = re.compile(r"\n" + re.escape(SENTINEL) + r"(\d+)\n?$")


@dataclass(frozen=True)
class ShellResult:
    """A finished device command: its output (stdout and stderr merged, as adb's v1 shell does)
    and its exit status."""

    output: str
    exit_code: int

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class RemoteStat:
    mode: int
    size: int


class ConnectionLost(DeviceError):
    """The connection to the phone broke (cable pull, reboot, network): reconnect and retry."""


class Unauthorized(DeviceError):
    """The phone has not accepted this computer's key."""


class Unreachable(DeviceError):
    """Nothing answers at the phone's address (offline, wrong port, wireless debugging off)."""


class ServerUnreachable(Unreachable):
    """The adb server holding the phone does not answer: every phone of that host is out of reach."""


def with_sentinel(command: str) -> str:
    """`command` followed by a line carrying its exit status (run in a subshell so `exit` in
    the command cannot skip the sentinel)."""
    return f"( {command}\n)\nprintf '\\n{SENTINEL}%d\\n' $?"


def parse_sentinel(text: str, command: str = "", serial: str = "") -> ShellResult:
    """Output of a `with_sentinel` command → ShellResult; no sentinel: the connection was lost."""
    match = _SENTINEL_RE.search(text)
    if match is None:
        raise ConnectionLost(
            f"phone {serial}: the connection ended before `{command[:60]}` finished",
            command=command,
            output=text,
            serial=serial,
        )
    return ShellResult(text[: match.start()], int(match.group(1)))


class ReconnectingRoute:
    """What both routes share: connect on first use, and turn a broken link into ConnectionLost
    (after dropping the dead connection, so the next call reconnects)."""

    spec: str
    _device: Any = None

    def connect(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _lost_errors(self) -> tuple[type[BaseException], ...]:
        """The client library's exceptions that mean the link itself broke."""
        raise NotImplementedError

    def _label(self) -> str:
        return self.spec

    def _live(self) -> Any:
        if self._device is None:
            self.connect()
        return self._device

    def _call(self, what: str, fn: Any) -> Any:
        try:
            return fn(self._live())
        except DeviceError:
            raise
        except self._lost_errors() as exc:
            self.close()
            raise ConnectionLost(
                f"phone {self._label()}: connection lost during {what} ({exc!r})", serial=self.spec
            ) from exc


class Transport(Protocol):
    """One route to one phone. Methods raise ConnectionLost when the link breaks."""

    spec: str  # how the user named it: tcp:HOST:PORT, usb:SERIAL, adb:SERIAL

    def connect(self) -> None: ...

    def close(self) -> None: ...

    def shell(self, command: str, timeout_s: float) -> ShellResult:
        """Run `command` with /bin/sh on the phone; `timeout_s` bounds the silence between reads."""
        ...

    def push(self, local: Path, remote: str) -> None: ...

    def pull(self, remote: str, local: Path) -> None: ...

    def stat(self, remote: str) -> RemoteStat | None:
        """None when the path does not exist."""
        ...


@runtime_checkable
class NetworkTransport(Protocol):
    """A route that can ask the adb server to reconnect a wireless phone (adb:SERIAL)."""

    def reconnect_network(self) -> None: ...
