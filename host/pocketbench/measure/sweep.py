"""The sweep: every model × variant × device cell, measured and saved as it finishes.

Each cell is measured as `repetitions` fresh runner processes; the repetitions are interleaved
across the model's cells (fp32 int8 fp32 int8 …) so drift (heat, background load) hits every
variant alike. protocol.py does what happens around each process. The farm measures a cell's
repetitions back to back through `measure_artifact`, with the same protocol (its phones run in
parallel, each with nothing else to interleave).

A failure in one cell (unknown model or variant, a factory that raises, an export that fails,
a runner that crashes) becomes a row with its status and a one-line error; the other cells
still run, and nothing already measured is lost.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pocketbench.compress.pipeline import CompressionError
from pocketbench.compress.recipe import Recipe, parse_variant
from pocketbench.devices.base import Device, DeviceInfo
from pocketbench.errors import PocketbenchError, first_line
from pocketbench.measure.adaptive import TARGET, RepetitionPolicy, repeat_until_settled
from pocketbench.measure.fidelity import fidelity, input_dependence, untrained_fidelity_note
from pocketbench.measure.latency import latency_summary
from pocketbench.measure.protocol import (
    DeviceTelemetry,
    ProtocolSettings,
    Repetition,
    cell_columns,
    run_repetition,
    runner_columns,
)
from pocketbench.models.registry import ModelBundle, ModelSpec, resolve
from pocketbench.progress import FAILED, WARNED, Reporter, reporting_to
from pocketbench.results.store import PARTIAL, SCHEMA_VERSION, RunStore
from pocketbench.runner import tensorfile
from pocketbench.runner.report import BenchJob, RunnerReport

if TYPE_CHECKING:
    from pocketbench.lower.export import Artifact


@dataclass(frozen=True)
class BenchSettings:
    """How each cell is measured (stored in the run manifest)."""

    warmup: int = 5
    iterations: int = 50
    min_seconds: float = 0.0
    threads: int = 0
    # Fresh runner processes per cell; None: adaptive (adaptive.py) — at least 3, more until the
    # p50's 95 % CI half-width is within `ci_target` or the cell has spent `cell_budget_s`.
    repetitions: int | None = None
    ci_target: float = 0.02
    cell_budget_s: float = 15.0
    # Calibrated samples: each timed sample is a batch of calls lasting ≥ this (0: single calls).
    batch_min_ms: float = 1.0
    energy_window_s: float = 2.0
    allow_charging: bool = False
    cooldown_timeout_s: float = 120.0
    profile: bool = False  # one more runner process per cell with ETDump on (profile.py)
    profile_iterations: int = 20

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise PocketbenchError("--iterations must be at least 1")
        if self.profile_iterations < 1:
            raise PocketbenchError("--profile-iterations must be at least 1")
        if not 0 <= self.batch_min_ms <= 10_000:
            raise PocketbenchError("--batch-min-ms must be in [0, 10000] ms (0: time single calls)")
        self.policy  # noqa: B018 (validates the repetition settings)
        if self.warmup < 0:
            raise PocketbenchError("--warmup cannot be negative")
        self.protocol  # noqa: B018 (validates the protocol settings)

    @property
    def policy(self) -> RepetitionPolicy:
        return RepetitionPolicy(self.repetitions, ci_target=self.ci_target, budget_s=self.cell_budget_s)

    @property
    def protocol(self) -> ProtocolSettings:
        return ProtocolSettings(
            self.repetitions or 1, self.energy_window_s, self.allow_charging, self.cooldown_timeout_s
        )


@dataclass
class ModelContext:
    """A loaded model with its held-out inputs on disk and its fp32 eager reference outputs."""

    spec: ModelSpec
    bundle: ModelBundle
    inputs_file: Path
    reference: list[np.ndarray]

    @property
    def input_dependence(self) -> float:
        """How much the fp32 outputs depend on the input (measure.input_dependence)."""
        return input_dependence(self.reference)


def check_names(models: Sequence[str], variants: Sequence[str | Recipe]) -> None:
    """Resolve every model and parse every variant before any device work: one error lists
    every bad name (a factory that raises when called is still a failed row, found later)."""
    problems = []
    for name in dict.fromkeys(models):
        try:
            resolve(name)
        except PocketbenchError as exc:
            problems.append(first_line(exc))
    for variant in dict.fromkeys(v for v in variants if isinstance(v, str)):
        try:
            parse_variant(variant)
        except PocketbenchError as exc:
            problems.append(first_line(exc))
    if problems:
        raise PocketbenchError(f"{len(problems)} bad name(s), nothing was run: " + " | ".join(problems))


def run_sweep(
    models: Sequence[str],
    variants: Sequence[str | Recipe],
    devices: Sequence[Device],
    settings: BenchSettings,
    store: RunStore,
    reporter: Reporter | None = None,
) -> int:
    """Measure every cell into `store`; returns the number of failed cells.

    A variant is a name made of tokens (`prune50+int8`) or a ready Recipe (from a sweep file).
    """
    reporter = reporter or Reporter()
    infos = {d.device_id: _probe(d, reporter) for d in devices}
    store.record_devices({device_id: asdict(info) if info else None for device_id, info in infos.items()})
    telemetry = {d.device_id: probe_telemetry(d, reporter) for d in devices}
    failures = 0
    with tempfile.TemporaryDirectory(prefix="pocketbench-sweep-") as scratch:
        for model_name in models:
            try:
                context = load_model(model_name, Path(scratch), reporter)
            except PocketbenchError as exc:
                context, model_error = None, str(exc)
            cells: list[_Cell] = []
            for variant in variants:
                name = variant.name if isinstance(variant, Recipe) else variant
                for device in devices:
                    base = base_row(store.run_id, model_name, name, device.device_id, infos[device.device_id])
                    if context is None:
                        row = failed_row(base, "model_error", model_error)
                    else:
                        row, artifact = prepare_variant(context, variant, base, reporter)
                        if artifact is not None:
                            cell = _new_cell(context, artifact, device, settings, row, Path(scratch))
                            cell.progress = store.save_progress
                            cells.append(cell)
                            continue
                    failures += _finish(row, store, reporter)
            _repeat_cells([c for c in cells if c.failure is None], telemetry, settings, reporter)
            if settings.profile:
                for cell in [c for c in cells if c.failure is None]:
                    _profile(cell, settings, store, Path(scratch), reporter)
            for cell in cells:
                row = cell.failure or _cell_row(cell, telemetry[cell.device.device_id], settings.ci_target)
                failures += _finish(row, store, reporter)
    return failures


def _finish(row: dict[str, Any], store: RunStore, reporter: Reporter) -> int:
    """Write a finished row; 1 when it failed (and say so), else 0."""
    if row["status"] != "ok":
        reporter.note(f"{row['model']} {row['variant']} on {row['device']}: {row['error']}", FAILED)
    store.write_cell(row)
    return int(row["status"] != "ok")


def probe_telemetry(device: Device, reporter: Reporter) -> DeviceTelemetry:
    """The device's power, thermal and frequency sources, read once; none (with why) if it has no shell."""
    with reporter.status(f"reading {device.device_id}'s power, thermal and frequency sources"):
        try:
            return DeviceTelemetry.probe(device)
        except PocketbenchError as exc:
            reporter.note(f"device {device.device_id}: no telemetry ({exc})", WARNED)
            return DeviceTelemetry.without_shell(str(exc))


