"""Start, script and stop an emulated phone: the handle tests and the CLI use.

    emu = start_emulator(model="Pixel 8")
    emu.sysfs.set_script(SysfsScript(power_w=steps((0, 1.0), (2, 3.0))))
    emu.faults.disk_free_bytes = 0
    ... connect any adb client to emu.address ...
    emu.stop()

The daemon runs on its own asyncio loop in a background thread, so a test drives clients
synchronously from the main thread while the phone answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from pocketbench.emulator import wire as p
from pocketbench.emulator.auth import KeyStore
from pocketbench.emulator.faults import Faults, ProcessFaultWatcher
from pocketbench.emulator.persona import Persona, persona_for
from pocketbench.emulator.sandbox import Sandbox, SysfsUpdater, default_props
from pocketbench.emulator.server import Connection, DaemonState, Identity, Service, Stream
from pocketbench.emulator.shell_service import run_shell
from pocketbench.emulator.sync import serve_sync
from pocketbench.emulator.sysfs_script import SysfsScript
from pocketbench.errors import PocketbenchError

T = TypeVar("T")

RESERVED_PORTS = range(5555, 5586)  # the adb server scans these for emulators
ADB_SERVER_PORT = 5037
KEYS_PATH = "data/misc/adb/adb_keys"  # where a phone keeps the hosts it trusts


def check_port(port: int) -> None:
    if port in RESERVED_PORTS or port == ADB_SERVER_PORT:
        raise PocketbenchError(
            f"port {port} is the adb server's or its emulator scan range (5037, 5555-5585); pick another --port"
        )
    if not 0 <= port <= 65535:
        raise PocketbenchError(f"port {port} is not a TCP port; pick one in 1024-65535")


class Emulator:
    """A running emulated phone. Thread-safe to script from the test's thread."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        serial: str,
        model: str,
        root: Path | None,
        require_auth: bool,
        accept_new_keys: bool,
        props: dict[str, str] | None,
        script: SysfsScript | None = None,
        persona: Persona | None = None,
        trusted_keys: tuple[str, ...] = (),
    ):
        check_port(port)
        if serial and not re.fullmatch(r"[A-Za-z0-9._-]+", serial):
            raise PocketbenchError(f"serial {serial!r} may only use letters, digits, '.', '_', '-'")
        self.host = host
        self._requested_port = port
        self.port = port
        self.model = model
        self._owns_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="pocketbench-phone-")) if root is None else root
        self.root.mkdir(parents=True, exist_ok=True)
        self.serial = serial
        self.faults = Faults()
        self.keys = KeyStore(self.root / KEYS_PATH)
        for line in trusted_keys:
            self.keys.add(line)
        self.persona = persona or persona_for(None)
        props_all = default_props(model, serial, self.persona)
        props_all.update(props or {})
        if script is None:
            clusters = self.persona.clusters()
            script = SysfsScript() if clusters is None else SysfsScript(clusters=clusters)
        self.sandbox = Sandbox(self.root, props_all, script, self.persona)
        identity = Identity(product=props_all["ro.product.name"], model=model, device=props_all["ro.product.device"])
        try:
            identity.banner()
        except ValueError as exc:
            raise PocketbenchError(f"{exc}; choose another --model") from exc
        self._state = DaemonState(identity, self.keys, self.faults, require_auth, accept_new_keys)
        self._watcher = ProcessFaultWatcher(self.faults, self.sandbox.pids)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"emulator-{serial}", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._up = threading.Event()
        self.trusts_harness = False  # the pytest fixtures set it when they trust their own key

    # -- public API ------------------------------------------------------------------
    @property
    def address(self) -> str:
        """host:port, what `adb connect` takes and the serial adb then lists."""
        return f"{self.host}:{self.port}"

    @property
    def sysfs(self) -> SysfsUpdater:
        """Script the synthetic /sys: `set_script(SysfsScript(...))`, `pin_time(t)`."""
        return self.sandbox.sysfs

    def set_props(self, **changes: str) -> None:
        """Change getprop answers, e.g. set_props(**{"ro.build.version.sdk": "30"})."""
        self.sandbox.set_props(changes)

    def write_file(self, device_path: str, data: bytes, mode: int = 0o644) -> Path:
        """Leave a file in the phone's storage as its shell user would (an earlier push, a
        corrupt copy): parents are created, everything is owned by the shell user.
        Returns where it lives on this host."""
        path, writable = self.sandbox.host_path(device_path)
        if not writable or not self.sandbox.shell_may_create(path):
            raise PocketbenchError(f"{device_path}: the phone's shell user may not write there")
        path.unlink(missing_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
        self.sandbox.give_to_shell(path)
        return path

    def authorize_key(self, public_key_line: str | bytes) -> None:
        """Trust a host key (an adbkey.pub line), as "Always allow from this computer"."""
        self.keys.add(public_key_line)

    def accept_pending_keys(self) -> int:
        """Tap "Allow" for every host waiting on the auth prompt; returns how many."""
        return self._call(self._state.accept_pending())

    def pending_auth_count(self) -> int:
        return len(self._state.pending)

    def drop_connections(self) -> None:
        """Cut every connection now (a cable pull)."""
        self._loop.call_soon_threadsafe(self._state.drop_all)

    def reboot(self, down_s: float = 1.0, wait: bool = False) -> None:
        """Drop all connections and kill every process now; refuse connections for `down_s`,
        then listen again (returns at once unless `wait`). Files in /data survive."""
        self._up.clear()
        self._call(self._go_down())
        future = asyncio.run_coroutine_threadsafe(self._come_back(down_s), self._loop)
        if wait:
            future.result()

    @property
    def is_up(self) -> bool:
        return self._up.is_set()

    def wait_until_up(self, timeout: float = 30.0) -> bool:
        return self._up.wait(timeout)

    def start(self) -> Emulator:
        self.sandbox.start()
        self._watcher.start()
        self._thread.start()
        try:
            self._call(self._listen())
        except OSError as exc:
            self.stop()
            raise PocketbenchError(
                f"emulated phone cannot listen on {self.host}:{self._requested_port}"
                f" ({exc.strerror}); pick another --port"
            ) from exc
        return self

    def stop(self) -> None:
        """Stop serving, kill the phone's processes, remove its files if they were temporary."""
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._call(self._shutdown())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()
        self._watcher.stop()
        self.sandbox.stop()
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- inside the loop -------------------------------------------------------------
    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout=30)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._on_client, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.port in RESERVED_PORTS:  # an ephemeral pick landed in adb's scan range
            self._server.close()
            self.port = 0
            await self._listen()
            return
        self._up.set()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self._state.drop_all()
        await asyncio.sleep(0)

    async def _shutdown(self) -> None:
        """Close the port and connections, then let every service finish its cleanup."""
        await self._close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            if not task.cancelling():  # a second cancel would cut a command's cleanup short
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _go_down(self) -> None:
        await self._close()
        await asyncio.get_running_loop().run_in_executor(None, self.sandbox.restart)

    async def _come_back(self, down_s: float) -> None:
        await asyncio.sleep(down_s)
        await self._listen()

    async def _reboot(self, down_s: float) -> None:
        self._up.clear()
        await self._go_down()
        await self._come_back(down_s)

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:  # small packets (OKAY, CLSE) must not wait for delayed ACKs
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(self._state, reader, writer, self._resolve)
        self._state.connections.add(conn)
        try:
            await conn.run()
        except asyncio.CancelledError:
            pass  # shutting down; asyncio's server callback must not see the cancellation
        finally:
            self._state.connections.discard(conn)

    def _resolve(self, service: str, conn: Connection) -> Service | None:
        shell = p.parse_shell_service(service)
        if shell is not None:
            return lambda stream: run_shell(stream, shell, self.sandbox, self.faults)
        if service == "sync:":
            return lambda stream: serve_sync(stream, self.sandbox, self.faults)
        if service.startswith("reboot:"):
            return self._reboot_service
        if service == "root:":  # a user build: adbd and its commands stay the shell user
            return lambda stream: stream.write(b"adbd cannot run as root in production builds\n")
        return None

    async def _reboot_service(self, stream: Stream) -> None:
        """`adb reboot`: acknowledge, then go down for a moment like a phone does."""
        self._up.clear()
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, lambda: asyncio.ensure_future(self._reboot(1.0)))


