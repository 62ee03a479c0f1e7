"""Where an adb server listens, and the `adb://HOST:PORT[/SERIAL]` specs that name phones on it.

A lab puts its phones on several hosts, each running its own adb server; any client reaches
those phones with `adb -H HOST -P PORT`. `adb://HOST:PORT/SERIAL` is one phone of that server,
`adb://HOST:PORT` every phone it lists. The host is checked here (a hostname, an IPv4 address or
a bracketed IPv6 one) because it becomes a socket address and part of messages.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass

from pocketbench.errors import PocketbenchError, shown
from pocketbench.names import safe_serial

SCHEME = "adb://"
DEFAULT_SERVER_PORT = 5037
LOCAL_HOST = "127.0.0.1"
_HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*")
SPEC_RULE = "adb://HOST:PORT/SERIAL (one phone of that host's adb server) or adb://HOST:PORT (every phone it lists)"


@dataclass(frozen=True)
class ServerAddress:
    """An adb server's socket address (`adb -H host -P port` reaches it)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def spec(self) -> str:
        """`adb://HOST:PORT`: every phone this server lists."""
        return f"{SCHEME}{self}"

    def phone(self, serial: str) -> str:
        """The spec of one phone of this server."""
        return f"{SCHEME}{self}/{serial}"

    @property
    def is_local(self) -> bool:
        return self.host in ("localhost", "127.0.0.1", "::1")


def server_port() -> int:
    """This computer's adb server port: $ANDROID_ADB_SERVER_PORT (what adb itself reads), else 5037."""
    value = os.environ.get("ANDROID_ADB_SERVER_PORT", "")
    return int(value) if value.isdigit() and 0 < int(value) < 65536 else DEFAULT_SERVER_PORT


def local_server(port: int | None = None) -> ServerAddress:
    """The adb server on this computer (`adb:SERIAL` phones)."""
    return ServerAddress(LOCAL_HOST, port or server_port())


def is_server_spec(spec: str) -> bool:
    return spec.startswith(SCHEME)


def parse_address(text: str, what: str = "adb server") -> ServerAddress:
    """`HOST:PORT` (or `[IPv6]:PORT`) → ServerAddress; one line naming the fix otherwise."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        valid = _is_ip(host, 6)
    else:
        valid = _is_ip(host, 4) or bool(_HOSTNAME.fullmatch(host))
    if not sep or not valid or not port.isdigit() or not 0 < int(port) < 65536:
        raise PocketbenchError(
            f"{what} {shown(text)} is not HOST:PORT (a hostname or IP address, a port 1-65535; IPv6 as [ADDR]:PORT)"
        )
    return ServerAddress(host, int(port))


def parse_server_spec(spec: str) -> tuple[ServerAddress, str | None]:
    """`adb://HOST:PORT/SERIAL` → (server, serial); `adb://HOST:PORT` → (server, None)."""
    if not is_server_spec(spec):
        raise PocketbenchError(f"device {shown(spec)} is not {SPEC_RULE}")
    rest = spec[len(SCHEME) :]
    address, slash, serial = rest.partition("/")
    server = parse_address(address, f"device {shown(spec)}: adb server")
    if not slash:
        return server, None
    if not serial:
        raise PocketbenchError(f"device {shown(spec)}: no serial after the '/' ({SPEC_RULE})")
    return server, safe_serial(serial, f"device {shown(spec)}: serial")


def _is_ip(text: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(text).version == version
    except ValueError:
        return False