def _probe(device: Device, reporter: Reporter) -> DeviceInfo | None:
    try:
        return device.info()
    except PocketbenchError as exc:
        reporter.note(f"device {device.device_id}: {exc}", FAILED)
        return None


def load_model(name: str, scratch: Path, reporter: Reporter) -> ModelContext:
    import torch

    with reporter.status(f"loading {name}"), reporting_to(reporter):  # a built-in may train here, once
        spec = resolve(name)
        bundle = spec.load()
    if not bundle.eval_inputs:
        raise PocketbenchError(f"model {name!r}: its factory gave no eval_inputs to measure with")
    inputs_file = scratch / f"{len(list(scratch.iterdir()))}-inputs.pbtf"
    tensorfile.write(inputs_file, [[t.numpy() for t in inputs] for inputs in bundle.eval_inputs])
    reference = []
    with torch.no_grad():
        for inputs in reporter.track(bundle.eval_inputs, f"fp32 reference outputs of {name}"):
            reference.append(_first_output(bundle.module(*inputs)).numpy())
    return ModelContext(spec, bundle, inputs_file, reference)


def prepare_variant(
    context: ModelContext, variant: str | Recipe, row: dict[str, Any], reporter: Reporter
) -> tuple[dict[str, Any], Artifact | None]:
    """Compress and lower one variant (or reuse the cached `.pte`): the row gains the recipe
    and artifact columns, or becomes a failure row and no artifact is returned."""
    from pocketbench.lower.export import build_artifact

    try:
        recipe = variant if isinstance(variant, Recipe) else parse_variant(variant)
    except PocketbenchError as exc:
        return failed_row(row, "recipe_error", str(exc)), None
    row = {**row, "recipe": recipe.to_json()}
    try:
        artifact = build_artifact(context.spec, context.bundle, recipe, reporter)
    except CompressionError as exc:  # names the step: `channel_prune: …`
        return failed_row(row, "compress_error", str(exc)), None
    except PocketbenchError as exc:
        return failed_row(row, "export_error", str(exc)), None
    except Exception as exc:  # a compression step failing in torch: keep the sweep going
        return failed_row(row, "export_error", f"{context.spec.name} {recipe.name}: {type(exc).__name__}: {exc}"), None
    row.update(_artifact_columns(artifact.manifest, artifact.reused))
    return row, artifact


