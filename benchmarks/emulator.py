"""How fast the emulated phone answers real clients.

Start-up time, per-command round trip (adb-shell with and without TCP_NODELAY on its socket,
Debian adb), push/pull throughput of a 32 MB file through both clients, and the idle CPU
of three phones side by side (their sysfs updaters and fault watchers).
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import tempfile
import time
from pathlib import Path

from _results_md import write_section
from adb_shell.adb_device import AdbDeviceTcp
from pocketbench.emulator import start_emulator
from pocketbench.emulator.fixtures import HostAdb

SIZE = 32 * 1024 * 1024


def per_call_ms(fn, n: int) -> float:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def mb_per_s(fn) -> float:
    started = time.perf_counter()
    fn()
    return SIZE / 1e6 / (time.perf_counter() - started)


def main() -> None:
    starts = []
    for _ in range(5):
        started = time.perf_counter()
        start_emulator().stop()
        starts.append((time.perf_counter() - started) * 1000)
    with tempfile.TemporaryDirectory() as scratch:
        src, back = Path(scratch) / "blob", Path(scratch) / "back"
        src.write_bytes(os.urandom(SIZE))
        # No auth: this measures the protocol and the transfer paths, not the handshake.
        phones = [start_emulator(require_auth=False) for _ in range(3)]
        cpu0 = time.process_time()
        time.sleep(5)
        idle_cpu = (time.process_time() - cpu0) / 5 * 100
        emu = phones[0]
        device = AdbDeviceTcp(emu.host, emu.port, default_transport_timeout_s=30)
        device.connect(rsa_keys=None)
        shell_default = per_call_ms(lambda: device.shell("true"), 30)
        device._io_manager._transport._connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        shell_nodelay = per_call_ms(lambda: device.shell("true"), 30)
        push_shell = mb_per_s(lambda: device.push(str(src), "/data/local/tmp/blob"))
        pull_shell = mb_per_s(lambda: device.pull("/data/local/tmp/blob", str(back)))
        adb_rows = []
        if shutil.which("adb"):
            adb = HostAdb(Path(scratch))
            adb.run("start-server", check=True)
            adb.connect(emu)
            run = adb.run
            adb_shell_ms = per_call_ms(lambda: run("-s", emu.address, "shell", "true", check=True), 20)
            push_adb = mb_per_s(lambda: run("-s", emu.address, "push", str(src), "/data/local/tmp/b2", check=True))
            pull_adb = mb_per_s(lambda: run("-s", emu.address, "pull", "/data/local/tmp/b2", str(back), check=True))
            adb.stop()
            adb_rows = [f"| Debian adb 29 | {adb_shell_ms:.1f} | {push_adb:.0f} | {pull_adb:.0f} |"]
        for phone in phones:
            phone.stop()
    body = "\n".join(
        [
            f"- start + stop of one phone (namespace, sysfs, socket): **{statistics.median(starts):.0f} ms** median",
            f"- idle CPU of three phones side by side: **{idle_cpu:.1f} %** of one core",
            "",
            "| client | `shell true` round trip, median ms | push 32 MB, MB/s | pull 32 MB, MB/s |",
            "|---|---|---|---|",
            f"| adb-shell 0.4.4 (default socket) | {shell_default:.1f} | {push_shell:.0f} | {pull_shell:.0f} |",
            f"| adb-shell 0.4.4 + TCP_NODELAY | {shell_nodelay:.1f} | | |",
            *adb_rows,
            "",
            "adb-shell's socket has Nagle on: its small packets wait for delayed ACKs (~40 ms per",
            "command). Setting TCP_NODELAY on it after connect removes that. Debian adb's figure",
            "includes starting the adb client process each time.",
        ]
    )
    write_section("emulator", "Emulated phone: start-up, round trips, transfer rates", body)
    print(body)


if __name__ == "__main__":
    main()
