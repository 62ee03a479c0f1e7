"""The results store: one folder per run, never overwritten, every cell written as it finishes.

Layout of `results/<run-id>/`:
    manifest.json        versions, git sha, host, config (written first)
    cells/NNNN.parquet   one row per measured cell, written atomically the moment it is done
    results.parquet      all cells as one tidy DataFrame (written at the end; rebuilt from
                         cells/ when a run was killed before that)
"""

from __future__ import annotations

import json
import platform
import secrets
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pocketbench.atomic import atomic_write_bytes
from pocketbench.errors import PocketbenchError

SCHEMA_VERSION = 1

# The documented columns, in display order; units are in the names.
COLUMNS = [
    "run_id", "model", "variant", "device", "status", "error", "recipe",
    "size_bytes", "size_ratio_vs_fp32", "planned_memory_bytes",
    "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_mean_ms", "latency_std_ms",
    "latency_min_ms", "latency_max_ms", "speedup_vs_fp32", "samples_ms", "iterations",
    "load_ms", "first_inference_ms", "peak_rss_kb", "rss_kb_before_load", "rss_kb_after_loop",
    "accuracy", "accuracy_vs_fp32_points", "sqnr_db", "max_abs_error", "top1_agreement",
    "delegated_fraction", "ops_outside_delegate", "backend", "runtime_version", "threads",
    "artifact_sha256", "artifact_reused", "compress_seconds", "export_seconds",
    "device_kind", "device_model", "device_abi", "device_os", "device_cpu", "device_cpu_features",
    "started_at", "schema_version",
    # Measurement you can trust (issue 7): repetitions, CIs, stability, energy, memory, thermal.
    "repetitions", "samples_repetition", "latency_p50_ci_low_ms", "latency_p50_ci_high_ms", "latency_cv",
    "latency_repetition_cv", "unstable", "unstable_reason", "speedup_ci_low", "speedup_ci_high",
    "speedup_p_value", "speedup_significant", "energy_sources", "energy_source", "energy_note",
    "energy_mj_per_inference", "energy_mj_per_inference_err", "energy_gross_mj", "energy_idle_mj", "energy_net_mj",
    "power_idle_w", "power_loop_w", "peak_rss_swap_kb", "rss_delta_kb", "temp_start_c", "temp_end_c",
    "thermal_status_end", "cooldown_s", "cooldown_note", "throttled", "throttle_reason", "thermal_json",
]  # fmt: skip


def new_run_id() -> str:
    """Sortable and unique: UTC time plus a random suffix."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


@dataclass
class RunStore:
    """Writes one run; creating it claims a fresh folder (an existing one is an error)."""

    root: Path
    run_id: str = field(default_factory=new_run_id)

    def __post_init__(self) -> None:
        self.folder = self.root / self.run_id
        try:
            (self.folder / "cells").mkdir(parents=True, exist_ok=False)
        except FileExistsError as exc:
            raise PocketbenchError(f"run folder {self.folder} exists: results are never overwritten") from exc
        self._cells = 0

    def write_manifest(self, config: dict[str, Any], versions: dict[str, str]) -> None:
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "created": datetime.now(UTC).isoformat(),
            "git_sha": _git_sha(),
            "host": {"node": platform.node(), "machine": platform.machine(), "system": platform.platform()},
            "versions": versions,
            "config": config,
        }
        atomic_write_bytes(self.folder / "manifest.json", json.dumps(manifest, indent=2).encode())

    def write_cell(self, row: dict[str, Any]) -> None:
        """Persist one cell at once, so a later failure or kill never loses it."""
        self._cells += 1
        frame = to_frame([row])
        atomic_write_parquet(frame, self.folder / "cells" / f"{self._cells:04d}.parquet")

    def finish(self) -> pd.DataFrame:
        frame = add_relative_columns(read_cells(self.folder))
        atomic_write_parquet(frame, self.folder / "results.parquet")
        return frame


def to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows → DataFrame with every documented column, in order (missing ones as None)."""
    frame = pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in frame:
            frame[column] = None
    extra = [c for c in frame.columns if c not in COLUMNS]
    return frame[COLUMNS + extra]


def add_relative_columns(frame: pd.DataFrame, baseline: str = "fp32") -> pd.DataFrame:
    """Size ratio, speedup and accuracy change of each cell against the same model's fp32 cell
    on the same device (left empty where that baseline was not measured)."""
    frame = frame.copy()
    for column in ("size_ratio_vs_fp32", "speedup_vs_fp32", "accuracy_vs_fp32_points", *SPEEDUP_COLUMNS):
        dtype = "boolean" if column == "speedup_significant" else "float64"
        frame[column] = pd.Series(pd.NA if dtype == "boolean" else float("nan"), index=frame.index, dtype=dtype)
    ok = frame[(frame["variant"] == baseline) & (frame["status"] == "ok")]
    base = ok.set_index(["model", "device"])
    for index, row in frame.iterrows():
        key = (row["model"], row["device"])
        if key not in base.index or row["status"] != "ok":
            continue
        ref = base.loc[key]
        frame.at[index, "size_ratio_vs_fp32"] = _ratio(row["size_bytes"], ref["size_bytes"])
        frame.at[index, "speedup_vs_fp32"] = _ratio(ref["latency_p50_ms"], row["latency_p50_ms"])
        for column, value in _speedup_test(ref, row).items():
            frame.at[index, column] = value
        if pd.notna(row["accuracy"]) and pd.notna(ref["accuracy"]):
            frame.at[index, "accuracy_vs_fp32_points"] = 100.0 * (row["accuracy"] - ref["accuracy"])
    return frame


SPEEDUP_COLUMNS = ("speedup_ci_low", "speedup_ci_high", "speedup_p_value", "speedup_significant")


def _repetition_groups(row: Any) -> list[list[float]]:
    samples = list(row["samples_ms"]) if row["samples_ms"] is not None else []
    reps = row.get("samples_repetition")
    reps = list(reps) if reps is not None and not (isinstance(reps, float) and pd.isna(reps)) else [0] * len(samples)
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


def read_cells(folder: Path) -> pd.DataFrame:
    files = sorted((folder / "cells").glob("*.parquet"))
    if not files:
        return to_frame([])
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def load_run(reference: str, root: Path) -> tuple[pd.DataFrame, dict[str, Any], Path]:
    """A saved run by id, `latest`, or folder path → (DataFrame, manifest, folder)."""
    folder = resolve_run(reference, root)
    manifest = json.loads((folder / "manifest.json").read_text())
    final = folder / "results.parquet"
    frame = pd.read_parquet(final) if final.exists() else add_relative_columns(read_cells(folder))
    return frame, manifest, folder


def resolve_run(reference: str, root: Path) -> Path:
    candidate = Path(reference)
    if (candidate / "manifest.json").exists():
        return candidate
    if reference == "latest":
        runs = sorted(p for p in root.glob("*") if (p / "manifest.json").exists())
        if not runs:
            raise PocketbenchError(f"no runs in {root}: run `pocketbench bench` first")
        return runs[-1]
    folder = root / reference
    if not (folder / "manifest.json").exists():
        raise PocketbenchError(f"no run {reference!r} in {root}: `ls {root}` lists the run ids")
    return folder


def atomic_write_parquet(frame: pd.DataFrame, path: Path) -> None:
    import io

    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    atomic_write_bytes(path, buffer.getvalue())


def _git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).parent, check=False,
        )  # fmt: skip
    except OSError:
        return None
    return out.stdout.strip() or None
