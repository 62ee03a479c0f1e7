"""The host side of the runner's JSON contract: text that is not a well-formed report is refused.

The runner's JSON crossed a USB cable from a process that may have been killed mid-write, built
from another schema, or broken. Whatever is refused here becomes a failed row naming the problem
(runner.process.report_from_exit); nothing malformed can become an ok row. Pure: text in, dict out.
"""

from __future__ import annotations

import json
import math
from enum import StrEnum
from typing import Any, TypeGuard

RUNNER_SCHEMA_VERSION = 1
# The newest minor this host reads: 3 added `batch` (calibrated samples), 4 `generation`
# (--generate: null otherwise). Older minors still parse.
RUNNER_SCHEMA_MINOR = 4


class RunnerStatus(StrEnum):
    """How one runner process ended (the JSON's `status`, or what the host makes of its exit)."""

    OK = "ok"
    BAD_ARGUMENTS = "bad_arguments"  # exit 2
    LOAD_FAILED = "load_failed"  # exit 3
    EXECUTION_FAILED = "execution_failed"  # exit 4
    CRASHED = "crashed"  # any other exit without a usable report
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"  # the phone went away mid-run (twice)
    BAD_REPORT = "bad_report"  # exit 0 with unusable JSON


class RunnerReportError(ValueError):
    """The runner's JSON could not be understood; the message names the problem."""


def _no_constant(name: str) -> Any:
    raise RunnerReportError(f"runner JSON holds the non-finite number {name}")


