"""Run pocket_runner through a `Shell` (a phone over adb, the emulated phone) and read its JSON.

Files (the .pte, inputs) must already be at the device paths in the job; a device that pushes
them (AdbDevice) calls this after its push. Every argument is shlex-quoted.
"""

from __future__ import annotations

import shlex

from pocketbench.devices.base import BenchJob, RunnerReport
from pocketbench.devices.runner_process import report_from_exit, runner_args
from pocketbench.telemetry.shell import Shell

BACKEND = "native-runner"
_EXIT = "@@pocketbench-exit"


def run_runner(shell: Shell, runner: str, job: BenchJob, json_path: str) -> RunnerReport:
    """Run `runner` on the device for `job`; a run without JSON becomes a failed report."""
    outputs = str(job.outputs) if job.outputs else None
    argv = [runner, *runner_args(job, str(job.pte), str(job.inputs), outputs, json_path)]
    quoted_json = shlex.quote(json_path)
    command = f"rm -f {quoted_json}; {shlex.join(argv)} >/dev/null 2>&1; echo {_EXIT} $?; cat {quoted_json} 2>/dev/null"
    text = shell(command)
    head, _, json_text = text.partition(_EXIT)
    code_text, _, json_text = json_text.strip().partition("\n")
    code = int(code_text) if code_text.strip().lstrip("-").isdigit() else -1
    return report_from_exit(json_text.strip() or None, code, head, BACKEND)