def measure_artifact(
    context: ModelContext,
    artifact: Artifact,
    device: Device,
    telemetry: DeviceTelemetry,
    settings: BenchSettings,
    row: dict[str, Any],
    scratch: Path,
    reporter: Reporter,
    progress: Callable[[dict[str, Any], str | None], None] | None = None,
) -> dict[str, Any]:
    """Measure a built `.pte` on `device`: its repetitions back to back through the bench protocol
    (cool-down, sampling, statistics), then accuracy and fidelity from the outputs the device
    computed. Needs no torch export, so devices can run it in parallel. `progress` persists the
    row so far after each repetition."""
    cell = _new_cell(context, artifact, device, settings, row, scratch)
    cell.progress = progress
    _repeat_cells([cell], {device.device_id: telemetry}, settings, reporter)
    return cell.failure or _cell_row(cell, telemetry, settings.ci_target)


def report_row(
    context: ModelContext, row: dict[str, Any], report: RunnerReport, outputs_file: Path, repetitions: int = 1
) -> dict[str, Any]:
    """A cell's row from the runner's report and the output sets the device wrote — the same
    for every backend that gets a runner report back (local, adb, AWS Device Farm)."""
    row = {**row, **report_columns(report), "repetitions": repetitions}
    if not report.ok:
        return failed_row(row, report.status, report.error or report.status)
    row.update(_quality_columns(context, outputs_file))
    return row


@dataclass
class _Cell:
    """A cell whose artifact is built, collecting one runner process per repetition."""

    row: dict[str, Any]
    device: Device
    job: BenchJob
    outputs_file: Path
    context: ModelContext
    etrecord: Path | None = None
    repetitions: list[Repetition] = field(default_factory=list)
    failure: dict[str, Any] | None = None
    # Persists the cell's row so far after each repetition (RunStore.save_progress); None: not kept.
    progress: Callable[[dict[str, Any], str | None], None] | None = None
    stopped: str | None = None  # why it stopped adding processes (adaptive.py), once it has

    def groups(self) -> list[list[float]]:
        """Each finished process's per-call samples (ms)."""
        return [[ns / 1e6 for ns in r.report.iterations_ns] for r in self.repetitions]


def _repeat_cells(
    cells: list[_Cell], telemetry: dict[str, DeviceTelemetry], settings: BenchSettings, reporter: Reporter
) -> None:
    """Runner processes for `cells`, one per cell per round (interleaved), as many as the
    repetition policy asks for each; every cell then knows why it stopped."""

    def measure(cell: _Cell, repetition: int) -> bool:
        _repeat(cell, repetition, telemetry[cell.device.device_id], settings, reporter)
        return cell.failure is None

    for entry in repeat_until_settled(cells, measure, _Cell.groups, settings.policy):
        entry.cell.stopped = entry.stopped


def _new_cell(
    context: ModelContext,
    artifact: Artifact,
    device: Device,
    settings: BenchSettings,
    row: dict[str, Any],
    scratch: Path,
) -> _Cell:
    """A built variant on one device, ready for its interleaved repetitions."""
    outputs = _outputs_file(artifact, device, row, scratch)
    return _Cell(row, device, _job(context, artifact, settings), outputs, context, artifact.etrecord)


def _job(context: ModelContext, artifact: Artifact, settings: BenchSettings) -> BenchJob:
    return BenchJob(
        pte=artifact.path,
        inputs=context.inputs_file,
        warmup=settings.warmup,
        iterations=settings.iterations,
        min_seconds=settings.min_seconds,
        threads=settings.threads,
        batch_min_ms=settings.batch_min_ms,
    )


def _outputs_file(artifact: Artifact, device: Device, row: dict[str, Any], scratch: Path) -> Path:
    variant = artifact.manifest["variant"]
    return scratch / f"outputs-{row['model']}-{variant}-{device.device_id}.pbtf".replace("/", "_")


