"""The results store: one folder per run, never overwritten, every cell written as it finishes.

Layout of `results/<run-id>/` (schema in docs/results-schema.md):
    manifest.json        versions, git sha, host, devices, config (written first)
    cells/NNNN_<device>_<model>_<variant>_a<attempt>.parquet
                         one immutable file per try of a cell, written the moment it is done
                         (temp file, fsync, then linked to a name that must not exist yet)
    progress/<device>_<model>_<variant>.parquet
                         a cell under way: its row from the repetitions finished so far (status
                         `partial`), replaced after each repetition and removed once the cell's
                         file is written. A run killed mid-cell keeps it; readers show it as a
                         partial row, and a resumed run turns it into a cell file.
    results.parquet      all cells as one tidy DataFrame (written at the end; rebuilt from
                         cells/ when a run was killed before that)
    profiles/<device>_<model>_<variant>.etdp / .parquet
                         with --profile: each cell's ETDump trace and its events (profile.py)

Readers ignore dot-files (a write killed half-way leaves only `.<name>.<pid>.tmp`) and migrate
files of older schema versions (migrations.py).
"""

from __future__ import annotations

import json
import os
import platform
import re
import secrets
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pyarrow import ArrowException

from pocketbench.atomic import FolderBusy, atomic_write_bytes, lock_folder, write_new_bytes
from pocketbench.errors import PocketbenchError, raise_if_interrupted
from pocketbench.names import inside, slug
from pocketbench.results.cell_status import CellStatus
from pocketbench.results.columns import INTEGER_COLUMNS, stored_columns
from pocketbench.results.files import UnreadableFile, file_schema, read_manifest, run_folders, why
from pocketbench.results.migrations import SCHEMA_VERSION, migrate

# The columns every row carries, in display order (results/columns.py declares each once).
COLUMNS = stored_columns()
PROFILES = "profiles"
PROFILE_COLUMNS = ("event", "kind", "op", "kernel", "backend", "calls", "ms", "model", "variant", "device")
PROGRESS = "progress"
# The cell a row measures: a run holds one or more attempts at each.
CELL_KEY = ["model", "variant", "device"]


