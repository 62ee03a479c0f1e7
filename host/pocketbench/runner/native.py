"""The native `pocket_runner` on this computer: where `just build-runner` puts it, and running it.

The process handling and JSON reading live in runner.process, shared with every device; this
module only knows where the host build is and which backend name its reports carry.
"""

from __future__ import annotations

import os
from pathlib import Path

from pocketbench.errors import PocketbenchError
from pocketbench.runner.process import run_local_runner
from pocketbench.runner.report import BenchJob, RunnerReport

BACKEND = "native-runner"
RUNNER_ENV = "POCKETBENCH_RUNNER"
# host/pocketbench/runner/native.py → the checkout root (editable install).
_REPO_ROOT = Path(__file__).resolve().parents[3]


def host_build_path() -> Path:
    """Where `just build-runner` writes the host runner."""
    return _REPO_ROOT / "device_runner" / "build" / "host" / "pocket_runner"


def find_runner() -> Path | None:
    """The host runner: $POCKETBENCH_RUNNER if set, else the `just build-runner` output, else None."""
    override = os.environ.get(RUNNER_ENV)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise PocketbenchError(f"{RUNNER_ENV}={override} is not an executable file: fix or unset it")
        return path
    path = host_build_path()
    return path if path.is_file() and os.access(path, os.X_OK) else None


def run_native_runner(binary: Path, job: BenchJob, timeout_s: float) -> RunnerReport:
    """Run `binary` on `job` in a fresh process; any failure comes back as a non-ok report."""
    return run_local_runner([str(binary)], job, BACKEND, timeout_s)
