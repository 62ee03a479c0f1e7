"""A lab of two hosts: four emulated phones behind two adb servers, in parallel vs one after another.

Two Debian adb servers on this machine, each on its own port and HOME (as two lab hosts' servers,
or ssh tunnels to them, would be), each with two `pocketbench emulator` phones attached by
`adb connect`. The farm matrix names the two servers in `[[servers]]` and nothing else, so every
phone each server lists is measured (`adb://127.0.0.1:PORT/SERIAL`), as `pocketbench farm lab.toml`
does. Serial: the same farm with one phone at a time (`max_parallel=1`); parallel: one worker per
phone across both servers. Artifacts are built and pushed in a warm-up run first, so both time the
same cells and the same set-up.

Each phone is its own process, its one CPU cluster spanning every host CPU (as in farm_parallel.py).
`POCKETBENCH_BENCHMARK_QUICK=1` runs a tiny version and prints it without writing RESULTS.md.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from _results_md import load_note, write_section
from farm_parallel import PHONE, timed, wait_for_port
from pocketbench.emulator.fixtures import free_port
from pocketbench.farm.hosts import list_server_phones
from pocketbench.farm.matrix import Matrix, load_matrix

QUICK = os.environ.get("POCKETBENCH_BENCHMARK_QUICK") == "1"
MODELS = ["digits_cnn"] if QUICK else ["digits_cnn", "mobilenet_v2"]
VARIANTS = ["fp32", "int8"]
ITERATIONS = 20 if QUICK else 300
PHONES_PER_SERVER = 2


def adb(port: int, home: Path, *args: str) -> str:
    """`adb -P port args…` with the server's own HOME (its keys)."""
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    done = subprocess.run(["adb", "-P", str(port), *args], env=env, capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


def lab_toml(path: Path, servers: list[int]) -> Path:
    lines = [
        'name = "lab"',
        f"variants = {VARIANTS!r}".replace("'", '"'),
        f"models = {MODELS!r}".replace("'", '"'),
    ]
    for i, port in enumerate(servers):
        lines += ["[[servers]]", f'name = "host-{"ab"[i]}"', f'address = "127.0.0.1:{port}"']
    lines += ["[run]", f"iterations = {ITERATIONS}", "warmup = 3", "threads = 1"]
    path.write_text("\n".join(lines) + "\n")
    return path


def lab_plan(matrix_file: Path) -> Matrix:
    """The matrix with every phone each server lists, as `pocketbench farm lab.toml` reads it."""
    plan, down = list_server_phones(load_matrix(matrix_file))
    if down or len(plan.devices) != 2 * PHONES_PER_SERVER:
        raise SystemExit(f"the lab is not all there: servers {down}, phones {[d.serial for d in plan.devices]}")
    return plan


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: still stop the servers and phones
    if subprocess.run(["which", "adb"], capture_output=True).returncode:
        raise SystemExit("Debian's adb is needed (`just system-deps` installs it)")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        os.environ.setdefault("POCKETBENCH_ADB_KEY", str(root / "adbkey"))
        servers = [free_port() for _ in range(2)]
        homes = [root / f"adb-home-{port}" for port in servers]
        phone_ports = [free_port() for _ in range(2 * PHONES_PER_SERVER)]
        phones = [
            subprocess.Popen([sys.executable, "-c", PHONE, str(port), str(root / f"phone-{port}")])
            for port in phone_ports
        ]
        try:
            for port, home in zip(servers, homes, strict=True):
                home.mkdir()
                adb(port, home, "start-server")
            for i, port in enumerate(phone_ports):
                wait_for_port(port)
                server = i // PHONES_PER_SERVER
                # The phones trust the harness key only: let this server's own key in too.
                key = (homes[server] / ".android" / "adbkey.pub").read_text()
                (root / f"phone-{port}" / "data" / "misc" / "adb").mkdir(parents=True, exist_ok=True)
                with open(root / f"phone-{port}" / "data" / "misc" / "adb" / "adb_keys", "a") as keys:
                    keys.write(key.strip() + "\n")
                said = adb(servers[server], homes[server], "connect", f"127.0.0.1:{port}")
                if "connected" not in said:
                    raise SystemExit(f"adb connect 127.0.0.1:{port}: {said}")
            plan = lab_plan(lab_toml(root / "lab.toml", servers))
            timed(plan, root / "r", "warm")  # build, cache and push everything
            load_before = os.getloadavg()[0]
            serial = timed(plan, root / "r", "serial", max_parallel=1)
            parallel = timed(plan, root / "r", "parallel")
            load_after = os.getloadavg()[0]
        finally:
            for port, home in zip(servers, homes, strict=True):
                if home.exists():
                    adb(port, home, "kill-server")
            for phone in phones:
                phone.terminate()
                phone.wait(30)
    cells = len(MODELS) * len(VARIANTS) * 2 * PHONES_PER_SERVER
    ratio = parallel / serial
    floor = 1 / min(os.cpu_count() or 1, 2 * PHONES_PER_SERVER)
    body = (
        f"{cells} cells: {', '.join(MODELS)} × {', '.join(VARIANTS)} × 4 emulated phones, two on each of two "
        f"Debian adb servers (`[[servers]]`, every phone each lists), {ITERATIONS} iterations, 1 runner thread; "
        "artifacts cached and already on the phones.\n\n"
        "| schedule | wall time |\n|---|---|\n"
        f"| serial (`max_parallel=1`: one phone after another) | {serial:.1f} s |\n"
        f"| parallel (one worker per phone, both servers at once) | {parallel:.1f} s |\n\n"
        f"Parallel / serial: **{ratio:.2f}** (goal ≤ 0.6: {'met' if ratio <= 0.6 else 'not met'}). "
        f"This host has {os.cpu_count()} cores shared by the four phones' runners, the two adb servers and the "
        f"coordinator: where the runners are the work, 4 single-threaded runners make ~{floor:.2g} the floor"
        " (waits on adb and on the phones overlap as well). "
        f"{load_note(load_before, load_after)} Regenerate with `just benchmark farm_hosts`."
    )
    if QUICK:
        print(body)
        return
    write_section("farm_hosts", "Farm: a lab of two hosts' adb servers, four phones in parallel vs serial", body)
    print(body)


if __name__ == "__main__":
    main()
