"""`adb://HOST:PORT[/SERIAL]` specs and reaching other hosts' adb servers: checked forms, and a
server that does not answer is named at once (a real socket; nothing listens on the port)."""

import socket

import pytest
from pocketbench.devices.adb.server_address import ServerAddress, parse_server_spec
from pocketbench.devices.adb.server_route import AdbServerTransport, client
from pocketbench.devices.adb.transport import ServerUnreachable
from pocketbench.devices.select import open_device, open_devices
from pocketbench.errors import PocketbenchError


def test_specs_name_a_server_and_maybe_one_phone():
    assert parse_server_spec("adb://10.0.0.5:5037/38211FDH2000AB") == (
        ServerAddress("10.0.0.5", 5037),
        "38211FDH2000AB",
    )
    assert parse_server_spec("adb://lab-a.example:15037") == (ServerAddress("lab-a.example", 15037), None)
    server, serial = parse_server_spec("adb://[fd00::5]:5037/127.0.0.1:5555")
    assert (server.host, serial, str(server)) == ("fd00::5", "127.0.0.1:5555", "[fd00::5]:5037")
    assert server.phone(serial) == "adb://[fd00::5]:5037/127.0.0.1:5555"


@pytest.mark.parametrize(
    "spec",
    ["adb://10.0.0.5/X", "adb://10.0.0.5:0/X", "adb://10.0.0.5:70000/X", "adb://a b:5037/X", "adb://h:5037/",
     "adb://h:5037/../x", "adb://h:5037/a;reboot", "adb://fd00::5:5037/X", "adb://-h:5037/X"],
)  # fmt: skip
def test_bad_specs_fail_in_one_line(spec):
    with pytest.raises(PocketbenchError) as caught:
        open_device(spec)
    assert "\n" not in str(caught.value) and ("HOST:PORT" in str(caught.value) or "serial" in str(caught.value))


def _silent_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_server_that_does_not_answer_is_named_and_never_started():
    port = _silent_port()
    for attempt in (
        lambda: client(address=ServerAddress("127.0.0.1", port)),
        lambda: AdbServerTransport(f"adb://127.0.0.1:{port}/X").connect(),
        lambda: open_devices([f"adb://127.0.0.1:{port}"]),
        lambda: open_device(f"adb://127.0.0.1:{port}/X"),
    ):
        with pytest.raises(
            PocketbenchError, match=rf"no adb server answers at 127.0.0.1:{port} \(Connection refused\)"
        ):
            attempt()
    with pytest.raises(ServerUnreachable):
        client(address=ServerAddress("127.0.0.1", port))
    with socket.socket() as probe:  # adbutils' habit of starting one was turned off: still nothing there
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_a_whole_server_is_not_one_device():
    with pytest.raises(PocketbenchError, match="names a whole adb server: name one phone"):
        open_device("adb://127.0.0.1:5037")
