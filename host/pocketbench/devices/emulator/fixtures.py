"""pytest fixtures for emulated phones and an isolated Debian `adb` (a pytest plugin).

Enable with `pytest_plugins = ["pocketbench.devices.emulator.fixtures"]` in a conftest.py.
`phone` is one emulated Pixel 8 without auth; `phone_factory(**kw)` starts more (farm
tests need several, each on its own port); `host_adb` is the real adb client with a private
server port and HOME, stopped after the test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pocketbench.devices.emulator.emulator import RESERVED_PORTS, Emulator, start_emulator


def free_port() -> int:
    """A free local TCP port outside adb's own (5037, 5555-5585)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in RESERVED_PORTS and port != 5037:
            return port


class HostAdb:
    """Debian's adb with its own server (`adb -P port`) and HOME (its keys live there)."""

    def __init__(self, home: Path):
        self.home = home
        self.server_port = free_port()
        self.env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    def run(self, *args: str, timeout: float = 30, check: bool = False, stdin_text: str | None = None):
        """`adb -P <port> args…` (stdin closed unless `stdin_text`); the CompletedProcess."""
        return subprocess.run(
            ["adb", "-P", str(self.server_port), *args],
            env=self.env,
            input=stdin_text,
            stdin=subprocess.DEVNULL if stdin_text is None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    def connect(self, emu: Emulator) -> subprocess.CompletedProcess:
        return self.run("connect", emu.address)

    def public_key(self) -> str:
        """The client's adbkey.pub (created by the server on first start)."""
        return (self.home / ".android" / "adbkey.pub").read_text()

    def stop(self) -> None:
        self.run("kill-server", timeout=10)


@pytest.fixture
def phone_factory(tmp_path_factory) -> Iterator[Callable[..., Emulator]]:
    started: list[Emulator] = []

    def make(**kwargs) -> Emulator:
        kwargs.setdefault("root", tmp_path_factory.mktemp("phone"))
        emu = start_emulator(**kwargs)
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


@pytest.fixture
def phone(phone_factory) -> Emulator:
    return phone_factory()


@pytest.fixture
def host_adb(tmp_path) -> Iterator[HostAdb]:
    if shutil.which("adb") is None:
        pytest.skip("Debian's adb is not installed (`just system-deps` installs it)")
    home = tmp_path / "adb-home"
    home.mkdir()
    adb = HostAdb(home)
    adb.run("start-server", check=True)
    yield adb
    adb.stop()
