"""Three emulated phones measured in parallel vs one after the other.

Three `pocketbench emulator` phones on loopback, reached through the real adb device; the farm
matrix runs digits_cnn and mobilenet_v2 (fp32, int8) with single-threaded runners. Serial:
the same farm run with one phone at a time (`max_parallel=1`); parallel: one worker per phone.
Artifacts are built and pushed before timing, so both time the same cells and the same set-up.

Each phone is its own process, as with `pocketbench emulator --port N` (in-process phones would
share the farm's GIL, which real phones do not). An emulated phone's "big cluster" is by default
the upper half of this host's CPUs and the adb device pins runners to it: on a 2-core host all
three phones would share one core. Here each phone's one cluster spans every host CPU.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results_md import write_section
from pocketbench.devices.select import open_device
from pocketbench.emulator.fixtures import free_port
from pocketbench.farm.matrix import parse_matrix
from pocketbench.farm.run import run_farm
from pocketbench.results.store import RunStore

MODELS = ["digits_cnn", "mobilenet_v2"]
VARIANTS = ["fp32", "int8"]
RUN = {"iterations": 300, "warmup": 3, "threads": 1}


# One emulated phone per process, its single CPU cluster spanning every host CPU.
PHONE = """
import os, sys
from pathlib import Path
from pocketbench.emulator import Cluster, SysfsScript, start_emulator
from pocketbench.emulator.emulator import serve_forever, this_computers_key
script = SysfsScript(clusters=(Cluster(tuple(range(os.cpu_count() or 1)), 2_800_000),))
trusted = (this_computers_key(),)  # $POCKETBENCH_ADB_KEY, which the farm's clients sign with
serve_forever(start_emulator(port=int(sys.argv[1]), root=Path(sys.argv[2]), script=script, trusted_keys=trusted))
"""


def wait_for_port(port: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"emulated phone on port {port} did not start")


def plan(phones: list[tuple[str, str]], source: Path):
    data = {
        "name": "bench",
        "variants": VARIANTS,
        "models": MODELS,
        "run": RUN,
        "devices": [{"name": n, "serial": s} for n, s in phones],
    }
    return parse_matrix(data, source)


def timed(matrix, root: Path, run_id: str, max_parallel: int | None = None) -> float:
    devices = {d.name: open_device(d.serial) for d in matrix.devices}
    started = time.perf_counter()
    run = run_farm(matrix, RunStore(root, run_id), devices, max_parallel=max_parallel)
    elapsed = time.perf_counter() - started
    bad = run.frame[run.frame["status"] != "ok"]
    if len(bad):
        raise SystemExit(f"cells failed: {bad[['device', 'model', 'variant', 'error']].to_string()}")
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        os.environ.setdefault("POCKETBENCH_ADB_KEY", str(root / "adbkey"))
        ports = [free_port() for _ in range(3)]
        emulators = [
            subprocess.Popen([sys.executable, "-c", PHONE, str(port), str(root / f"phone-{port}")]) for port in ports
        ]
        try:
            for port in ports:
                wait_for_port(port)
            phones = [(f"phone-{i}", f"tcp:127.0.0.1:{port}") for i, port in enumerate(ports)]
            matrix = plan(phones, root / "farm.toml")
            timed(matrix, root / "r", "warm")  # build, cache and push everything
            serial = timed(matrix, root / "r", "serial", max_parallel=1)
            parallel = timed(matrix, root / "r", "parallel")
        finally:
            for emu in emulators:
                emu.terminate()
                emu.wait(30)
    cells = len(MODELS) * len(VARIANTS) * 3
    ratio = parallel / serial
    body = (
        f"{cells} cells: {', '.join(MODELS)} × {', '.join(VARIANTS)} × 3 emulated phones, "
        f"{RUN['iterations']} iterations, 1 runner thread; artifacts cached and already on the phones.\n\n"
        "| schedule | wall time |\n|---|---|\n"
        f"| serial (`max_parallel=1`: one phone after another) | {serial:.1f} s |\n"
        f"| parallel (one worker per phone) | {parallel:.1f} s |\n\n"
        f"Parallel / serial: **{ratio:.2f}** (goal ≤ 0.6: {'met' if ratio <= 0.6 else 'not met'}). "
        f"This host has {os.cpu_count()} cores shared by the three phones' runners (and by whatever else runs here), "
        "so 3 single-threaded runners on 2 cores make ~0.5 the floor."
    )
    write_section("farm_parallel", "Farm: three emulated phones in parallel vs serial", body)
    print(body)


if __name__ == "__main__":
    main()
