"""The ExecuTorch Python runtime behind the native runner's command line and JSON schema.

Used only when `pocket_runner` is not built: it is the same measurement protocol (load, first
inference, warm-up, timed loop, one pass per input set for outputs) in a fresh process, so a
crash in the runtime is a failed cell rather than a dead sweep, and peak RSS is the process's.
Run as `python -m pocketbench.runner.python_runtime --model m.pte --inputs in.bin ...`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pocketbench.errors import first_line
from pocketbench.runner.procstat import read_status_kb
from pocketbench.runner.schema import RUNNER_SCHEMA_MINOR, RUNNER_SCHEMA_VERSION, RunnerStatus

EXIT_BAD_ARGUMENTS, EXIT_LOAD_FAILED, EXIT_EXECUTION_FAILED = 2, 3, 4


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python_runner", description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--method", default="forward")
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--min-seconds", type=float, default=0.0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--batch-min-ms", type=float, default=0.0)
    parser.add_argument("--outputs")
    parser.add_argument("--etdump")
    parser.add_argument("--json")
    parser.add_argument("--generate")
    parser.add_argument("--teacher-forced", action="store_true")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {
        "schema_version": RUNNER_SCHEMA_VERSION,
        "schema_minor": RUNNER_SCHEMA_MINOR,
        "status": RunnerStatus.OK,
        "error": None,
        "model": args.model,
        "method": args.method,
        "warmup_iterations": args.warmup,
        "iterations_ns": [],
        "batch": {"min_ms": args.batch_min_ms, "calls": 1, "calibration": [], "batches_ns": []},
        "planned_buffers_bytes": [],
        "generation": None,
    }
    code = _measure(args, report)
    text = json.dumps(report)
    if args.json:
        Path(args.json).write_text(text)
    else:
        print(text)
    return code


def _fail(report: dict[str, Any], status: RunnerStatus, message: str, code: int) -> int:
    report["status"], report["error"] = status, message
    print(f"python_runner: {message}", file=sys.stderr)
    return code


def _measure(args: argparse.Namespace, report: dict[str, Any]) -> int:
    from importlib import metadata

    import torch
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime

    from pocketbench.runner import tensorfile

    report["runtime"] = f"executorch {metadata.version('executorch')} (python)"
    if args.threads > 0:
        portable_lib._unsafe_reset_threadpool(args.threads)
    report["threads"] = portable_lib._threadpool_get_thread_count()
    try:
        input_sets = tensorfile.read(Path(args.inputs))
    except tensorfile.TensorFileError as exc:  # names the file and the broken rule
        return _fail(report, RunnerStatus.BAD_ARGUMENTS, str(exc), EXIT_BAD_ARGUMENTS)
    except OSError as exc:
        return _fail(report, RunnerStatus.BAD_ARGUMENTS, f"cannot read inputs {args.inputs}: {exc}", EXIT_BAD_ARGUMENTS)
    report["inputs"] = {"source": "file", "sets": len(input_sets)}
    if not input_sets:
        return _fail(
            report, RunnerStatus.BAD_ARGUMENTS, f"inputs file {args.inputs} holds no input set", EXIT_BAD_ARGUMENTS
        )
    report["rss_kb"] = {"before_load": read_status_kb("VmRSS")}
    runtime = Runtime.get()
    try:
        started = time.perf_counter_ns()
        # keep `program` alive while using method
        program = runtime.load_program(Path(args.model), enable_etdump=bool(args.etdump))
        loaded = time.perf_counter_ns()
        method = program.load_method(args.method)
        method_loaded = time.perf_counter_ns()
    except Exception as exc:
        return _fail(report, RunnerStatus.LOAD_FAILED, f"cannot load {args.model}: {first_line(exc)}", EXIT_LOAD_FAILED)
    if method is None:
        return _fail(report, RunnerStatus.LOAD_FAILED, f"{args.model} has no method {args.method!r}", EXIT_LOAD_FAILED)
    report["program_load_ms"] = (loaded - started) / 1e6
    report["method_load_ms"] = (method_loaded - loaded) / 1e6
    report["rss_kb"]["after_load"] = read_status_kb("VmRSS")
    if args.generate:
        return _generate(args, method, input_sets[0], report)
    inputs = [torch.from_numpy(t) for t in input_sets[0]]
    try:
        # Only the execute call is inside the clock: input conversion is host bookkeeping.
        begin = time.perf_counter_ns()
        outputs = method.execute(inputs)
        report["first_inference_ms"] = (time.perf_counter_ns() - begin) / 1e6
        for _ in range(args.warmup):
            method.execute(inputs)
        batch = report["batch"]
        if args.batch_min_ms > 0:
            batch["calls"] = calibrate(lambda: method.execute(inputs), args.batch_min_ms, batch["calibration"])
        calls = batch["calls"]
        samples: list[int] = report["iterations_ns"]
        deadline = time.perf_counter_ns() + int(args.min_seconds * 1e9)
        while len(samples) < args.iterations or time.perf_counter_ns() < deadline:
            ns = time_calls(lambda: method.execute(inputs), calls)
            if calls > 1:
                batch["batches_ns"].append(ns)
            samples.append((ns + calls // 2) // calls)
        report["rss_kb"]["after_loop"] = read_status_kb("VmRSS")
        report["outputs"] = [_describe(o) for o in outputs]
        if args.outputs:
            output_sets = [[o.numpy() for o in method.execute([torch.from_numpy(t) for t in s])] for s in input_sets]
            tensorfile.write(Path(args.outputs), output_sets)
        if args.etdump:
            _write_etdump(program, Path(args.etdump))
            report["etdump"] = args.etdump
    except Exception as exc:
        return _fail(report, RunnerStatus.EXECUTION_FAILED, f"execute failed: {first_line(exc)}", EXIT_EXECUTION_FAILED)
    finally:
        report["peak_rss_kb"] = read_status_kb("VmHWM")
    return 0


def _generate(args: argparse.Namespace, method: Any, first_set: list[Any], report: dict[str, Any]) -> int:
    """`--generate P,N`: the native runner's generation mode (runner/python_generation.py)."""
    from pocketbench.runner import python_generation as generation

    try:
        prompt, decode = generation.parse_generate(args.generate)
        plan = generation.GenerationPlan(prompt, decode, args.teacher_forced, generation.method_context(method))
        if not first_set:
            raise generation.GenerationError("--generate: the inputs file holds no token stream")
        stream = first_set[0].reshape(-1).tolist()
        generation.check_plan(plan, stream, str(first_set[0].dtype))
    except generation.GenerationError as exc:
        return _fail(report, RunnerStatus.BAD_ARGUMENTS, str(exc), EXIT_BAD_ARGUMENTS)
    try:
        generation.measure_generation(method, plan, stream, args.warmup, args.iterations, args.min_seconds, report)
        report["rss_kb"]["after_loop"] = read_status_kb("VmRSS")
    except Exception as exc:
        return _fail(
            report, RunnerStatus.EXECUTION_FAILED, f"generation failed: {first_line(exc)}", EXIT_EXECUTION_FAILED
        )
    finally:
        report["peak_rss_kb"] = read_status_kb("VmHWM")
    return 0


