"""A farm run: every cell of the matrix, one worker thread per device, resumable by run id.

Artifacts are built once, up front, in this thread (torch export is neither fast nor
thread-safe) and shared by every device. Then each device gets a worker that holds the
device's lease, checks the device's health before each cell, retries a cell that failed on
the device, and quarantines a device that fails `quarantine_after` cells in a row: its
remaining cells become `not_run` rows carrying the reason, while the other devices finish.

Every attempt at a cell is saved as its own row (with its `attempt` number) the moment it
ends, so a run killed at any point resumes with the same `--run-id`: cells whose last attempt
is ok are skipped, failed or interrupted ones get a next attempt. Failed attempts stay in the
store; `latest_attempts` gives one row per cell, so nothing is ever counted twice.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pocketbench.devices.adb.lease import DeviceLease, LeaseHeld
from pocketbench.devices.adb.transport import ServerUnreachable
from pocketbench.devices.base import ClosableDevice, Device, DeviceInfo, LeasedDevice, RecoverableDevice
from pocketbench.errors import DeviceError, PocketbenchError, interruption
from pocketbench.farm.matrix import Cell, Matrix
from pocketbench.measure.cell import measure_cell, probe_telemetry
from pocketbench.measure.model import ModelContext, build_variant, load_model
from pocketbench.measure.protocol import DeviceTelemetry
from pocketbench.measure.rows import base_row, failed_row
from pocketbench.measure.settings import ProtocolSettings
from pocketbench.progress import FAILED, WARNED, Reporter
from pocketbench.results.cell_status import CellStatus
from pocketbench.results.compare import latest_attempts
from pocketbench.results.store import RunStore, read_cells
from pocketbench.runner.process import scratch_dir

# Failures that say the device (not the model) is in trouble: retried, and counted towards
# quarantine. A runner crash or a model failing to load is the model's doing: no retry.
# A partial cell (cut short after some repetitions) is retried too: its finished repetitions
# stay in the store as that attempt's row.
DEVICE_FAULTS = {
    CellStatus.DEVICE_ERROR,
    CellStatus.DEVICE_UNHEALTHY,
    CellStatus.TIMEOUT,
    CellStatus.INTERRUPTED,
    CellStatus.PARTIAL,
}


@dataclass
class FarmRun:
    """What a finished farm run leaves behind."""

    run_id: str
    folder: Path
    frame: pd.DataFrame
    skipped: int  # cells already complete from an earlier attempt of this run id
    quarantined: dict[str, str] = field(default_factory=dict)  # device name → reason


@dataclass
class _Prepared:
    """The device-independent half of every (model, variant): artifact columns or a failure."""

    contexts: dict[str, ModelContext | None]
    rows: dict[tuple[str, str], dict[str, Any]]
    artifacts: dict[tuple[str, str], Any]


def run_farm(
    matrix: Matrix,
    store: RunStore,
    devices: Mapping[str, Device],
    reporter: Reporter | None = None,
    lease_wait_s: float = 0.0,
    max_parallel: int | None = None,
    absent: Mapping[str, str] | None = None,
) -> FarmRun:
    """Measure every cell not yet complete in `store` (devices by matrix device name), on up to
    `max_parallel` devices at once (default: all). A device in `absent` (name → why) is
    quarantined from the start: its cells become `not_run` rows and the others still run."""
    from pocketbench.lower.export import versions

    reporter = reporter or Reporter()
    absent = dict(absent or {})
    missing = [d.name for d in matrix.devices if d.name not in devices and d.name not in absent]
    if missing:
        raise PocketbenchError(f"no device opened for {', '.join(missing)}: every matrix device needs one")
    _claim_manifest(store, matrix.to_config(), versions())
    cells = matrix.expand()
    before = latest_attempts(read_cells(store.folder))
    done = before[before["status"] == CellStatus.OK]
    complete = set(zip(done["model"], done["variant"], done["device"], strict=True))
    pending = [c for c in cells if (c.model, c.variant, c.device) not in complete]
    skipped = len(cells) - len(pending)
    if skipped:
        reporter.note(f"resuming {store.run_id}: {skipped} of {len(cells)} cells already complete")
    settings = matrix.run.protocol
    quarantined: dict[str, str] = {}
    specs = {d.name: d for d in matrix.devices}
    for cell in [c for c in pending if c.device in absent]:
        reason = f"{cell.device}: not attached ({absent[cell.device]})"
        row = failed_row(
            base_row(store.run_id, cell.model, cell.variant, cell.device, None), CellStatus.NOT_RUN, reason
        )
        spec = specs[cell.device]
        store.write_cell({**row, "device_serial": spec.serial, "device_host": spec.host or None})
        quarantined[cell.device] = absent[cell.device]
    pending = [c for c in pending if c.device not in absent]
    stop = threading.Event()  # set on Ctrl-C: each worker ends after its current repetition
    try:
        _measure_pending(
            matrix, store, devices, pending, settings, reporter, lease_wait_s, max_parallel, stop, quarantined
        )
    except BaseException as interrupted:
        if isinstance(interrupted, Exception):
            raise
        stop.set()
        store.mark_interrupted(interruption(interrupted))
        raise
    store.finish()
    return FarmRun(store.run_id, store.folder, latest_attempts(read_cells(store.folder)), skipped, quarantined)


def _measure_pending(
    matrix: Matrix,
    store: RunStore,
    devices: Mapping[str, Device],
    pending: list[Cell],
    settings: ProtocolSettings,
    reporter: Reporter,
    lease_wait_s: float,
    max_parallel: int | None,
    stop: threading.Event,
    quarantined: dict[str, str],
) -> None:
    """Every pending cell, one worker thread per device; the scratch folder goes on every exit."""
    with scratch_dir("farm") as scratch:
        prepared = _prepare(pending, scratch, reporter, (settings.prompt_tokens, settings.decode_tokens))
        workers = [
            _Worker(
                name,
                devices[name],
                [c for c in pending if c.device == name],
                matrix,
                settings,
                store,
                prepared,
                scratch,
                reporter,
                lease_wait_s,
                stop,
            )
            for name in dict.fromkeys(c.device for c in pending)
        ]
        pool = ThreadPoolExecutor(max_workers=max(1, max_parallel or len(workers)), thread_name_prefix="farm")
        try:
            for worker in pool.map(lambda w: w.run(), workers):
                if worker.quarantine_reason:
                    quarantined[worker.name] = worker.quarantine_reason
        finally:
            stop.set()  # normally all done; on Ctrl-C the workers stop after their current process
            pool.shutdown(wait=True, cancel_futures=True)


def open_farm_devices(matrix: Matrix, wait_s: float = 0.0) -> tuple[dict[str, Device], dict[str, str]]:
    """Open every matrix device, checking first that each phone is there (select.open_device):
    the ones that are, and the absent ones with why (their cells will not run; the others do)."""
    from pocketbench.devices.select import open_device

    devices, absent = {}, {}
    for spec in matrix.devices:
        try:
            devices[spec.name] = open_device(spec.serial, wait_s)
        except DeviceError as exc:
            absent[spec.name] = str(exc)
    return devices, absent


def _claim_manifest(store: RunStore, config: dict[str, Any], versions: dict[str, str]) -> None:
    """A new run writes its manifest; a resumed one must be the same matrix."""
    path = store.folder / "manifest.json"
    if path.exists():
        before = json.loads(path.read_text()).get("config")
        if before != json.loads(json.dumps(config)):
            raise PocketbenchError(
                f"run {store.run_id} was started with a different matrix: resume it with the same file, "
                "or give this run another id"
            )
        return
    store.write_manifest(config, versions)


def _prepare(cells: list[Cell], scratch: Path, reporter: Reporter, generate: tuple[int, int]) -> _Prepared:
    """Load each model once and build each (model, variant) artifact once, for all devices;
    a generative model for `generate` = (prompt, decode) tokens."""
    prepared = _Prepared({}, {}, {})
    for cell in cells:
        if cell.model not in prepared.contexts:
            try:
                prepared.contexts[cell.model] = load_model(cell.model, scratch, reporter, generate)
            except PocketbenchError as exc:
                prepared.contexts[cell.model] = None
                prepared.rows[(cell.model, "*")] = failed_row({}, CellStatus.MODEL_ERROR, str(exc))
        context = prepared.contexts[cell.model]
        pair = (cell.model, cell.variant)
        if context is None or pair in prepared.rows:
            continue
        prepared.rows[pair], prepared.artifacts[pair] = build_variant(context, cell.variant, {}, reporter)
        if prepared.artifacts[pair] is None:
            reporter.note(f"{cell.model} {cell.variant}: {prepared.rows[pair]['error']}", FAILED)
    return prepared


class _Stopped(BaseException):
    """Raised in a worker once the run is interrupted: no `except Exception` on the way out takes it
    for a failed cell."""


class _Worker:
    """Measures one device's cells in order while holding its lease."""

    def __init__(
        self,
        name: str,
        device: Device,
        cells: list[Cell],
        matrix: Matrix,
        settings: ProtocolSettings,
        store: RunStore,
        prepared: _Prepared,
        scratch: Path,
        reporter: Reporter,
        lease_wait_s: float,
        stop: threading.Event | None = None,
    ) -> None:
        self.stop = stop or threading.Event()
        self.name, self.device, self.cells, self.matrix = name, device, cells, matrix
        self.settings, self.store, self.prepared = settings, store, prepared
        self.scratch, self.reporter, self.lease_wait_s = scratch, reporter, lease_wait_s
        self.quarantine_reason: str | None = None
        self.host = next((d.host for d in matrix.devices if d.name == name), "")
        self.server_gone: str | None = None  # the phone's adb server stopped answering: its host is gone
        self.info: DeviceInfo | None = None
        self.telemetry: DeviceTelemetry | None = None  # read once the device first answers

    def run(self) -> _Worker:
        with suppress(_Stopped):
            self._run()
        return self

    def _run(self) -> None:
        with ExitStack() as stack:
            if isinstance(self.device, ClosableDevice):  # a phone: its connection and its own lease
                stack.callback(self.device.close)
            try:
                stack.enter_context(DeviceLease(self.device.device_id, wait_s=self.lease_wait_s))
                if isinstance(self.device, LeasedDevice):  # the lease other hosts' coordinators see too
                    self.device.take_lease(self.lease_wait_s)
            except LeaseHeld as exc:  # another run holds the phone: nothing runs on it
                self.quarantine_reason = str(exc)
            except DeviceError:
                pass  # the phone does not answer yet: each cell's health check deals with it
            in_a_row = 0
            for cell in self.cells:
                if self.stop.is_set():  # interrupted: the cells not started stay unmeasured (resume them)
                    break
                if self.quarantine_reason:
                    self._save(self._not_run(cell))
                    continue
                row = self._measure(cell)
                in_a_row = in_a_row + 1 if row["status"] in DEVICE_FAULTS else 0
                if self.server_gone:  # no retry reaches a phone whose host is gone
                    self.quarantine_reason = f"its adb server went away ({self.server_gone})"
                    self.reporter.note(f"{self.name}: {self.quarantine_reason}", FAILED)
                elif in_a_row >= self.matrix.run.quarantine_after:
                    self.quarantine_reason = (
                        f"quarantined after {in_a_row} failed cells in a row (last: {row['error']})"
                    )
                    self.reporter.note(f"{self.name} {self.quarantine_reason}", FAILED)

    def _measure(self, cell: Cell) -> dict[str, Any]:
        """One cell, with up to `retries` more attempts while the device is at fault; every
        attempt is saved as it ends."""
        attempts = 1 + self.matrix.run.retries
        for attempt in range(1, attempts + 1):
            row = self._attempt(cell)
            self._save(row)
            if row["status"] not in DEVICE_FAULTS or self.stop.is_set() or self.server_gone:
                break
            self.reporter.note(
                f"{cell.device} {cell.model} {cell.variant} attempt {attempt}/{attempts}: {row['error']}", WARNED
            )
        return row

    def _attempt(self, cell: Cell) -> dict[str, Any]:
        try:
            self.info = health_check(self.device, self.matrix.run.health_timeout_s)
        except PocketbenchError as exc:
            if isinstance(exc, ServerUnreachable):
                self.server_gone = str(exc)
            return failed_row(self._base(cell), CellStatus.DEVICE_UNHEALTHY, str(exc))
        base = self._base(cell)
        context = self.prepared.contexts.get(cell.model)
        if context is None:
            return {**base, **self.prepared.rows[(cell.model, "*")]}
        prepared_row = self.prepared.rows[(cell.model, cell.variant)]
        artifact = self.prepared.artifacts[(cell.model, cell.variant)]
        if artifact is None:
            return {**base, **prepared_row}
        row = {**base, **prepared_row}
        try:
            if self.telemetry is None:
                self.telemetry = probe_telemetry(self.device, self.reporter)
            return measure_cell(
                context,
                artifact,
                self.device,
                self.telemetry,
                self.settings,
                row,
                self.scratch,
                self.reporter,
                progress=self._progress,
            )
        except Exception as exc:  # a transport library's own error must not end the other phones' run
            if isinstance(exc, ServerUnreachable):
                self.server_gone = str(exc)
            return failed_row(row, CellStatus.DEVICE_ERROR, f"{self.name}: {type(exc).__name__}: {exc}")

    def _progress(self, so_far: dict[str, Any], why: str | None) -> None:
        """Keep the repetitions so far; once the run is interrupted, stop the cell here (what it
        measured is in its progress file: a resumed run keeps it as a partial attempt)."""
        self.store.save_progress(self._serial(so_far), why)
        if self.stop.is_set():
            raise _Stopped

    def _base(self, cell: Cell) -> dict[str, Any]:
        return base_row(self.store.run_id, cell.model, cell.variant, cell.device, self.info)

    def _not_run(self, cell: Cell) -> dict[str, Any]:
        return failed_row(self._base(cell), CellStatus.NOT_RUN, f"{self.name}: {self.quarantine_reason}")

    def _save(self, row: dict[str, Any]) -> None:
        """The store numbers the attempt (after any from an earlier try of this run id)."""
        self.store.write_cell(self._serial(row))

    def _serial(self, row: dict[str, Any]) -> dict[str, Any]:
        return {**row, "device_serial": self.device.device_id, "device_host": self.host or None}


def health_check(device: Device, timeout_s: float) -> DeviceInfo:
    """Probe the device (identity and state) within `timeout_s`; a device that does not
    answer in time is unhealthy. The probe runs in a daemon thread so a hung transport
    cannot hang the worker."""
    outcome: dict[str, Any] = {}

    def probe() -> None:
        try:
            if isinstance(device, RecoverableDevice):  # a phone: reconnect, wait for boot
                device.health_check(wait_s=timeout_s)
            outcome["info"] = device.info()
        except PocketbenchError as exc:
            outcome["error"] = exc
        except Exception as exc:  # a transport library's own error: the device is unhealthy all the same
            outcome["error"] = DeviceError(f"{device.device_id}: {type(exc).__name__}: {exc}", serial=device.device_id)

    thread = threading.Thread(target=probe, name=f"health-{device.device_id}", daemon=True)
    thread.start()
    thread.join(timeout_s + 15)  # the device's own wait first, then a margin for the probe
    if thread.is_alive():
        raise DeviceError(
            f"{device.device_id} did not answer a health check within {timeout_s:.0f} s", serial=device.device_id
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["info"]