def new_run_id() -> str:
    """Sortable and unique: UTC time plus a random suffix."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


@dataclass
class RunStore:
    """Writes one run; creating it claims a fresh folder (an existing one is an error)."""

    root: Path
    run_id: str = field(default_factory=new_run_id)
    resume: bool = False  # reopen an existing run (farm --run-id): new cells are added after the old ones
    # Extra columns every row written from now on carries (a search tags its trial and front rows).
    tags: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.folder = inside(self.root, self.run_id, "run id")
        try:
            (self.folder / "cells").mkdir(parents=True, exist_ok=self.resume)
        except FileExistsError as exc:
            if self.folder.is_dir():
                raise PocketbenchError(f"run folder {self.folder} exists: results are never overwritten") from exc
            raise PocketbenchError(f"cannot create the run folder {self.folder}: {exc.strerror}") from exc
        except OSError as exc:
            raise PocketbenchError(
                f"cannot create the run folder {self.folder}: {exc.strerror}; choose a results folder you can write to"
            ) from exc
        try:  # one writer per run: a second `farm --run-id` on it would redo the same cells
            self._lock_fd: int | None = lock_folder(self.folder)
        except FolderBusy as exc:
            raise PocketbenchError(
                f"run {self.run_id} is being written by pid {exc.pid} (another pocketbench): wait for it to"
                " finish, or stop it and resume"
            ) from None
        self._cells = 0
        self._attempts: dict[tuple[str, str, str], int] = {}
        self._manifest: dict[str, Any] = {}
        self._lock = threading.Lock()  # cells may be written from one worker thread per device
        if self.resume:
            self._continue()

    def write_manifest(self, config: dict[str, Any], versions: dict[str, str]) -> None:
        self._manifest = {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "created": datetime.now(UTC).isoformat(),
            "git_sha": _git_sha(),
            "host": {"node": platform.node(), "machine": platform.machine(), "system": platform.platform()},
            "versions": versions,
            "devices": {},
            "config": config,
        }
        self._save_manifest()

    def record_devices(self, devices: dict[str, dict[str, Any] | None]) -> None:
        """Add the probed identity of each device (None: the probe failed) to the manifest."""
        self._manifest["devices"] = devices
        self._save_manifest()

    def mark_interrupted(self, how: str) -> None:
        """Record in the manifest that a signal (`how`) stopped the run, and what it had kept."""
        done, cut = saved_cells(self.folder)
        if self._manifest:
            self._manifest["interrupted"] = {
                "at": datetime.now(UTC).isoformat(),
                "by": how,
                "cells_saved": done,
                "cells_partial": cut,
            }
            self._save_manifest()
        self.release()

    def release(self) -> None:
        """Let another process write this run (finish and mark_interrupted do it; so does exiting)."""
        fd, self._lock_fd = getattr(self, "_lock_fd", None), None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        self.release()

    def _save_manifest(self) -> None:
        atomic_write_bytes(self.folder / "manifest.json", json.dumps(self._manifest, indent=2).encode())

    def write_cell(self, row: dict[str, Any]) -> Path:
        """Persist one try of a cell at once, so a later failure or kill never loses it.

        The attempt number counts tries of the same model × variant × device in this run
        (a retry after a reboot is attempt 2); an explicit `attempt` in the row wins. A dict
        `device_state_json` is stored as JSON text.
        """
        row = {**self.tags, **row}
        key = (str(row.get("model")), str(row.get("variant")), str(row.get("device")))
        with self._lock:
            attempt = int(row.get("attempt") or self._attempts.get(key, 0) + 1)
            self._attempts[key] = attempt
            self._cells += 1
            number = self._cells
        row = {**row, "run_id": self.run_id, "attempt": attempt, "schema_version": SCHEMA_VERSION}
        if isinstance(row.get("device_state_json"), dict):
            row["device_state_json"] = json.dumps(row["device_state_json"], sort_keys=True)
        name = f"{number:04d}_{slug(key[2])}_{slug(key[0])}_{slug(key[1])}_a{attempt}.parquet"
        path = self.folder / "cells" / name
        write_new_bytes(path, parquet_bytes(to_frame([row])))
        self._progress_path(key).unlink(missing_ok=True)
        raise_if_interrupted()  # saved: now a Ctrl-C that was swallowed on the way stops the run
        return path

    def save_progress(self, row: dict[str, Any], reason: str | None) -> None:
        """Persist a cell's repetitions so far the moment one finishes: if the run dies before the
        cell's row is written, this `partial` row (with `reason`) is what remains of it; with no
        reason (every repetition done) the row keeps its own status."""
        row = {**self.tags, **row}
        key = (str(row.get("model")), str(row.get("variant")), str(row.get("device")))
        with self._lock:
            attempt = int(row.get("attempt") or self._attempts.get(key, 0) + 1)
        row = {**row, "run_id": self.run_id, "attempt": attempt, "schema_version": SCHEMA_VERSION}
        if reason is not None:
            row.update(status=CellStatus.PARTIAL, error=reason)
        if isinstance(row.get("device_state_json"), dict):
            row["device_state_json"] = json.dumps(row["device_state_json"], sort_keys=True)
        path = self._progress_path(key)
        path.parent.mkdir(exist_ok=True)
        atomic_write_bytes(path, parquet_bytes(to_frame([row])))
        raise_if_interrupted()

    def _progress_path(self, key: tuple[str, str, str]) -> Path:
        return self.folder / PROGRESS / f"{slug(key[2])}_{slug(key[0])}_{slug(key[1])}.parquet"

    def write_profile(self, model: str, variant: str, device: str, events: pd.DataFrame, trace: Path) -> str:
        """Keep a cell's ETDump trace and its events (never replacing one); the trace's path in the run."""
        folder = self.folder / PROFILES
        folder.mkdir(exist_ok=True)
        name = f"{slug(device)}_{slug(model)}_{slug(variant)}"
        write_new_bytes(folder / f"{name}.etdp", trace.read_bytes())
        frame = events.assign(model=model, variant=variant, device=device)
        write_new_bytes(folder / f"{name}.parquet", parquet_bytes(frame))
        return f"{PROFILES}/{name}.etdp"

    def _continue(self) -> None:
        """A resumed run numbers its files after the highest so far (a gap left by a kill is
        never reused) and its attempts after each cell's last."""
        files = cell_files(self.folder)
        self._cells = max((int(m.group()) for f in files if (m := re.match(r"\d+", f.name))), default=0)
        for leftover in _unfinished(self.folder).to_dict("records"):  # cut short by a kill: keep it
            self.write_cell(leftover)
        files = cell_files(self.folder)
        if files:
            done = read_cells(self.folder)
            for key, attempt in done.groupby(CELL_KEY)["attempt"].max().items():
                model, variant, device = (str(k) for k in key)
                self._attempts[(model, variant, device)] = int(attempt)
        if (self.folder / "manifest.json").exists():
            self._manifest = json.loads((self.folder / "manifest.json").read_text())

    def finish(self) -> pd.DataFrame:
        """The run as saved: read back from results.parquet, so a column's dtype never depends on
        whether it came from memory or disk (a text column with no None is `str` in memory)."""
        frame = add_relative_columns(read_cells(self.folder))
        atomic_write_parquet(frame, self.folder / "results.parquet")
        if self._manifest.pop("interrupted", None) is not None:  # a resumed run that finished
            self._save_manifest()
        self.release()
        return read_parquet(self.folder / "results.parquet")


