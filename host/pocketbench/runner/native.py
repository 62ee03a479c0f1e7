"""The native `pocket_runner` on this computer: where `just build-runner` puts it, and running it.

The process handling and JSON reading live in runner.process, shared with every device; this
module only knows where the host build is and which backend name its reports carry.
"""

from __future__ import annotations

from pathlib import Path

from pocketbench.paths import host_runner, runner_build_dir
from pocketbench.runner.process import run_local_runner
from pocketbench.runner.report import BenchJob, RunnerReport

BACKEND = "native-runner"


def host_build_path() -> Path:
    """Where `just build-runner` writes the host runner (paths.runner_build_dir)."""
    return runner_build_dir() / "host" / "pocket_runner"


def find_runner() -> Path | None:
    """The host runner: $POCKETBENCH_RUNNER if set, else the `just build-runner` output, else None."""
    return host_runner()


def run_native_runner(binary: Path, job: BenchJob, timeout_s: float) -> RunnerReport:
    """Run `binary` on `job` in a fresh process; any failure comes back as a non-ok report."""
    return run_local_runner([str(binary)], job, BACKEND, timeout_s)
