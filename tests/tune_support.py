"""A real PostgreSQL server for tests: Debian's binaries, run as the `postgres` user (the server
refuses root) in a temporary folder of its own on a free loopback port."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pocketbench.emulator.fixtures import free_port


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throw-away server while the block runs; yields its SQLAlchemy URL. Skips with the reason
    where PostgreSQL cannot run here."""
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'pocketbench[postgres]')")
    bin_dir = _binaries()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (`just system-deps` installs Debian's postgresql)")
    runner: list[str] = []
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("PostgreSQL refuses to run as root and there is no `postgres` user to run it as")
        if shutil.which("runuser") is None:
            pytest.skip("PostgreSQL refuses to run as root and `runuser` is missing to run it as postgres")
        runner = ["runuser", "-u", "postgres", "--"]
    # Its own folder under the system temp dir: pytest's are private to root, the server's user
    # must be able to reach its data.
    folder = Path(tempfile.mkdtemp(prefix="pocketbench-pg-"))
    if runner:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", free_port()

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*runner, str(bin_dir / command[0]), *command[1:]],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd="/",
        )

    try:
        made = run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        if made.returncode != 0:
            pytest.skip(f"initdb failed here: {made.stderr.strip()[-300:]}")
        options = f"-k {folder} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off"
        started = run("pg_ctl", "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start")
        if started.returncode != 0:
            pytest.skip(f"PostgreSQL did not start here: {started.stderr.strip()[-300:]}")
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            run("pg_ctl", "-D", str(data), "-m", "immediate", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
