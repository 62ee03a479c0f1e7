"""pytest fixtures for emulated phones and an isolated Debian `adb` (a pytest plugin).

pytest loads it through the `pytest11` entry point pocketbench installs (pyproject.toml).
`phone` is one emulated Pixel 8 (this host's ABI); `arm64_phone` is one whose ABI is
arm64-v8a, running aarch64 programs with qemu-user; `phone_factory(**kw)` starts more (farm
tests need several, each on its own port; `abi="arm64-v8a"` for arm64). `host_adb` is the
real adb client with a private server port and HOME, stopped after the test.

Auth is on, as on a phone: the phones trust the harness's key ($POCKETBENCH_ADB_KEY, set to
a per-session key unless a test sets its own; `harness_signers()` for adb-shell clients),
and `host_adb.connect(phone)` authorizes Debian adb's key. `phone_factory(require_auth=True)`
is a phone that trusts no one yet; `require_auth=False` is for protocol tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pocketbench.emulator.emulator import RESERVED_PORTS, Emulator, start_emulator, this_computers_key

if TYPE_CHECKING:
    from adb_shell.auth.sign_cryptography import CryptographySigner

ARM64 = "arm64-v8a"


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

    def run(
        self, *args: str, timeout: float = 30, check: bool = False, stdin_text: str | None = None
    ) -> subprocess.CompletedProcess[str]:
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

    def connect(self, emu: Emulator) -> subprocess.CompletedProcess[str]:
        """`adb connect`; a phone that trusts the harness trusts this client's key too."""
        if emu.trusts_harness:
            emu.authorize_key(self.public_key())
        return self.run("connect", emu.address)

    def public_key(self) -> str:
        """The client's adbkey.pub (created by the server on first start)."""
        return (self.home / ".android" / "adbkey.pub").read_text()

    def stop(self) -> None:
        self.run("kill-server", timeout=10)


def harness_signers() -> list[CryptographySigner]:
    """adb-shell signers for the key the fixtures' phones trust."""
    from pocketbench.devices.adb.keys import load_signer

    return [load_signer()]


@pytest.fixture(scope="session", autouse=True)
def harness_adb_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A per-session adb key for pocketbench's clients, never the user's ~/.android."""
    previous = os.environ.get("POCKETBENCH_ADB_KEY")
    key = Path(previous) if previous else tmp_path_factory.mktemp("harness-adb-key") / "adbkey"
    os.environ["POCKETBENCH_ADB_KEY"] = str(key)
    yield key
    if previous is None:
        os.environ.pop("POCKETBENCH_ADB_KEY", None)


@pytest.fixture
def phone_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Emulator]]:
    started: list[Emulator] = []

    def make(**kwargs: Any) -> Emulator:
        kwargs.setdefault("root", tmp_path_factory.mktemp("phone"))
        trusts_harness = "require_auth" not in kwargs
        if trusts_harness:
            kwargs["trusted_keys"] = (*kwargs.get("trusted_keys", ()), this_computers_key())
        emu = start_emulator(**kwargs)
        emu.trusts_harness = trusts_harness
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


@pytest.fixture
def phone(phone_factory: Callable[..., Emulator]) -> Emulator:
    return phone_factory()


@pytest.fixture
def arm64_phone(phone_factory: Callable[..., Emulator]) -> Emulator:
    """An arm64-v8a phone: aarch64 programs run under qemu-user, no aarch64 system library."""
    return phone_factory(abi=ARM64)


@pytest.fixture
def host_adb(tmp_path: Path) -> Iterator[HostAdb]:
    if shutil.which("adb") is None:
        pytest.skip("Debian's adb is not installed (`just system-deps` installs it)")
    home = tmp_path / "adb-home"
    home.mkdir()
    adb = HostAdb(home)
    adb.run("start-server", check=True)
    yield adb
    adb.stop()
