"""The sweep: every model × variant × device cell, measured and saved as it finishes.

Each cell is measured as `repetitions` fresh runner processes; the repetitions are interleaved
across the model's cells (fp32 int8 fp32 int8 …) so drift (heat, background load) hits every
variant alike. protocol.py does what happens around each process.

A failure in one cell (unknown model or variant, a factory that raises, an export that fails,
a runner that crashes) becomes a row with its status and a one-line error; the other cells
still run, and nothing already measured is lost.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pocketbench import tensorfile
from pocketbench.compress.recipe import parse_variant
from pocketbench.devices.base import BenchJob, Device, DeviceInfo
from pocketbench.errors import PocketbenchError
from pocketbench.measure import fidelity
from pocketbench.progress import Reporter
from pocketbench.protocol import DeviceTelemetry, ProtocolSettings, Repetition, cell_columns, run_repetition
from pocketbench.registry import ModelBundle, ModelSpec, resolve
from pocketbench.results import SCHEMA_VERSION, RunStore


@dataclass(frozen=True)
class BenchSettings:
    """How each cell is measured (stored in the run manifest)."""

    warmup: int = 5
    iterations: int = 50
    min_seconds: float = 0.0
    threads: int = 0
    repetitions: int = 3
    energy_window_s: float = 2.0
    allow_charging: bool = False
    cooldown_timeout_s: float = 120.0

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise PocketbenchError("--iterations must be at least 1")
        if self.warmup < 0:
            raise PocketbenchError("--warmup cannot be negative")
        self.protocol  # noqa: B018 (validates the protocol settings)

    @property
    def protocol(self) -> ProtocolSettings:
        return ProtocolSettings(self.repetitions, self.energy_window_s, self.allow_charging, self.cooldown_timeout_s)


@dataclass
class _ModelContext:
    """A loaded model with its held-out inputs on disk and its fp32 eager reference outputs."""

    spec: ModelSpec
    bundle: ModelBundle
    inputs_file: Path
    reference: list[np.ndarray]


def run_sweep(
    models: Sequence[str],
    variants: Sequence[str],
    devices: Sequence[Device],
    settings: BenchSettings,
    store: RunStore,
    reporter: Reporter | None = None,
) -> int:
    """Measure every cell into `store`; returns the number of failed cells."""
    reporter = reporter or Reporter()
    infos = {d.device_id: _probe(d, reporter) for d in devices}
    store.record_devices({device_id: asdict(info) if info else None for device_id, info in infos.items()})
    telemetry = {d.device_id: _telemetry(d, reporter) for d in devices}
    failures = 0
    with tempfile.TemporaryDirectory(prefix="pocketbench-sweep-") as scratch:
        for model_name in models:
            try:
                context = _load_model(model_name, Path(scratch), reporter)
            except PocketbenchError as exc:
                context, model_error = None, str(exc)
            cells: list[_Cell] = []
            for variant in variants:
                for device in devices:
                    base = _base_row(store.run_id, model_name, variant, device.device_id, infos[device.device_id])
                    if context is None:
                        row = _failed(base, "model_error", model_error)
                    else:
                        row = _prepare_cell(context, variant, device, settings, base, Path(scratch), reporter)
                    if isinstance(row, _Cell):
                        cells.append(row)
                    else:
                        failures += _finish(row, store, reporter)
            for repetition in range(settings.repetitions):
                for cell in [c for c in cells if c.failure is None]:
                    _repeat(cell, repetition, telemetry[cell.device.device_id], settings, reporter)
            for cell in cells:
                row = cell.failure or _cell_row(context, cell, telemetry[cell.device.device_id])
                failures += _finish(row, store, reporter)
    return failures


def _finish(row: dict[str, Any], store: RunStore, reporter: Reporter) -> int:
    """Write a finished row; 1 when it failed (and say so), else 0."""
    if row["status"] != "ok":
        reporter.note(f"[red]✗[/] {row['model']} {row['variant']} on {row['device']}: {row['error']}")
    store.write_cell(row)
    return int(row["status"] != "ok")


def _telemetry(device: Device, reporter: Reporter) -> DeviceTelemetry:
    with reporter.status(f"reading {device.device_id}'s power, thermal and frequency sources"):
        try:
            return DeviceTelemetry.probe(device)
        except PocketbenchError as exc:
            reporter.note(f"[yellow]![/] device {device.device_id}: no telemetry ({exc})")
            return DeviceTelemetry.without_shell(str(exc))


def _probe(device: Device, reporter: Reporter) -> DeviceInfo | None:
    try:
        return device.info()
    except PocketbenchError as exc:
        reporter.note(f"[red]✗[/] device {device.device_id}: {exc}")
        return None


def _load_model(name: str, scratch: Path, reporter: Reporter) -> _ModelContext:
    import torch

    with reporter.status(f"loading {name}"):
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
    return _ModelContext(spec, bundle, inputs_file, reference)


@dataclass
class _Cell:
    """A cell whose artifact is built, collecting one runner process per repetition."""

    row: dict[str, Any]
    device: Device
    job: BenchJob
    outputs_file: Path
    repetitions: list[Repetition] = field(default_factory=list)
    failure: dict[str, Any] | None = None


def _prepare_cell(
    context: _ModelContext,
    variant: str,
    device: Device,
    settings: BenchSettings,
    row: dict[str, Any],
    scratch: Path,
    reporter: Reporter,
) -> _Cell | dict[str, Any]:
    """Build the cell's artifact; a failed row when that fails."""
    from pocketbench.export import build_artifact

    try:
        recipe = parse_variant(variant)
    except PocketbenchError as exc:
        return _failed(row, "recipe_error", str(exc))
    row["recipe"] = recipe.to_json()
    try:
        artifact = build_artifact(context.spec, context.bundle, recipe, reporter)
    except PocketbenchError as exc:
        return _failed(row, "export_error", str(exc))
    except Exception as exc:  # a compression step failing in torch: keep the sweep going
        return _failed(row, "export_error", f"{context.spec.name} {variant}: {type(exc).__name__}: {exc}")
    row.update(_artifact_columns(artifact.manifest, artifact.reused))
    outputs_file = scratch / f"outputs-{row['model']}-{recipe.name}-{device.device_id}.pbtf".replace("/", "_")
    job = BenchJob(
        pte=artifact.path,
        inputs=context.inputs_file,
        warmup=settings.warmup,
        iterations=settings.iterations,
        min_seconds=settings.min_seconds,
        threads=settings.threads,
    )
    return _Cell(row, device, job, outputs_file)


