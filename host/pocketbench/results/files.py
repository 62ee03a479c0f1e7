"""Opening one stored file of a run: a file that cannot be read is named with why, never fatal.

A results folder can hold a file damaged outside pocketbench (a disk error, a copy cut short,
a hand edit): readers skip that file, name it and read every other file of the run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from pocketbench.errors import PocketbenchError

# What a file must hold to be read as rows: key columns as text, figures as numbers, samples as
# lists (v1 files name their samples `samples_ms`).
TEXT_COLUMNS = ("model", "variant", "device", "status")
NUMBER_COLUMNS = (
    "size_bytes", "size_zipped_bytes", "params", "macs", "planned_memory_bytes", "iterations", "peak_rss_kb",
    "threads", "attempt", "schema_version", "latency_p50_ms", "accuracy",
)  # fmt: skip
LIST_COLUMNS = ("latency_samples_ms", "samples_ms")


class UnreadableFile(PocketbenchError):
    """A stored file that cannot be read (damaged, empty, or not pocketbench's)."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


def schema_problem(schema: pa.Schema) -> str | None:
    """Why a parquet schema is not one of pocketbench's rows (None: it is)."""
    missing = [c for c in TEXT_COLUMNS if c not in schema.names]
    if missing:
        return f"not a pocketbench results file (no {', '.join(missing)} column)"
    kinds = (
        (TEXT_COLUMNS, (pa.types.is_string, pa.types.is_large_string), "text"),
        (NUMBER_COLUMNS, (pa.types.is_integer, pa.types.is_floating), "numbers"),
        (LIST_COLUMNS, (pa.types.is_list, pa.types.is_large_list), "lists"),
    )
    for columns, checks, what in kinds:
        for column in (c for c in columns if c in schema.names):
            kind = schema.field(column).type
            if not pa.types.is_null(kind) and not any(check(kind) for check in checks):
                return f"column {column} holds {kind}, not {what}: not a pocketbench results file"
    return None


def file_schema(path: Path) -> pa.Schema:
    """A parquet file's schema, from its footer alone (cheap); UnreadableFile when it is not ours."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise UnreadableFile(path, f"cannot be read ({why(exc)})") from exc
    problem = schema_problem(schema)
    if problem:
        raise UnreadableFile(path, problem)
    return schema


def why(exc: BaseException) -> str:
    """An exception as a short one-line reason (a library's message can be long or multi-line)."""
    text = " ".join(str(exc).split())
    return (text[:160] + "…" if len(text) > 160 else text) or type(exc).__name__


def read_manifest(folder: Path) -> tuple[dict[str, Any], str | None]:
    """A run's manifest, or when it cannot be read, what the folder itself says (its name as the
    run id) and why: the rows of a run with a damaged manifest are still read."""
    path = folder / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return {"run_id": folder.name}, f"{path}: cannot be read ({why(exc)}): run facts left out"
    if not isinstance(manifest, dict):
        return {"run_id": folder.name}, f"{path}: not a JSON object: run facts left out"
    return manifest, None


def run_folders(root: Path) -> list[Path]:
    """Every saved run under `root`, oldest first (run ids sort by time)."""
    if not root.is_dir():
        return []
    # By name, which is their order as paths in one folder: comparing paths costs more than the listing.
    return sorted((p for p in root.iterdir() if _readable_file(p / "manifest.json")), key=lambda p: p.name)


def _readable_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a folder this user may not enter: history names it (history.not_runs)
        return False
