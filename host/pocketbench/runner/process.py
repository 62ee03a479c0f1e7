"""Run a runner process (native `pocket_runner` or the Python-runtime stand-in) and read its JSON.

Both runners share one command line, so the argv is built in one place for every device.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pocketbench.errors import raise_if_interrupted
from pocketbench.runner.report import BenchJob, RunnerReport, RunnerReportError, parse_runner_report
from pocketbench.runner.schema import RunnerStatus

EXIT_STATUS = {2: RunnerStatus.BAD_ARGUMENTS, 3: RunnerStatus.LOAD_FAILED, 4: RunnerStatus.EXECUTION_FAILED}


def runner_args(
    job: BenchJob, pte: str, inputs: str, outputs: str | None, json_path: str, etdump: str | None = None
) -> list[str]:
    """The runner's flags for `job`, with paths as the device sees them."""
    args = ["--model", pte, "--method", job.method, "--inputs", inputs]
    args += ["--warmup", str(job.warmup), "--iterations", str(job.iterations)]
    if job.min_seconds > 0:
        args += ["--min-seconds", str(job.min_seconds)]
    if job.batch_min_ms > 0:
        args += ["--batch-min-ms", str(job.batch_min_ms)]
    if job.threads > 0:
        args += ["--threads", str(job.threads)]
    if outputs:
        args += ["--outputs", outputs]
    if job.sample_interval_ms > 0 or job.sample_files:
        args += ["--sample-interval-ms", str(job.sample_interval_ms or 20)]
    if job.sample_files:
        args += ["--sample-files", ",".join(job.sample_files)]
    if job.idle_baseline_s > 0:
        args += ["--idle-baseline-s", str(job.idle_baseline_s)]
    if etdump:
        args += ["--etdump", etdump]
    if job.generate is not None:
        args += ["--generate", f"{job.generate[0]},{job.generate[1]}"]
        args += ["--teacher-forced"] if job.teacher_forced else []
    return [*args, "--json", json_path]


def report_from_exit(json_text: str | None, returncode: int, stderr: str, backend: str) -> RunnerReport:
    """The runner's report; when its JSON is missing, malformed or contradicts its exit code, a
    failed report naming the problem (never an ok one)."""
    problem = "it wrote no JSON"
    if json_text is not None:
        try:
            report = parse_runner_report(json_text, backend=backend)
        except RunnerReportError as exc:
            problem = str(exc)
        else:
            if not (report.ok and returncode != 0):
                return report
            problem = "its JSON says ok"
    # Exit 0 with unusable JSON: the process ended normally, so what it wrote is to blame.
    status = RunnerStatus.BAD_REPORT if returncode == 0 else EXIT_STATUS.get(returncode, RunnerStatus.CRASHED)
    killed = killed_by(returncode)
    if killed is not None:
        return failed_report(status, killed, backend)
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    detail = f" | stderr: {lines[-1]}" if lines else ""
    return failed_report(status, f"runner exited with {returncode} but {problem}{detail}", backend)


def killed_by(returncode: int) -> str | None:
    """What a death by signal means, from the exit status (-N from subprocess, 128+N from a
    shell); None for an ordinary exit. The runner reports its own faults (a bad program) as
    JSON, so a signal without that report came from outside it: the model is not to blame."""
    number = -returncode if returncode < 0 else returncode - 128 if 128 < returncode < 128 + 65 else None
    if number is None:
        return None
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    return (
        f"the runner was killed by signal {name} ({number}, exit status {returncode}) from outside it "
        "(another process, the out-of-memory killer or the phone), not by a fault in the model"
    )


def failed_report(status: RunnerStatus, error: str, backend: str) -> RunnerReport:
    return RunnerReport(
        status=status,
        error=error,
        backend=backend,
        runtime_version="",
        threads=0,
        program_load_ms=None,
        method_load_ms=None,
        first_inference_ms=None,
        iterations_ns=[],
        rss_kb_before_load=None,
        rss_kb_after_load=None,
        rss_kb_after_loop=None,
        peak_rss_kb=None,
        planned_buffers_bytes=[],
        output_digests=[],
    )


_PR_SET_PDEATHSIG = 1


def _find_prctl() -> Any:
    """libc's prctl, resolved before any fork (the child only calls it); None off Linux."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _find_prctl()


def die_with_parent() -> None:
    """`preexec_fn` of every child pocketbench starts (a runner, a shell, an emulator's helper):
    the kernel kills it with SIGKILL when the thread that started it ends, so a parent killed
    with -9 leaves no runner behind."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


# Scratch folders are named `pocketbench-<kind>-<pid>-<random>`: one whose process is gone (it
# was killed with -9, where no cleanup can run) is removed by the next run of this user.
SCRATCH_PREFIX = "pocketbench-"
_SCRATCH = re.compile(r"pocketbench-[a-z]+-(\d+)-")


@contextmanager
def scratch_dir(kind: str) -> Iterator[Path]:
    """A temporary folder removed on every exit that runs code (an error, Ctrl-C, SIGTERM), after
    removing what killed runs of this user left behind."""
    reap_scratch()
    with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{kind}-{os.getpid()}-") as folder:
        yield Path(folder)


def reap_scratch(root: Path | None = None) -> list[Path]:
    """Remove this user's scratch folders whose process no longer runs; the ones removed."""
    removed = []
    base = root or Path(tempfile.gettempdir())
    for folder in base.glob(f"{SCRATCH_PREFIX}*"):
        match = _SCRATCH.match(folder.name)
        if match is None or _alive(int(match.group(1))):
            continue
        try:
            if folder.is_dir() and not folder.is_symlink() and folder.stat().st_uid == os.getuid():
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        except OSError:
            continue
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive, and not ours to judge
        return True
    return True


def run_local_runner(prefix: Sequence[str], job: BenchJob, backend: str, timeout_s: float) -> RunnerReport:
    """Run a runner on this computer; a timeout kills it and becomes a failed report."""
    with scratch_dir("runner") as scratch:
        json_path = Path(scratch) / "result.json"
        outputs = str(job.outputs) if job.outputs else None
        etdump = str(job.etdump) if job.etdump else None
        argv = [*prefix, *runner_args(job, str(job.pte), str(job.inputs), outputs, str(json_path), etdump)]
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout_s, check=False, preexec_fn=die_with_parent
            )
        except subprocess.TimeoutExpired:
            return failed_report(RunnerStatus.TIMEOUT, f"runner did not finish within {timeout_s:.0f} s", backend)
        raise_if_interrupted()  # a Ctrl-C swallowed while the runner started (at fork) stops here
        text = json_path.read_text(errors="replace") if json_path.exists() else None
        return report_from_exit(text, proc.returncode, proc.stderr, backend)
