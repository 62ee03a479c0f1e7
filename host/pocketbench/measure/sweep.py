"""The sweep: every model × variant × device cell, measured and saved as it finishes.

Each cell is measured as `repetitions` fresh runner processes; the repetitions are interleaved
across the model's cells (fp32 int8 fp32 int8 …) so drift (heat, background load) hits every
variant alike. cell.py measures a cell (protocol.py does what happens around each process); the
farm measures a cell's repetitions back to back through `cell.measure_cell`, with the same
protocol (its phones run in parallel, each with nothing else to interleave).

A failure in one cell (unknown model or variant, a factory that raises, an export that fails,
a runner that crashes) becomes a row with its status and a one-line error; the other cells
still run, and nothing already measured is lost.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from pocketbench.compress.recipe import Recipe
from pocketbench.devices.base import Device, DeviceInfo
from pocketbench.errors import PocketbenchError, first_line
from pocketbench.measure.cell import Cell, finished_row, new_cell, probe_telemetry, repeat_cells
from pocketbench.measure.model import build_variant, load_model
from pocketbench.measure.rows import base_row, failed_row
from pocketbench.measure.settings import ProtocolSettings
from pocketbench.progress import FAILED, WARNED, Reporter
from pocketbench.results.cell_status import CellStatus
from pocketbench.results.store import RunStore
from pocketbench.runner.process import scratch_dir


def run_sweep(
    models: Sequence[str],
    variants: Sequence[str | Recipe],
    devices: Sequence[Device],
    settings: ProtocolSettings,
    store: RunStore,
    reporter: Reporter | None = None,
    skip: Collection[tuple[str, str, str]] = frozenset(),
) -> int:
    """Measure every cell into `store`; returns the number of failed cells.

    A variant is a name made of tokens (`prune50+int8`) or a ready Recipe (from a sweep file).
    Cells in `skip` (model, variant, device id) are left alone: a resumed run's complete ones
    (a model with none left to measure is not even loaded).
    """
    reporter = reporter or Reporter()
    infos = {d.device_id: _probe(d, reporter) for d in devices}
    store.record_devices({device_id: asdict(info) if info else None for device_id, info in infos.items()})
    telemetry = {d.device_id: probe_telemetry(d, reporter) for d in devices}
    failures = 0
    with scratch_dir("sweep") as scratch:
        for model_name in models:
            names = [v.name if isinstance(v, Recipe) else v for v in variants]
            if all((model_name, n, d.device_id) in skip for n in names for d in devices):
                continue
            try:
                generate = (settings.prompt_tokens, settings.decode_tokens)
                context = load_model(model_name, scratch, reporter, generate, settings.model_data)
            except PocketbenchError as exc:
                context, model_error = None, str(exc)
            cells: list[Cell] = []
            for variant in variants:
                name = variant.name if isinstance(variant, Recipe) else variant
                for device in devices:
                    if (model_name, name, device.device_id) in skip:
                        continue
                    base = base_row(store.run_id, model_name, name, device.device_id, infos[device.device_id])
                    if context is None:
                        row = failed_row(base, CellStatus.MODEL_ERROR, model_error)
                    else:
                        row, artifact = build_variant(context, variant, base, reporter)
                        if artifact is not None:
                            cell = new_cell(context, artifact, device, settings, row, scratch)
                            cell.progress = store.save_progress
                            cells.append(cell)
                            continue
                    failures += _finish(row, store, reporter)
            repeat_cells([c for c in cells if c.failure is None], telemetry, settings, reporter)
            if settings.profile:
                for cell in [c for c in cells if c.failure is None]:
                    _profile(cell, settings, store, scratch, reporter)
            for cell in cells:
                row = cell.failure or finished_row(cell, telemetry[cell.device.device_id], settings.ci_target)
                failures += _finish(row, store, reporter)
    return failures


def _finish(row: dict[str, Any], store: RunStore, reporter: Reporter) -> int:
    """Write a finished row; 1 when it failed (and say so), else 0."""
    if row["status"] != CellStatus.OK:
        reporter.note(f"{row['model']} {row['variant']} on {row['device']}: {row['error']}", FAILED)
    store.write_cell(row)
    return int(row["status"] != CellStatus.OK)


def _probe(device: Device, reporter: Reporter) -> DeviceInfo | None:
    try:
        return device.info()
    except PocketbenchError as exc:
        reporter.note(f"device {device.device_id}: {exc}", FAILED)
        return None


def _profile(cell: Cell, settings: ProtocolSettings, store: RunStore, scratch: Path, reporter: Reporter) -> None:
    """One more runner process with ETDump on, apart from the timed repetitions (the tracer slows
    every op a little). A cell that cannot be profiled keeps its measurement and says why."""
    from pocketbench.measure.etdump import read_trace, summarize

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