def _repeat(
    cell: _Cell, repetition: int, telemetry: DeviceTelemetry, settings: BenchSettings, reporter: Reporter
) -> None:
    """One more runner process for `cell` (the first also writes the outputs for fidelity); the
    repetitions so far are persisted at once. A failure after some repetitions keeps them: the
    cell becomes `partial`, with the reason."""
    job = replace(cell.job, outputs=cell.outputs_file) if not cell.repetitions else cell.job
    label = f"{cell.row['model']} {cell.row['variant']} on {cell.device.device_id}"
    total = settings.repetitions
    of = f"{repetition + 1}/{total}" if total else f"process {repetition + 1}, until ±{100 * settings.ci_target:g} %"
    with reporter.status(f"measuring {label} ({of})"):
        try:
            result = run_repetition(cell.device, job, telemetry, settings.protocol, reporter)
        except PocketbenchError as exc:
            _fail(cell, "device_error", str(exc), telemetry, total)
            return
        except Exception as exc:  # a transport library's own error: the cell stops, what it measured stays
            _fail(cell, "device_error", f"{type(exc).__name__}: {first_line(exc)}", telemetry, total)
            return
    if not result.report.ok:
        error = result.report.error or result.report.status
        if cell.repetitions:
            _fail(cell, result.report.status, error, telemetry, total)
        else:
            cell.failure = failed_row(
                {**cell.row, **cell_columns([result], telemetry.energy)}, result.report.status, error
            )
        return
    cell.repetitions.append(result)
    if cell.progress is not None:  # all done: the row as it will be saved, should the run die first
        done = len(cell.repetitions)
        if total:
            reason = f"interrupted after {done} of {total} repetitions" if done < total else None
        else:  # adaptive: whether another process was due is decided after this save
            reason = f"interrupted after {done} repetition(s) (adaptive: the p50 had not yet settled)"
        cell.progress(_cell_row(cell, telemetry), reason)


def _fail(cell: _Cell, status: str, error: str, telemetry: DeviceTelemetry, total: int | None) -> None:
    """The cell stops here: a failed row, or a `partial` one keeping the repetitions it finished."""
    if not cell.repetitions:
        cell.failure = failed_row(cell.row, status, error)
        return
    done = f"{len(cell.repetitions)} of {total}" if total else f"{len(cell.repetitions)}"
    reason = f"{done} repetitions, then {status}: {error}"
    cell.failure = failed_row(_cell_row(cell, telemetry), PARTIAL, reason)


def _profile(cell: _Cell, settings: BenchSettings, store: RunStore, scratch: Path, reporter: Reporter) -> None:
    """One more runner process with ETDump on, apart from the timed repetitions (the tracer slows
    every op a little). A cell that cannot be profiled keeps its measurement and says why."""
    from pocketbench.measure.profile import read_trace, summarize

    model, variant, device = cell.row["model"], cell.row["variant"], cell.device.device_id
    trace = scratch / f"trace-{len(list(scratch.iterdir()))}.etdp"
    job = replace(
        cell.job, warmup=2, iterations=settings.profile_iterations, min_seconds=0.0, batch_min_ms=0.0, etdump=trace
    )
    with reporter.status(f"profiling {model} {variant} on {device} (ETDump)"):
        try:
            report = cell.device.benchmark(job)
            if not report.ok:
                raise PocketbenchError(report.error or report.status)
            events = read_trace(trace, cell.etrecord)
            saved = store.write_profile(model, variant, device, events, trace)
        except Exception as exc:  # the Inspector can fail in its own ways; the cell's numbers stand
            cell.row["profile_note"] = f"not profiled: {first_line(exc)}"
            reporter.note(f"{model} {variant} on {device}: {cell.row['profile_note']}", WARNED)
            return
    summary = summarize(events)
    cell.row.update(
        profile_execute_ms=summary.execute_ms,
        profile_delegated_ms=summary.delegated_ms,
        profile_outside_ms=summary.outside_ms,
        profile_trace=saved,
    )


def _cell_row(cell: _Cell, telemetry: DeviceTelemetry, ci_target: float | None = None) -> dict[str, Any]:
    row = {**cell.row, **cell_columns(cell.repetitions, telemetry.energy)}
    if cell.stopped is not None:
        half = row.get("latency_p50_ci_halfwidth")
        row.update(
            repetitions_stop=cell.stopped,
            repetitions_target_met=cell.stopped == TARGET
            or (ci_target is not None and half is not None and half <= ci_target),
        )
    row.update(_quality_columns(cell.context, cell.outputs_file))
    return row


