"""Measuring a cell: a built variant on one device, as fresh runner processes (repetitions)
through the protocol, until the repetition policy is satisfied; a failure keeps what was measured."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pocketbench.devices.base import Device, resolve_threads
from pocketbench.errors import PocketbenchError, first_line
from pocketbench.measure.adaptive import repeat_until_settled
from pocketbench.measure.model import ModelContext, quality_columns
from pocketbench.measure.protocol import DeviceTelemetry, Repetition, run_repetition
from pocketbench.measure.rows import cell_columns, cell_row, cut_short, failed_row, generative_columns
from pocketbench.measure.settings import ProtocolSettings
from pocketbench.models.registry import GenerativeBundle
from pocketbench.progress import WARNED, Reporter
from pocketbench.results.cell_status import CellStatus
from pocketbench.runner.report import BenchJob
from pocketbench.telemetry.energy import EnergyPlan

if TYPE_CHECKING:
    from pocketbench.lower.export import Artifact


def probe_telemetry(device: Device, reporter: Reporter) -> DeviceTelemetry:
    """The device's power, thermal and frequency sources, read once; none (with why) if it has no shell."""
    with reporter.status(f"reading {device.device_id}'s power, thermal and frequency sources"):
        try:
            return DeviceTelemetry.probe(device)
        except PocketbenchError as exc:
            reporter.note(f"device {device.device_id}: no telemetry ({exc})", WARNED)
            return DeviceTelemetry.without_shell(str(exc))


def measure_cell(
    context: ModelContext,
    artifact: Artifact,
    device: Device,
    telemetry: DeviceTelemetry,
    settings: ProtocolSettings,
    row: dict[str, Any],
    scratch: Path,
    reporter: Reporter,
    progress: Callable[[dict[str, Any], str | None], None] | None = None,
) -> dict[str, Any]:
    """Measure a built `.pte` on `device`: its repetitions back to back through the bench protocol
    (cool-down, sampling, statistics), then accuracy and fidelity from the outputs the device
    computed. Needs no torch export, so devices can run it in parallel. `progress` persists the
    row so far after each repetition."""
    cell = new_cell(context, artifact, device, settings, row, scratch)
    cell.progress = progress
    repeat_cells([cell], {device.device_id: telemetry}, settings, reporter)
    return cell.failure or finished_row(cell, telemetry, settings.ci_target)


@dataclass
class Cell:
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


def repeat_cells(
    cells: list[Cell], telemetry: dict[str, DeviceTelemetry], settings: ProtocolSettings, reporter: Reporter
) -> None:
    """Runner processes for `cells`, one per cell per round (interleaved), as many as the
    repetition policy asks for each; every cell then knows why it stopped."""

    def measure(cell: Cell, repetition: int) -> bool:
        _repeat(cell, repetition, telemetry[cell.device.device_id], settings, reporter)
        return cell.failure is None

    for entry in repeat_until_settled(cells, measure, Cell.groups, settings.policy):
        entry.cell.stopped = entry.stopped


def new_cell(
    context: ModelContext,
    artifact: Artifact,
    device: Device,
    settings: ProtocolSettings,
    row: dict[str, Any],
    scratch: Path,
) -> Cell:
    """A built variant on one device, ready for its interleaved repetitions."""
    outputs = _outputs_file(artifact, device, row, scratch)
    threads, source, why = resolve_threads(settings.threads, device, settings.cores)
    row = {**row, "threads_source": source, "threads_note": why}
    job = replace(_job(context, artifact, settings, threads), cores=settings.cores or "")
    return Cell(row, device, job, outputs, context, artifact.etrecord)


