"""A runner's job and the report it hands back, whichever device ran it.

A device takes a `BenchJob` (a .pte, its input sets, loop settings) and returns a
`RunnerReport`: the raw readings the native runner prints as JSON (schema in
device_runner/README.md). The host computes every statistic from those raw readings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocketbench.runner.schema import RUNNER_SCHEMA_VERSION, RunnerReportError, RunnerStatus, load_runner_json

__all__ = ["RUNNER_SCHEMA_VERSION", "RunnerReportError", "parse_runner_report"]


@dataclass(frozen=True)
class BenchJob:
    """One measurement request: run `pte` with the input sets in `inputs` (a PBTF file)."""

    pte: Path
    inputs: Path
    warmup: int = 5
    iterations: int = 50
    min_seconds: float = 0.0
    threads: int = 0  # 0: the runtime's default
    cores: str = ""  # a phone's cores to pin the runner to (prime | big | all; "": the device's default)
    # Calibrated samples: each sample a batch of calls lasting at least this long (0: single calls).
    batch_min_ms: float = 0.0
    method: str = "forward"
    outputs: Path | None = None  # where the device's output sets are written back (PBTF)
    etdump: Path | None = None  # profiling runs: where the device's ETDump trace is written back
    # Native runner only: files its sampler thread reads (device paths), how often, and the
    # idle window before the loop (device_runner/README.md, "Sampling").
    sample_files: tuple[str, ...] = ()
    sample_interval_ms: int = 0
    idle_baseline_s: float = 0.0
    # Generation mode (device_runner/README.md, "Generation mode"): (prompt P, decode N) tokens
    # from the token stream in `inputs`; teacher-forced decodes the stream, not the argmax.
    generate: tuple[int, int] | None = None
    teacher_forced: bool = False


@dataclass(frozen=True)
class RunnerSamples:
    """What the runner's sampler thread read, one entry per tick (steady_clock ns)."""

    interval_ms: int
    files: list[str]
    errors: dict[str, str]  # file → why it could not be read
    t_ns: list[int]
    values: list[list[str | None]]  # [sample][file]; None: unreadable at that tick
    rss_kb: list[int | None]
    swap_kb: list[int | None]
    hwm_kb: list[int | None]

    def column(self, path: str) -> list[str | None]:
        """Every reading of one file, in sample order."""
        i = self.files.index(path)
        return [row[i] for row in self.values]


@dataclass(frozen=True)
class RunnerReport:
    """Raw readings of one runner process (times in ms unless the name says ns)."""

    status: str  # a RunnerStatus (a str, so the JSON's text compares equal)
    error: str | None
    backend: str  # "native-runner" or "python-runtime"
    runtime_version: str
    threads: int
    program_load_ms: float | None
    method_load_ms: float | None
    first_inference_ms: float | None
    iterations_ns: list[int]
    rss_kb_before_load: int | None
    rss_kb_after_load: int | None
    rss_kb_after_loop: int | None
    peak_rss_kb: int | None
    planned_buffers_bytes: list[int]
    output_digests: list[str]
    # schema 1.1: the idle window and the loop on the samples' clock, and the samples.
    idle_window_ns: tuple[int, int] | None = None
    loop_window_ns: tuple[int, int] | None = None
    samples: RunnerSamples | None = None
    # schema 1.3: calls per timed sample (iterations_ns are per call: batch / calls) and the raw
    # batch times (empty when calls == 1: iterations_ns are then the raw samples).
    batch_calls: int = 1
    batches_ns: list[int] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == RunnerStatus.OK

    @property
    def load_ms(self) -> float | None:
        if self.program_load_ms is None or self.method_load_ms is None:
            return None
        return self.program_load_ms + self.method_load_ms


def parse_runner_report(text: str, backend: str = "native-runner") -> RunnerReport:
    """Parse the runner's JSON (pure: text in, report out); malformed text raises RunnerReportError."""
    data = load_runner_json(text)
    rss = data.get("rss_kb") or {}
    return RunnerReport(
        status=str(data.get("status", "")),
        error=data.get("error"),
        backend=backend,
        runtime_version=str(data.get("runtime", "")),
        threads=int(data.get("threads") or 0),
        program_load_ms=data.get("program_load_ms"),
        method_load_ms=data.get("method_load_ms"),
        first_inference_ms=data.get("first_inference_ms"),
        iterations_ns=[int(v) for v in data.get("iterations_ns") or []],
        rss_kb_before_load=rss.get("before_load"),
        rss_kb_after_load=rss.get("after_load"),
        rss_kb_after_loop=rss.get("after_loop"),
        peak_rss_kb=data.get("peak_rss_kb"),
        planned_buffers_bytes=[int(v) for v in data.get("planned_buffers_bytes") or []],
        output_digests=[str(o.get("sha256", "")) for o in data.get("outputs") or []],
        idle_window_ns=_window(data.get("timeline_ns"), "idle"),
        loop_window_ns=_window(data.get("timeline_ns"), "loop"),
        samples=_samples(data.get("samples")),
        batch_calls=int((data.get("batch") or {}).get("calls") or 1),
        batches_ns=[int(v) for v in (data.get("batch") or {}).get("batches_ns") or []],
        raw=data,
    )


def _window(timeline: dict[str, Any] | None, name: str) -> tuple[int, int] | None:
    start, end = (timeline or {}).get(f"{name}_start"), (timeline or {}).get(f"{name}_end")
    return (int(start), int(end)) if start is not None and end is not None else None


def _samples(data: dict[str, Any] | None) -> RunnerSamples | None:
    if not data:
        return None
    return RunnerSamples(
        interval_ms=int(data.get("interval_ms") or 0),
        files=[str(f) for f in data.get("files") or []],
        errors={str(k): str(v) for k, v in (data.get("errors") or {}).items()},
        t_ns=[int(t) for t in data.get("t_ns") or []],
        values=[list(row) for row in data.get("values") or []],
        rss_kb=list(data.get("rss_kb") or []),
        swap_kb=list(data.get("swap_kb") or []),
        hwm_kb=list(data.get("hwm_kb") or []),
    )