def to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows → DataFrame with every documented column, in order (missing ones as None)."""
    return to_frame_columns(pd.DataFrame(rows))


def add_relative_columns(frame: pd.DataFrame, baseline: str = "fp32") -> pd.DataFrame:
    """Size ratio, speedup and accuracy change of each cell against the same model's fp32 cell
    on the same device (left empty where that baseline was not measured).

    compression_ratio_vs_fp32 is fp32's zipped size over the variant's: what shipping the file
    compressed saves (it credits unstructured sparsity, which the plain .pte size does not).
    """
    frame = to_frame_columns(frame.copy())
    relative = ("size_ratio_vs_fp32", "speedup_vs_fp32", "accuracy_vs_fp32_points")
    for column in (*relative, "compression_ratio_vs_fp32", "macs_ratio_vs_fp32", *SPEEDUP_COLUMNS):
        dtype = "boolean" if column == "speedup_significant" else "float64"
        frame[column] = pd.Series(pd.NA if dtype == "boolean" else float("nan"), index=frame.index, dtype=dtype)
    ok = frame[(frame["variant"] == baseline) & (frame["status"] == CellStatus.OK)]
    base = ok.drop_duplicates(["model", "device"], keep="last").set_index(["model", "device"])
    for index, row in frame.iterrows():
        key = (row["model"], row["device"])
        if key not in base.index or row["status"] != CellStatus.OK:
            continue
        ref = base.loc[key]
        frame.at[index, "size_ratio_vs_fp32"] = _ratio(row["size_bytes"], ref["size_bytes"])
        frame.at[index, "speedup_vs_fp32"] = _ratio(ref["latency_p50_ms"], row["latency_p50_ms"])
        frame.at[index, "compression_ratio_vs_fp32"] = _ratio(ref["size_zipped_bytes"], row["size_zipped_bytes"])
        frame.at[index, "macs_ratio_vs_fp32"] = _ratio(row["macs"], ref["macs"])
        for column, value in _speedup_test(ref, row).items():
            frame.at[index, column] = value
        if pd.notna(row["accuracy"]) and pd.notna(ref["accuracy"]):
            frame.at[index, "accuracy_vs_fp32_points"] = 100.0 * (row["accuracy"] - ref["accuracy"])
    return frame


SPEEDUP_COLUMNS = ("speedup_ci_low", "speedup_ci_high", "speedup_p_value", "speedup_significant")


def list_value(value: Any) -> list[Any]:
    """A list column's value as a list: None or NaN (a row without one) is empty."""
    return [] if value is None or (isinstance(value, float) and pd.isna(value)) else list(value)


