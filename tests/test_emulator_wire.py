"""Device-side protocol rules checked byte by byte with a raw socket (no client leniency)."""

import socket
import struct

import pytest
from pocketbench.emulator import wire as p


@pytest.fixture
def phone(phone_factory):
    """A phone without auth (`--no-auth`): these tests speak the protocol from CNXN on."""
    return phone_factory(require_auth=False)


class RawHost:
    """The host side reduced to packets, to observe exactly what the device sends."""

    def __init__(self, emu, version=p.VERSION_CHECKSUMMED, max_payload=p.MAX_PAYLOAD):
        self.sock = socket.create_connection((emu.host, emu.port), timeout=5)
        self.send(p.CNXN, version, max_payload, b"host::raw\0")

    def send(self, command, arg0, arg1, data=b"", check=None):
        packet = bytearray(p.pack(command, arg0, arg1, data))
        if check is not None:
            struct.pack_into("<I", packet, 16, check)
        self.sock.sendall(bytes(packet))

    def recv(self):
        header = self._exactly(24)
        command, arg0, arg1, length, check, magic = struct.unpack("<6I", header)
        data = self._exactly(length)
        assert magic == command ^ 0xFFFFFFFF
        assert check == sum(data) & 0xFFFFFFFF
        return command, arg0, arg1, data

    def _exactly(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed")
            out += chunk
        return out


def test_connect_negotiates_payload_and_chunks_output_to_it(phone):
    host = RawHost(phone, max_payload=4096)
    command, version, max_payload, banner = host.recv()
    assert (command, version, max_payload) == (p.CNXN, p.VERSION_CHECKSUMMED, 4096)
    assert banner.startswith(b"device::")
    host.send(p.OPEN, 5, 0, b"shell:head -c 10000 /dev/zero\0")
    command, device_id, local_id, _ = host.recv()
    assert (command, local_id) == (p.OKAY, 5)
    received = 0
    while True:
        command, _, _, data = host.recv()
        if command == p.CLSE:
            break
        assert command == p.WRTE and len(data) <= 4096
        received += len(data)
        host.send(p.OKAY, 5, device_id)
    assert received == 10000


def test_unknown_service_is_refused_with_clse(phone):
    host = RawHost(phone)
    host.recv()
    host.send(p.OPEN, 9, 0, b"jdwp:1234\0")
    assert host.recv()[:3] == (p.CLSE, 0, 9)


def test_one_write_in_flight_until_the_host_says_okay(phone):
    host = RawHost(phone)
    host.recv()
    host.send(p.OPEN, 3, 0, b"shell:head -c 3000000 /dev/zero\0")
    _, device_id, _, _ = host.recv()
    command, _, _, _ = host.recv()
    assert command == p.WRTE
    host.sock.settimeout(0.3)
    with pytest.raises(TimeoutError):
        host.recv()  # nothing more until acknowledged
    host.sock.settimeout(5)
    host.send(p.OKAY, 3, device_id)
    assert host.recv()[0] == p.WRTE


def test_bad_checksum_from_a_checksumming_host_drops_the_transport(phone):
    host = RawHost(phone)
    host.recv()
    host.send(p.OPEN, 4, 0, b"shell:echo hi\0", check=12345)
    with pytest.raises(ConnectionError):
        host.recv()


def test_host_clse_is_echoed_once_and_kills_the_command(phone):
    host = RawHost(phone)
    host.recv()
    host.send(p.OPEN, 6, 0, b"shell:sleep 30\0")
    _, device_id, _, _ = host.recv()
    host.send(p.CLSE, 6, device_id)
    assert host.recv()[:3] == (p.CLSE, device_id, 6)
    host.send(p.CLSE, 6, device_id)  # a second CLSE for a dead stream is ignored
    host.send(p.OPEN, 7, 0, b"shell:echo alive\0")
    assert host.recv()[0] == p.OKAY
    assert host.recv()[3] == b"alive\n"