MAX_BATCH_CALLS = 1 << 20
CALIBRATION_TRIES = 3


def time_calls(call: Callable[[], Any], calls: int) -> int:
    """ns for `calls` consecutive calls, one clock read on each side."""
    begin = time.perf_counter_ns()
    for _ in range(calls):
        call()
    return time.perf_counter_ns() - begin


def calibrate(call: Callable[[], Any], min_ms: float, trials: list[list[int]]) -> int:
    """Calls per batch so a batch lasts ≥ `min_ms` (the native runner's rule): grow k from 1 by at
    least 2× and at most 16× towards the target until a batch of k does (fastest of three tries);
    every trial is appended."""
    target_ns, calls = int(min_ms * 1e6), 1
    while True:
        ns = min(time_calls(call, calls) for _ in range(CALIBRATION_TRIES))  # interference only lengthens
        trials.append([calls, ns])
        if ns >= target_ns or calls >= MAX_BATCH_CALLS:
            return calls
        ratio = target_ns / ns if ns > 0 else 16.0
        calls = min(MAX_BATCH_CALLS, calls * max(2, min(16, int(ratio * 1.2) + 1)))


def _write_etdump(program: Any, path: Path) -> None:
    """The trace of every execute; the runtime also wants a debug-buffer path (empty here)."""
    debug = path.with_name(f".{path.name}.debug")
    try:
        program.write_etdump_result_to_file(str(path), str(debug))
    finally:
        debug.unlink(missing_ok=True)
    if not path.exists():
        raise RuntimeError(f"the runtime wrote no ETDump trace to {path}")


def _describe(tensor: Any) -> dict[str, Any]:
    array = tensor.numpy()
    return {
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "sha256": hashlib.sha256(array.tobytes()).hexdigest(),
    }


if __name__ == "__main__":
    sys.exit(main())