def base_row(run_id: str, model: str, variant: str, device: str, info: DeviceInfo | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": run_id,
        "model": model,
        "variant": variant,
        "device": device,
        "status": "ok",
        "error": None,
        "started_at": datetime.now(UTC).isoformat(),
        "schema_version": SCHEMA_VERSION,
    }
    if info is not None:
        row.update(
            device_kind=info.kind,
            device_model=info.model,
            device_abi=info.abi,
            device_os=info.os,
            device_cpu=info.cpu,
            device_cpu_features=info.extra.get("cpu_features"),
            device_emulated=info.emulated,
            device_emulation=info.emulation or None,
        )
        # Whatever else the device says about itself (a phone's serial, SoC, clusters, battery).
        for key, value in info.extra.items():
            row.setdefault(f"device_{key}", value)
    return row


def failed_row(row: dict[str, Any], status: str, error: str) -> dict[str, Any]:
    return {**row, "status": status, "error": error.splitlines()[0] if error else status}


def _artifact_columns(manifest: dict[str, Any], reused: bool) -> dict[str, Any]:
    delegation = manifest["delegation"]
    return {
        "size_bytes": manifest["size_bytes"],
        "planned_memory_bytes": sum(manifest["planned_buffers_bytes"]),
        "delegated_fraction": delegation["delegated_fraction"],
        "ops_outside_delegate": ", ".join(f"{op}×{n}" for op, n in delegation["ops_outside"].items()) or None,
        "delegation_note": delegation.get("outside_explained"),
        "artifact_sha256": manifest["sha256"],
        "artifact_reused": reused,
        "compress_seconds": manifest["compress_seconds"],
        "export_seconds": manifest["export_seconds"],
        "size_zipped_bytes": manifest.get("size_zipped_bytes"),
        **_compression_columns(manifest.get("compression", {})),
    }


def _compression_columns(stats: dict[str, Any]) -> dict[str, Any]:
    """Params, MACs, sparsity and per-layer int8 error the compression steps measured."""
    layer_sqnr = stats.get("layer_sqnr_db") or {}
    notes = []
    if stats.get("fp32_layers"):
        notes.append("fp32 layers: " + ", ".join(stats["fp32_layers"]))
    if stats.get("unquantized_layers"):
        notes.append(
            "left in fp32 (the XNNPACK int8 quantizer takes conv and linear layers only): "
            + ", ".join(stats["unquantized_layers"])
        )
    if stats.get("channel_pruned_layers"):
        notes.append("channel-pruned only: " + ", ".join(stats["channel_pruned_layers"]))
    return {
        "params": stats.get("params"),
        "macs": stats.get("macs"),
        "sparsity": stats.get("sparsity"),
        "layer_sqnr_min_db": min(layer_sqnr.values()) if layer_sqnr else float("nan"),
        "layer_sqnr_db": json.dumps(layer_sqnr),  # "{}" without a Quantize step: one dtype per column
        "compression_note": "; ".join(notes),
    }


def report_columns(report: RunnerReport) -> dict[str, Any]:
    columns = latency_summary(report.iterations_ns)
    columns.update(
        latency_samples_ms=[ns / 1e6 for ns in report.iterations_ns],
        iterations=len(report.iterations_ns),
        peak_rss_kb=report.peak_rss_kb,
    )
    columns.update(runner_columns([report]))
    return columns


def _quality_columns(context: ModelContext, outputs_file: Path) -> dict[str, Any]:
    """Accuracy and fidelity from the outputs the device itself computed."""
    import torch

    try:
        output_sets = tensorfile.read(outputs_file)
    except (OSError, tensorfile.TensorFileError) as exc:  # the device's file: its timings still stand
        return {"status": "bad_outputs", "error": f"the outputs the device wrote are unusable: {first_line(exc)}"}
    first_outputs = [outputs[0] for outputs in output_sets]
    columns: dict[str, Any] = dict(fidelity(context.reference, first_outputs))
    columns["output_input_dependence"] = context.input_dependence
    columns["fidelity_note"] = untrained_fidelity_note(context.input_dependence, context.bundle.score is not None)
    if context.bundle.score is not None:
        columns["accuracy"] = context.bundle.score([torch.from_numpy(o) for o in first_outputs])
    return columns


def _first_output(output: Any) -> Any:
    return output[0] if isinstance(output, (tuple, list)) else output
