"""The adbd side of a TCP transport: CNXN/AUTH handshake, streams, flow control, dispatch.

One `Connection` per TCP client. Streams keep one WRTE in flight per direction: the device
waits for the host's OKAY before the next WRTE, and acknowledges a host WRTE only when the
service has consumed it, so a slow command pushes back on the host as a phone does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pocketbench.emulator import wire as p
from pocketbench.emulator.auth import KeyFormatError, KeyStore, new_token
from pocketbench.emulator.faults import Faults

log = logging.getLogger(__name__)


class StreamClosed(Exception):
    """The stream ended (host CLSE or transport gone) while a service used it."""


@dataclass(frozen=True)
class Identity:
    """What the device says about itself in its CNXN banner."""

    product: str
    model: str
    device: str

    def banner(self) -> bytes:
        return p.banner(self.product, self.model.replace(" ", "_"), self.device)


class Stream:
    """One OPENed service: ordered, acknowledged byte transfer in both directions."""

    def __init__(self, conn: Connection, local_id: int, remote_id: int):
        self.conn = conn
        self.local_id = local_id
        self.remote_id = remote_id
        self.closed = False
        self._inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._acked = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self.task: asyncio.Task | None = None

    async def write(self, data: bytes) -> None:
        """Send `data` as WRTEs of at most the negotiated payload, each acknowledged."""
        async with self._write_lock:
            view = memoryview(data)
            for start in range(0, len(data), self.conn.max_payload):
                if self.closed:
                    raise StreamClosed
                self._acked.clear()
                chunk = bytes(view[start : start + self.conn.max_payload])
                await self.conn.send(p.WRTE, self.local_id, self.remote_id, chunk)
                await self._acked.wait()
            if self.closed:
                raise StreamClosed

    async def read(self) -> bytes | None:
        """Next WRTE payload from the host (acknowledged now), or None once it closed."""
        data = await self._inbox.get()
        if data is None:
            self._inbox.put_nowait(None)
            return None
        await self.conn.send(p.OKAY, self.local_id, self.remote_id)
        return data

    async def close(self) -> None:
        """End the stream from the device side (the host echoes CLSE, which we ignore)."""
        if self.closed:
            return
        self.mark_closed()
        await self.conn.send(p.CLSE, self.local_id, self.remote_id)

    def mark_closed(self) -> None:
        self.closed = True
        self.conn.streams.pop(self.local_id, None)
        self._inbox.put_nowait(None)
        self._acked.set()

    # Called by the connection's reader.
    def on_write(self, data: bytes) -> None:
        self._inbox.put_nowait(data)

    def on_okay(self) -> None:
        self._acked.set()


Service = Callable[[Stream], Awaitable[None]]
ServiceResolver = Callable[[str, "Connection"], Service | None]


class Connection:
    """One host on one socket, from CNXN to the last CLSE."""

    def __init__(
        self, daemon: DaemonState, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, resolve: ServiceResolver
    ) -> None:
        self.daemon = daemon
        self.reader: asyncio.StreamReader = reader
        self.writer: asyncio.StreamWriter = writer
        self.resolve = resolve
        self.version = p.VERSION_SKIP_CHECKSUM
        self.max_payload = p.MAX_PAYLOAD_BEFORE_CONNECT
        self.online = False
        self.token = b""
        self.pending_key = ""
        self.streams: dict[int, Stream] = {}
        self._next_id = 1
        self._write_lock = asyncio.Lock()

    # -- transport -------------------------------------------------------------------
    async def send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        await self.daemon.wait_unstalled()
        async with self._write_lock:
            if self.writer.is_closing():
                raise StreamClosed
            self.writer.write(p.pack(command, arg0, arg1, data))
            try:
                await self.writer.drain()
            except ConnectionError as exc:
                raise StreamClosed from exc

    def abort(self) -> None:
        """Drop the TCP connection at once with a reset, as when adbd dies mid-transfer."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None and not self.writer.transport.is_closing():
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    async def run(self) -> None:
        try:
            while True:
                raw = await self.reader.readexactly(p.HEADER_SIZE)
                header = p.unpack_header(raw, p.MAX_PAYLOAD)
                data = await self.reader.readexactly(header.data_length)
                checked = self.version == p.VERSION_CHECKSUMMED or (
                    header.command == p.CNXN and header.arg0 < p.VERSION_SKIP_CHECKSUM
                )
                if checked and header.checksum != p.checksum(data):
                    raise p.ProtocolError(f"checksum mismatch on {p.command_name(header.command)}")
                await self.handle(header, data)
        except (asyncio.IncompleteReadError, ConnectionError, StreamClosed):
            pass
        except p.ProtocolError as exc:
            log.warning("dropping connection: %s", exc)
        finally:
            self.teardown()

    def teardown(self) -> None:
        self.daemon.pending.discard(self)
        for stream in list(self.streams.values()):
            stream.mark_closed()
            if stream.task:
                stream.task.cancel()
        self.writer.close()

    # -- packets ---------------------------------------------------------------------
    async def handle(self, h: p.Header, data: bytes) -> None:
        if h.command == p.CNXN:
            await self.on_connect(h, data)
        elif h.command == p.AUTH:
            await self.on_auth(h, data)
        elif not self.online:
            return  # a phone ignores stream traffic before the handshake is done
        elif h.command == p.OPEN:
            await self.on_open(h, data)
        elif h.command == p.WRTE:
            stream = self.streams.get(h.arg1)
            if stream is not None and stream.remote_id == h.arg0:
                stream.on_write(data)
        elif h.command == p.OKAY:
            stream = self.streams.get(h.arg1)
            if stream is not None:
                stream.on_okay()
        elif h.command == p.CLSE:
            stream = self.streams.get(h.arg1)
            if stream is not None and not stream.closed:
                stream.mark_closed()
                if stream.task:
                    stream.task.cancel()
                await self.send(p.CLSE, stream.local_id, stream.remote_id)

    async def on_connect(self, h: p.Header, data: bytes) -> None:
        for stream in list(self.streams.values()):
            stream.mark_closed()
            if stream.task:
                stream.task.cancel()
        self.online = False
        self.version = p.negotiate_version(h.arg0)
        self.max_payload = p.negotiate_max_payload(h.arg1)
        if self.daemon.auth_required():
            await self.send_token()
        else:
            await self.go_online()

    async def send_token(self) -> None:
        self.token = new_token()
        await self.send(p.AUTH, p.AUTH_TOKEN, 0, self.token)

    async def go_online(self) -> None:
        self.online = True
        self.daemon.pending.discard(self)
        await self.send(p.CNXN, self.version, self.max_payload, self.daemon.identity.banner())

    async def on_auth(self, h: p.Header, data: bytes) -> None:
        if self.online or not self.token:
            return
        faults = self.daemon.faults
        if h.arg0 == p.AUTH_SIGNATURE:
            if not faults.reject_auth and self.daemon.keys.verify(self.token, data):
                await self.go_online()
            else:
                await self.send_token()
        elif h.arg0 == p.AUTH_RSAPUBLICKEY and not faults.reject_auth:
            key = data.rstrip(b"\0").decode("ascii", "replace")
            if self.daemon.accept_new_keys:
                try:
                    self.daemon.keys.add(key)
                except KeyFormatError:
                    return
                await self.go_online()
            else:
                # The phone shows "Allow USB debugging?" and waits for the user.
                self.pending_key = key
                self.daemon.pending.add(self)

    async def on_open(self, h: p.Header, data: bytes) -> None:
        service = p.parse_service(data)
        handler = self.resolve(service, self)
        if handler is None or h.arg0 == 0:
            await self.send(p.CLSE, 0, h.arg0)
            return
        local_id = self._next_id
        self._next_id += 1
        stream = Stream(self, local_id, h.arg0)
        self.streams[local_id] = stream
        await self.send(p.OKAY, local_id, h.arg0)
        stream.task = asyncio.create_task(self._serve(stream, handler))

    async def _serve(self, stream: Stream, handler: Service) -> None:
        try:
            await handler(stream)
            await stream.close()
        except (StreamClosed, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("service failed")
            with contextlib.suppress(StreamClosed):
                await stream.close()


class DaemonState:
    """What every connection of one emulated phone shares."""

    def __init__(
        self,
        identity: Identity,
        keys: KeyStore,
        faults: Faults,
        require_auth: bool,
        accept_new_keys: bool,
    ):
        self.identity = identity
        self.keys = keys
        self.faults = faults
        self.require_auth = require_auth
        self.accept_new_keys = accept_new_keys
        self.pending: set[Connection] = set()
        self.connections: set[Connection] = set()

    def auth_required(self) -> bool:
        return self.require_auth or self.faults.reject_auth

    async def wait_unstalled(self) -> None:
        while self.faults.stall:
            await asyncio.sleep(0.02)

    async def accept_pending(self) -> int:
        """The user taps "Allow": remember each waiting host's key and let it in."""
        accepted = 0
        for conn in list(self.pending):
            try:
                self.keys.add(conn.pending_key)
            except KeyFormatError:
                continue
            await conn.go_online()
            accepted += 1
        return accepted

    def drop_all(self) -> None:
        for conn in list(self.connections):
            conn.abort()