def _repetition_groups(row: Any) -> list[list[float]]:
    samples = list_value(row["latency_samples_ms"])
    reps = list_value(row.get("samples_repetition")) or [0] * len(samples)
    groups: dict[int, list[float]] = {}
    for rep, value in zip(reps, samples, strict=False):
        groups.setdefault(int(rep), []).append(float(value))
    return list(groups.values())


def _speedup_test(ref: Any, row: Any) -> dict[str, float | bool | None]:
    """CI and significance of the speedup from the raw samples of both cells (stats.speedup)."""
    from pocketbench import stats

    base, variant = _repetition_groups(ref), _repetition_groups(row)
    if not base or not variant:
        return {}
    result = stats.speedup(base, variant)
    return {
        "speedup_ci_low": result.ci_low,
        "speedup_ci_high": result.ci_high,
        "speedup_p_value": result.p_value,
        "speedup_significant": result.significant,
    }


def _ratio(numerator: Any, denominator: Any) -> float | None:
    if pd.isna(numerator) or pd.isna(denominator) or not denominator:
        return None
    return float(numerator) / float(denominator)


def saved_cells(folder: Path) -> tuple[int, int]:
    """Cells a run has kept so far: (finished, cut short under way: partial)."""
    return len(cell_files(folder)), len(list((folder / PROGRESS).glob("[!.]*.parquet")))


def cell_files(folder: Path) -> list[Path]:
    """The run's cell files in write order; temporary files of interrupted writes are skipped."""
    return sorted(p for p in (folder / "cells").glob("*.parquet") if not p.name.startswith("."))


def read_parquet(path: Path) -> pd.DataFrame:
    """One stored file, migrated to the current schema (UnreadableFile when it cannot be)."""
    file_schema(path)
    try:
        frame = pd.read_parquet(path)
        return to_frame_columns(migrate(frame, str(path)))
    except PocketbenchError:
        raise
    except (OSError, ValueError, TypeError, ArrowException) as exc:
        raise UnreadableFile(path, f"cannot be read ({why(exc)})") from exc


def _read_each(paths: list[Path], skipped: list[str]) -> list[pd.DataFrame]:
    """The files that can be read; each one that cannot is added to `skipped` with why."""
    frames = []
    for path in paths:
        try:
            frames.append(read_parquet(path))
        except UnreadableFile as exc:
            skipped.append(f"{exc}: left out")
    return frames


def read_cells(folder: Path) -> pd.DataFrame:
    """Every saved try of every cell, with the cells a kill cut short as `partial` rows; files that
    cannot be read are left out and named in `frame.attrs["skipped"]`."""
    skipped: list[str] = []
    frames = _read_each(cell_files(folder), skipped)
    done = pd.concat(frames, ignore_index=True) if frames else to_frame([])
    unfinished = _unfinished(folder, done, skipped)
    if not unfinished.empty:
        done = pd.concat([done, unfinished], ignore_index=True) if frames else unfinished
    done.attrs["skipped"] = skipped
    return done


def _unfinished(folder: Path, done: pd.DataFrame | None = None, skipped: list[str] | None = None) -> pd.DataFrame:
    """Progress rows of cells whose own file was never written (a row written just before a kill
    could remove its progress file is not counted twice)."""
    files = sorted(p for p in (folder / PROGRESS).glob("*.parquet") if not p.name.startswith("."))
    skipped = [] if skipped is None else skipped
    frames = _read_each(files, skipped)
    if not frames:
        return to_frame([])
    rows = pd.concat(frames, ignore_index=True)
    if done is None:
        done = pd.concat(_read_each(cell_files(folder), []) or [to_frame([])], ignore_index=True)
    written = set(_tries(done))
    return rows[[key not in written for key in _tries(rows)]].reset_index(drop=True)


def _tries(frame: pd.DataFrame) -> list[tuple[str, ...]]:
    """(model, variant, device, attempt) of each row, as text."""
    return [tuple(str(v) for v in key) for key in frame[[*CELL_KEY, "attempt"]].itertuples(index=False)]