def _job(context: ModelContext, artifact: Artifact, settings: ProtocolSettings, threads: int) -> BenchJob:
    if context.generation is not None:  # each decode step is one timed sample: no batching
        return BenchJob(
            pte=artifact.path,
            inputs=context.inputs_file,
            warmup=min(settings.warmup, 2),
            iterations=max(1, min(settings.iterations, 5)),
            min_seconds=settings.min_seconds,
            threads=threads,
            generate=(context.generation.prompt_tokens, context.generation.decode_tokens),
            teacher_forced=True,
        )
    return BenchJob(
        pte=artifact.path,
        inputs=context.inputs_file,
        warmup=settings.warmup,
        iterations=settings.iterations,
        min_seconds=settings.min_seconds,
        threads=threads,
        batch_min_ms=settings.batch_min_ms,
    )


def _outputs_file(artifact: Artifact, device: Device, row: dict[str, Any], scratch: Path) -> Path:
    variant = artifact.manifest["variant"]
    return scratch / f"outputs-{row['model']}-{variant}-{device.device_id}.pbtf".replace("/", "_")


def _repeat(
    cell: Cell, repetition: int, telemetry: DeviceTelemetry, settings: ProtocolSettings, reporter: Reporter
) -> None:
    """One more runner process for `cell` (the first also writes the outputs for fidelity); the
    repetitions so far are persisted at once. A failure after some repetitions keeps them: the
    cell becomes `partial`, with the reason."""
    first = not cell.repetitions and cell.context.generation is None  # generation writes no output sets
    job = replace(cell.job, outputs=cell.outputs_file) if first else cell.job
    label = f"{cell.row['model']} {cell.row['variant']} on {cell.device.device_id}"
    total = settings.repetitions
    of = f"{repetition + 1}/{total}" if total else f"process {repetition + 1}, until ±{100 * settings.ci_target:g} %"
    with reporter.status(f"measuring {label} ({of})"):
        try:
            result = run_repetition(cell.device, job, telemetry, settings, reporter)
        except PocketbenchError as exc:
            _fail(cell, CellStatus.DEVICE_ERROR, str(exc), telemetry, total)
            return
        except Exception as exc:  # a transport library's own error: the cell stops, what it measured stays
            _fail(cell, CellStatus.DEVICE_ERROR, f"{type(exc).__name__}: {first_line(exc)}", telemetry, total)
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
        cell.progress(finished_row(cell, telemetry), reason)


def _fail(cell: Cell, status: str, error: str, telemetry: DeviceTelemetry, total: int | None) -> None:
    """The cell stops here: a failed row, or a `partial` one keeping the repetitions it finished."""
    if not cell.repetitions:
        cell.failure = failed_row(cell.row, status, error)
        return
    reason = cut_short(len(cell.repetitions), total, status, error)
    cell.failure = failed_row(finished_row(cell, telemetry), CellStatus.PARTIAL, reason)


def finished_row(cell: Cell, telemetry: DeviceTelemetry, ci_target: float | None = None) -> dict[str, Any]:
    """The cell's row from the repetitions it has (measure/rows.py's one builder)."""
    return _measured_row(
        cell.context,
        cell.row,
        cell.repetitions,
        telemetry.energy,
        cell.outputs_file,
        cell.job.pte,
        cell.stopped,
        ci_target,
    )


def _measured_row(
    context: ModelContext,
    row: dict[str, Any],
    repetitions: Sequence[Repetition],
    energy_plan: EnergyPlan,
    outputs_file: Path,
    pte: Path,
    stopped: str | None = None,
    ci_target: float | None = None,
) -> dict[str, Any]:
    """`cell_row` with the quality of the model's kind: accuracy and fidelity from the outputs the
    device computed, or a generative cell's timings and perplexity (rows.generative_columns, from
    the row's latency)."""
    if context.generation is None:
        return cell_row(row, repetitions, energy_plan, quality_columns(context, outputs_file), stopped, ci_target)
    measured = cell_row(row, repetitions, energy_plan, {}, stopped, ci_target)
    assert isinstance(context.bundle, GenerativeBundle)
    reports = [r.report for r in repetitions]
    measured.update(generative_columns(context.generation, context.bundle, measured, reports, pte))
    return measured
