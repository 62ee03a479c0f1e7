"""Every saved run as one DataFrame (schema: docs/results-schema.md), filtered and exported.

Runs of any schema version load side by side: each file is migrated as it is read. A file that
cannot be read (not written by pocketbench, or damaged outside it) is skipped and named in
`frame.attrs["skipped"]` rather than hiding every other run.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from rich.table import Table
from rich.text import Text

from pocketbench.errors import PocketbenchError
from pocketbench.results.store import COLUMNS, read_run, run_folders, to_frame

# Added to every row from its run's manifest.
RUN_COLUMNS = ["run_created_at", "git_sha", "host"]
FORMATS = ("csv", "parquet", "json")


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`2026-11-01`, `2026-11-01T08:00` (UTC unless an offset is given), or an age: `12h`, `7d`, `2w`."""
    now = now or datetime.now(UTC)
    match = re.fullmatch(r"(\d+)\s*([hdw])", text.strip().lower())
    if match:
        hours = int(match.group(1)) * {"h": 1, "d": 24, "w": 24 * 7}[match.group(2)]
        try:
            return now - timedelta(hours=hours)
        except OverflowError:
            raise PocketbenchError(f"--since {text!r}: that age reaches before year 1; give a smaller one") from None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        hint = "use a date (2026-11-01), a time (2026-11-01T08:00) or an age (7d, 12h)"
        raise PocketbenchError(f"--since {text!r}: {hint}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def load_history(
    root: Path,
    models: list[str] | None = None,
    variants: list[str] | None = None,
    devices: list[str] | None = None,
    since: datetime | None = None,
) -> pd.DataFrame:
    """Every row of every run under `root` (oldest run first), with the run's manifest columns."""
    frames, skipped = [], not_runs(root)
    for folder in run_folders(root):
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
            frame = read_run(folder)
        except (OSError, ValueError, PocketbenchError) as exc:
            skipped.append(f"{folder}: {exc}")
            continue
        frame["run_created_at"] = manifest.get("created")
        frame["git_sha"] = manifest.get("git_sha")
        frame["host"] = (manifest.get("host") or {}).get("node")
        frames.append(frame)
    history = pd.concat(frames, ignore_index=True) if frames else to_frame([]).assign(**dict.fromkeys(RUN_COLUMNS))
    history = history[COLUMNS + RUN_COLUMNS + [c for c in history.columns if c not in COLUMNS + RUN_COLUMNS]]
    for column, wanted in (("model", models), ("variant", variants), ("device", devices)):
        if wanted:
            history = history[history[column].isin(wanted)]
    if since is not None:
        started = pd.to_datetime(history["started_at"], utc=True, format="ISO8601")
        history = history[started >= pd.Timestamp(since)]
    history = history.reset_index(drop=True)
    history.attrs["skipped"] = skipped
    return history


def not_runs(root: Path) -> list[str]:
    """Folders under `root` that are not readable runs, each with why (dot-folders excepted):
    a folder left by a run id with '/' in it, or one this user may not read, is named, not hidden."""
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            if (folder / "manifest.json").is_file():
                continue
            reason = "no manifest.json: not a pocketbench run folder"
            nested = sorted(p.parent.relative_to(root).as_posix() for p in folder.glob("*/manifest.json"))
            if nested:
                reason += f" (it holds run(s) {', '.join(nested)}, saved under a run id with '/' in it)"
        except OSError as exc:
            reason = f"cannot read it: {exc.strerror}"
        found.append(f"{folder}: {reason}")
    return found


def export(frame: pd.DataFrame, fmt: str, out: Path | None) -> bytes | None:
    """Write the frame as csv, parquet or json to `out`; without `out`, return the bytes
    (parquet needs a file)."""
    if fmt not in FORMATS:
        raise PocketbenchError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        if out is None:
            raise PocketbenchError("--format parquet writes a binary file: add --out FILE.parquet")
        frame.to_parquet(out, index=False)
        return None
    if fmt == "csv":
        flat = frame.copy()
        # Lists (raw samples) as JSON text, so the CSV round-trips through any reader.
        for column in flat.columns:
            if flat[column].map(lambda v: hasattr(v, "__len__") and not isinstance(v, str)).any():
                flat[column] = flat[column].map(_json_list)
        data = flat.to_csv(index=False).encode()
    else:
        data = frame.to_json(orient="records", double_precision=15, indent=1).encode()
    if out is None:
        return data
    out.write_bytes(data)
    return None


def _json_list(value: object) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return json.dumps([float(v) for v in value])  # type: ignore[union-attr]
