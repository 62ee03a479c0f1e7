"""The lab's hosts: the phones of each [[servers]] entry that no [[devices]] names, found by
listing that host's adb server at the start of a run.

A server that does not answer then has no phones the farm can know of: it is reported by name
(the run's problems, exit code 4), while every other host's phones are measured.
"""

from __future__ import annotations

from dataclasses import replace

from pocketbench.devices.adb.discover import server_phones
from pocketbench.errors import DeviceError
from pocketbench.farm.matrix import Matrix, listed_device


def list_server_phones(matrix: Matrix) -> tuple[Matrix, dict[str, str]]:
    """`matrix` with the phones every all-phones server lists now (in any state: a phone that is
    not usable is then reported absent, with its fix), and the servers that did not answer
    (server name → why)."""
    found, down = [], {}
    for server in (s for s in matrix.servers if s.all_phones):
        try:
            phones = server_phones(server.address)
            if not phones:
                down[server.name] = f"the adb server at {server.address} lists no phone (`adb devices` there)"
            found += [listed_device(server, phone.serial) for phone in phones]
        except DeviceError as exc:
            down[server.name] = str(exc)
        except Exception as exc:  # a server in a bad state answers with garbage: the same for the farm
            down[server.name] = f"the adb server at {server.address} did not answer properly ({exc})"
    names = {d.name for d in matrix.devices}
    new = [d for d in found if d.name not in names]
    return replace(matrix, devices=(*matrix.devices, *new)), down