def _repeat(
    cell: _Cell, repetition: int, telemetry: DeviceTelemetry, settings: BenchSettings, reporter: Reporter
) -> None:
    """One more runner process for `cell` (the first also writes the outputs for fidelity)."""
    job = replace(cell.job, outputs=cell.outputs_file) if repetition == 0 else cell.job
    label = f"{cell.row['model']} {cell.row['variant']} on {cell.device.device_id}"
    with reporter.status(f"measuring {label} ({repetition + 1}/{settings.repetitions})"):
        try:
            result = run_repetition(cell.device, job, telemetry, settings.protocol, reporter)
        except PocketbenchError as exc:
            cell.failure = _failed(cell.row, "device_error", str(exc))
            return
    if not result.report.ok:
        failed = {**cell.row, **cell_columns([result], telemetry.energy)}
        cell.failure = _failed(failed, result.report.status, result.report.error or result.report.status)
        return
    cell.repetitions.append(result)


def _cell_row(context: _ModelContext | None, cell: _Cell, telemetry: DeviceTelemetry) -> dict[str, Any]:
    row = {**cell.row, **cell_columns(cell.repetitions, telemetry.energy)}
    if context is not None:
        row.update(_quality_columns(context, cell.outputs_file))
    return row


def _base_row(run_id: str, model: str, variant: str, device: str, info: DeviceInfo | None) -> dict[str, Any]:
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
        )
        # Whatever else the device says about itself (a phone's serial, SoC, clusters, battery).
        for key, value in info.extra.items():
            row.setdefault(f"device_{key}", value)
    return row


def _failed(row: dict[str, Any], status: str, error: str) -> dict[str, Any]:
    return {**row, "status": status, "error": error.splitlines()[0] if error else status}


def _artifact_columns(manifest: dict[str, Any], reused: bool) -> dict[str, Any]:
    delegation = manifest["delegation"]
    return {
        "size_bytes": manifest["size_bytes"],
        "planned_memory_bytes": sum(manifest["planned_buffers_bytes"]),
        "delegated_fraction": delegation["delegated_fraction"],
        "ops_outside_delegate": ", ".join(f"{op}×{n}" for op, n in delegation["ops_outside"].items()) or None,
        "artifact_sha256": manifest["sha256"],
        "artifact_reused": reused,
        "compress_seconds": manifest["compress_seconds"],
        "export_seconds": manifest["export_seconds"],
    }


def _quality_columns(context: _ModelContext, outputs_file: Path) -> dict[str, Any]:
    """Accuracy and fidelity from the outputs the device itself computed."""
    import torch

    output_sets = tensorfile.read(outputs_file)
    first_outputs = [outputs[0] for outputs in output_sets]
    columns: dict[str, Any] = dict(fidelity(context.reference, first_outputs))
    if context.bundle.score is not None:
        columns["accuracy"] = context.bundle.score([torch.from_numpy(o) for o in first_outputs])
    return columns


def _first_output(output: Any) -> Any:
    return output[0] if isinstance(output, (tuple, list)) else output