def start_emulator(
    *,
    port: int = 0,
    serial: str | None = None,
    model: str = "Pixel 8",
    host: str = "127.0.0.1",
    root: Path | None = None,
    require_auth: bool = True,
    accept_new_keys: bool = False,
    props: dict[str, str] | None = None,
    script: SysfsScript | None = None,
    abi: str | None = None,
    clusters: tuple[int, ...] = (),
    seccomp: str = "",
    trusted_keys: tuple[str, ...] = (),
) -> Emulator:
    """Start an emulated phone on host:port (0: a free port) and return its handle.

    `abi` picks the persona (None: this host's ABI; "arm64-v8a" on x86_64 runs aarch64
    programs with qemu-user), `clusters` its CPU layout (e.g. (4, 3, 1): CPUs per cluster, slowest
    first, mapped onto this computer's CPUs) and `seccomp` ("android-app": Android's app filter on
    programs under /data, see seccomp.py). With `require_auth` only hosts whose adbkey.pub line is in
    `trusted_keys` (or is authorized later) get in, as with a phone that was told
    "Always allow from this computer"."""
    emu = Emulator(
        host=host,
        port=port,
        serial=serial or "",
        model=model,
        root=root,
        require_auth=require_auth,
        accept_new_keys=accept_new_keys,
        props=props,
        script=script,
        persona=persona_for(abi, clusters, seccomp),
        trusted_keys=trusted_keys,
    )
    emu.start()
    if not serial:
        # Unique like a phone's: a port reused later in the same session is another phone.
        emu.serial = f"pocketbench-{emu.port}-{secrets.token_hex(2)}"
        emu.set_props(**{"ro.serialno": emu.serial})
    return emu


def this_computers_key() -> str:
    """The adbkey.pub line of this computer's adb key (created if missing, as adb does):
    the key pocketbench's clients and, by default, Debian's adb sign with."""
    from pocketbench.devices.adb.keys import default_key_path, load_signer

    load_signer(default_key_path())  # ensures the private key and its .pub exist, mode 0600
    return Path(f"{default_key_path()}.pub").read_text()


def serve_forever(emu: Emulator, ready: Callable[[], object] = lambda: None) -> None:
    """Block until SIGINT/SIGTERM, then stop the phone (the CLI's foreground mode). `ready`
    announces the phone once the handlers are in: a Ctrl-C right after the announcement stops it
    like any other, and the phone is stopped on every way out."""
    try:
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        ready()
        stop.wait()
    finally:
        emu.stop()