def read_run(folder: Path) -> pd.DataFrame:
    """Every row of a run: results.parquet when the run finished, else (or when that file is
    damaged) rebuilt from its cells. Files left out are named in `frame.attrs["skipped"]`."""
    final = folder / "results.parquet"
    skipped = []
    if final.exists():
        try:
            frame = read_parquet(final)
            frame.attrs["skipped"] = []
            return frame
        except UnreadableFile as exc:
            skipped.append(f"{exc}: the run's rows are read from its cell files instead")
    cells = read_cells(folder)
    frame = add_relative_columns(cells)
    frame.attrs["skipped"] = [*skipped, *cells.attrs.get("skipped", [])]
    return frame


def read_profiles(folder: Path) -> pd.DataFrame:
    """Every profiled cell's events (empty when the run was not profiled); unreadable files are
    named in `frame.attrs["skipped"]`."""
    files = sorted(p for p in (folder / PROFILES).glob("*.parquet") if not p.name.startswith("."))
    frames, skipped = [], []
    for path in files:
        try:
            events = pd.read_parquet(path)
        except (OSError, ValueError, ArrowException) as exc:
            skipped.append(f"{path}: cannot be read ({why(exc)}): left out")
            continue
        missing = [c for c in PROFILE_COLUMNS if c not in events]
        if missing:
            skipped.append(f"{path}: not a profile's events (no {', '.join(missing)} column): left out")
        else:
            frames.append(events)
    events = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    events.attrs["skipped"] = skipped
    return events


def run_notes(folder: Path, frame: pd.DataFrame | None = None) -> list[str]:
    """What to say about the run itself: it was interrupted before it finished, and the files of
    it (named in `frame.attrs["skipped"]`) that could not be read."""
    unreadable = [f"unreadable: {line}" for line in (frame.attrs.get("skipped", []) if frame is not None else [])]
    if (folder / "results.parquet").exists():
        return unreadable
    unfinished = _unfinished(folder)
    saved, cut = len(cell_files(folder)) + len(unfinished), int((unfinished["status"] == CellStatus.PARTIAL).sum())
    partial = f" ({cut} cut short: partial)" if cut else ""
    return [
        f"interrupted: run {folder.name} stopped before it finished; its {saved} saved cell(s) are shown" + partial,
        *unreadable,
    ]


def load_run(reference: str, root: Path) -> tuple[pd.DataFrame, dict[str, Any], Path]:
    """A saved run by id, `latest`, `first`, or folder path → (DataFrame, manifest, folder); files
    that cannot be read are named in `frame.attrs["skipped"]`."""
    folder = resolve_run(reference, root)
    manifest, problem = read_manifest(folder)
    frame = read_run(folder)
    manifest.setdefault("run_id", folder.name)
    if problem:
        frame.attrs["skipped"] = [problem, *frame.attrs.get("skipped", [])]
    return frame, manifest, folder


def resolve_run(reference: str, root: Path) -> Path:
    candidate = Path(reference)
    if (candidate / "manifest.json").exists():
        return candidate
    if reference.lower() in ("latest", "first"):
        runs = run_folders(root)
        if not runs:
            raise PocketbenchError(f"no runs in {root}: run `pocketbench bench` first")
        return runs[-1] if reference.lower() == "latest" else runs[0]
    folder = inside(root, reference, "run id")
    if not (folder / "manifest.json").exists():
        raise PocketbenchError(f"no run {reference!r} in {root}: `ls {root}` lists the run ids")
    return folder


def to_frame_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Every documented column present, in order, extra columns after them; counts as nullable
    integers (a failed row's blank does not turn `size_bytes` into a float)."""
    missing = [c for c in COLUMNS if c not in frame]
    if missing:  # at once: one insert per column fragments the frame (pandas' PerformanceWarning)
        frame = pd.concat([frame, pd.DataFrame(None, index=frame.index, columns=missing, dtype=object)], axis=1)
    for column in INTEGER_COLUMNS:
        if frame[column].dtype != "Int64":
            frame[column] = pd.to_numeric(frame[column]).astype("Int64")
    extra = [c for c in frame.columns if c not in COLUMNS]
    return frame[COLUMNS + extra]


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    import io

    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def atomic_write_parquet(frame: pd.DataFrame, path: Path) -> None:
    atomic_write_bytes(path, parquet_bytes(frame))


def _git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
            check=False,
        )
    except OSError:
        return None
    return out.stdout.strip() or None