def _non_finite(value: Any, path: str) -> str | None:
    """The path of the first non-finite float under `value` (1e999 parses as inf), else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite(item, f"{path}.{key}" if isinstance(key, str) else f"{path}[{key}]")
        if found:
            return found
    return None


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[int | float]:
    return (isinstance(value, (int, float))) and not isinstance(value, bool)


def _check_types(data: dict[str, Any]) -> None:
    """The fields the host computes with have the types and signs the schema gives them."""
    if not isinstance(data.get("status"), str) or not data["status"]:
        raise RunnerReportError("runner JSON has no status string")
    minor = data.get("schema_minor", 0)
    if not (_is_int(minor) and minor >= 0):
        raise RunnerReportError(f"runner JSON schema_minor is {minor!r}, not a non-negative integer")
    if data.get("error") is not None and not isinstance(data["error"], str):
        raise RunnerReportError("runner JSON error is not a string")
    for key in ("iterations_ns", "planned_buffers_bytes"):
        values = data.get(key, [])
        if not isinstance(values, list) or not all(_is_int(v) and v >= 0 for v in values):
            raise RunnerReportError(f"runner JSON {key} is not a list of non-negative integers")
    for key in ("program_load_ms", "method_load_ms", "first_inference_ms", "peak_rss_kb"):
        value = data.get(key)
        if value is not None and not (_is_number(value) and value >= 0):
            raise RunnerReportError(f"runner JSON {key} is {value!r}, not a non-negative number")
    for key in ("threads", "warmup_iterations"):
        value = data.get(key, 0)
        if value is not None and not (_is_int(value) and value >= 0):
            raise RunnerReportError(f"runner JSON {key} is {value!r}, not a non-negative integer")
    for key in ("rss_kb", "timeline_ns", "samples", "inputs"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise RunnerReportError(f"runner JSON {key} is not an object")
    _check_batch(data)
    _check_generation(data.get("generation"))
    outputs = data.get("outputs", [])
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        raise RunnerReportError("runner JSON outputs is not a list of objects")


def _check_batch(data: dict[str, Any]) -> None:
    """schema_minor 3's calibrated samples: calls per batch ≥ 1, raw batches that agree with the
    per-call figures (one per sample, each ≈ batch / calls). Older runners have no `batch`: one call."""
    batch = data.get("batch")
    if batch is None:
        if data.get("schema_minor", 0) >= 3 and data.get("status") == RunnerStatus.OK:
            raise RunnerReportError("runner JSON schema_minor 3 says ok but has no batch object")
        return
    if not isinstance(batch, dict):
        raise RunnerReportError("runner JSON batch is not an object")
    calls, raw = batch.get("calls"), batch.get("batches_ns", [])
    if not (_is_int(calls) and calls >= 1):
        raise RunnerReportError(f"runner JSON batch.calls is {calls!r}, not a positive integer")
    if batch.get("min_ms") is not None and not (_is_number(batch["min_ms"]) and batch["min_ms"] >= 0):
        raise RunnerReportError(f"runner JSON batch.min_ms is {batch['min_ms']!r}, not a non-negative number")
    if not isinstance(raw, list) or not all(_is_int(v) and v >= 0 for v in raw):
        raise RunnerReportError("runner JSON batch.batches_ns is not a list of non-negative integers")
    trials = batch.get("calibration", [])
    if not isinstance(trials, list) or not all(
        isinstance(t, list) and len(t) == 2 and all(_is_int(v) and v >= 0 for v in t) for t in trials
    ):
        raise RunnerReportError("runner JSON batch.calibration is not a list of [calls, ns] pairs")
    per_call = data.get("iterations_ns", [])
    if calls > 1 and data.get("status") == RunnerStatus.OK:
        if len(raw) != len(per_call):
            raise RunnerReportError(
                f"runner JSON has {len(raw)} batches for {len(per_call)} samples of {calls} calls each"
            )
        if any(abs(b - c * calls) > calls for b, c in zip(raw, per_call, strict=True)):
            raise RunnerReportError("runner JSON iterations_ns are not its batches_ns divided by batch.calls")


def _check_generation(generation: Any) -> None:
    """schema_minor 4's generation object: counts, per-repetition prefill and decode times that
    agree with the counts, and the predicted ids (one after the prefill, one per decode step)."""
    if generation is None:
        return
    if not isinstance(generation, dict):
        raise RunnerReportError("runner JSON generation is not an object")
    for key in ("prompt_tokens", "decode_tokens", "context"):
        if not (_is_int(generation.get(key)) and generation[key] >= 0):
            raise RunnerReportError(f"runner JSON generation.{key} is {generation.get(key)!r}, not a count")
    prefill, decode, ids = generation.get("prefill_ns"), generation.get("decode_ns"), generation.get("generated_ids")
    if not isinstance(prefill, list) or not all(_is_int(v) and v >= 0 for v in prefill):
        raise RunnerReportError("runner JSON generation.prefill_ns is not a list of non-negative integers")
    steps = generation["decode_tokens"]
    if (
        not isinstance(decode, list)
        or len(decode) != len(prefill)
        or not all(
            isinstance(row, list) and len(row) == steps and all(_is_int(v) and v >= 0 for v in row) for row in decode
        )
    ):
        raise RunnerReportError(f"runner JSON generation.decode_ns is not {len(prefill)} lists of {steps} times")
    if not isinstance(ids, list) or not all(_is_int(v) and v >= 0 for v in ids) or (ids and len(ids) != steps + 1):
        raise RunnerReportError(f"runner JSON generation.generated_ids is not {steps + 1} token ids")


def load_runner_json(text: str) -> dict[str, Any]:
    """Parse and check the runner's JSON; raises RunnerReportError naming the first problem."""
    if not text.strip():
        raise RunnerReportError("runner JSON is empty")
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        problem = "truncated" if exc.pos >= len(text.rstrip()) else "not valid JSON"
        where = f"line {exc.lineno} column {exc.colno}"
        raise RunnerReportError(f"runner JSON is {problem} ({exc.msg} at {where})") from exc
    if not isinstance(data, dict):
        raise RunnerReportError(f"runner JSON is a {type(data).__name__}, not an object")
    version = data.get("schema_version")
    if version != RUNNER_SCHEMA_VERSION:
        raise RunnerReportError(
            f"runner JSON schema_version {version!r} is not {RUNNER_SCHEMA_VERSION}: rebuild the runner"
        )
    bad = _non_finite(data, "")
    if bad:
        raise RunnerReportError(f"runner JSON holds a non-finite number at {bad.lstrip('.')}")
    _check_types(data)
    if data["status"] == RunnerStatus.OK:
        if not data.get("iterations_ns"):
            raise RunnerReportError("runner JSON says ok but holds no timed iterations")
        if data.get("error"):
            raise RunnerReportError(f"runner JSON says ok but also reports an error: {data['error']}")
    return data
