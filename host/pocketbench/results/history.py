"""Every saved run as one DataFrame (schema: docs/results-schema.md), filtered and exported.

Runs of any schema version load side by side: finished runs are scanned together (scan.py),
the files of each version migrated at once; a run without a readable results.parquet is read
cell by cell. A file that cannot be read (not written by pocketbench, or damaged outside it) is
skipped and named in `frame.attrs["skipped"]` rather than hiding the rest of its run or any other.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pocketbench.errors import BadValue, PocketbenchError
from pocketbench.results.columns import INTEGER_COLUMNS, stored_columns
from pocketbench.results.files import UnreadableFile, read_manifest, run_folders
from pocketbench.results.migrations import RENAMED
from pocketbench.results.scan import RUN_INDEX, Filters, Source, probe, scan

if TYPE_CHECKING:  # imported where used: history exports run on pyarrow alone (history_arrow.py)
    import pandas as pd

COLUMNS = stored_columns()

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
            raise BadValue("start time", text, "that age reaches before year 1; give a smaller one") from None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        hint = "use a date (2026-11-01), a time (2026-11-01T08:00) or an age (7d, 12h)"
        raise BadValue("start time", text, hint) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def load_history(
    root: Path,
    models: list[str] | None = None,
    variants: list[str] | None = None,
    devices: list[str] | None = None,
    since: datetime | None = None,
    runs: Sequence[Path] | None = None,
    *,
    columns: Sequence[str] | None = None,
    samples: bool = True,
    optional: Sequence[str] = (),
) -> pd.DataFrame:
    """Every row of every run under `root` (oldest run first), with the run's manifest columns;
    with `runs`, of those run folders only (in their order), e.g. one farm's nights.

    `columns` keeps only those columns, in that order (the filters still apply); `samples=False`
    leaves out the raw sample lists (SAMPLE_COLUMNS), the bulk of the data; with `columns`, the
    `optional` ones follow them where any file holds them (a device's extra facts). Files that cannot be
    read are named in `frame.attrs["skipped"]`: a run whose results.parquet is damaged is read
    from its cell files, and a run with a damaged manifest keeps its rows without the run facts.
    """
    import pandas as pd

    from pocketbench.results.store import to_frame

    plan = plan_history(root, Filters(models, variants, devices, since), runs, columns, optional, samples)
    frame, failed = scan(plan.sources, plan.row_columns, plan.filters, () if samples else SAMPLE_COLUMNS)
    parts = [frame] if not frame.empty else []
    parts += plan.cell_runs(failed)
    history = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0] if parts else to_frame([])
    if len(parts) > 1:
        history = history.sort_values(RUN_INDEX, kind="stable").reset_index(drop=True)
    history = _with_run_columns(history, plan.facts)
    seen = [*(s.schema.names for s in plan.sources), *(p.columns for p in parts)]
    wanted = wanted_columns(list(history.columns), plan.asked, samples, seen, optional, columns)
    history = _shaped(history, wanted)
    history.attrs["skipped"] = plan.skipped
    return history


@dataclass
class HistoryPlan:
    """What a history read opens: each run's manifest facts, the finished runs' results files (read
    by a scan), the runs read cell by cell, and what was skipped so far."""

    folders: list[Path]
    filters: Filters
    asked: list[str] | None  # the columns asked for, the optional ones included (None: all)
    row_columns: list[str] | None  # of them, the stored columns to read (None: all)
    facts: list[list[Any]] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    by_cells: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def cell_runs(self, failed: list[Source]) -> list[pd.DataFrame]:
        """The filtered rows of each run read cell by cell (and of each file the scan failed on),
        with RUN_INDEX; a run that cannot be read at all is named in `skipped`."""
        indices = sorted([*self.by_cells, *(s.run for s in failed)])
        if not indices:
            return []
        from pocketbench.results.store import read_run

        parts = []
        for index in indices:
            try:
                rows = read_run(self.folders[index])
            except (OSError, ValueError, PocketbenchError) as exc:
                self.skipped.append(f"{self.folders[index]}: {exc}")
                continue
            self.skipped += rows.attrs.get("skipped", [])
            parts.append(self.filters.keep(rows).assign(**{RUN_INDEX: index}))
        return parts


def plan_history(
    root: Path,
    filters: Filters,
    runs: Sequence[Path] | None,
    columns: Sequence[str] | None,
    optional: Sequence[str],
    samples: bool,
) -> HistoryPlan:
    """Each run's manifest read, each finished run's results file probed (footer only)."""
    folders = run_folders(root) if runs is None else list(runs)
    asked = None if columns is None else [*columns, *(c for c in optional if c not in columns)]
    plan = HistoryPlan(folders, filters, asked, _row_columns(asked, samples))
    plan.skipped += not_runs(root) if runs is None else []
    for index, folder in enumerate(folders):
        final = folder / "results.parquet"
        if _written_before(final, filters.since):  # finished before `since`: none of its cells started since
            plan.facts.append([None] * len(RUN_COLUMNS))
            continue
        manifest, problem = read_manifest(folder)
        plan.skipped += [problem] if problem else []
        host = manifest.get("host")
        plan.facts.append([manifest.get("created"), manifest.get("git_sha"), (host or {}).get("node")])
        try:
            plan.sources.append(probe(final, index)) if final.exists() else plan.by_cells.append(index)
        except UnreadableFile:
            plan.by_cells.append(index)  # read_run names the file and reads the cells
        except PocketbenchError as exc:  # from a newer pocketbench: the whole run is refused
            plan.skipped.append(f"{folder}: {exc}")
    return plan


def _written_before(path: Path, since: datetime | None) -> bool:
    """Whether a finished run's results file was last written over a day before `since`: it is
    written once every cell has started, so no row in it can pass. A file copied since then is
    only newer (and scanned); the day covers start times written in any UTC offset."""
    if since is None:
        return False
    try:
        written = path.stat().st_mtime
    except OSError:
        return False  # missing (the run is read from its cells) or unreadable (probing names it)
    return written < (since - timedelta(days=1)).timestamp()


# Raw samples: lists of every timed inference, batch and repetition (most of a row's bytes).
SAMPLE_COLUMNS = ("latency_samples_ms", "samples_repetition", "latency_batches_ms", "samples_batch_calls")


def _row_columns(columns: Sequence[str] | None, samples: bool) -> list[str] | None:
    """The stored columns to read (None: every column the files hold)."""
    if columns is None:
        return None
    return [c for c in columns if c not in RUN_COLUMNS and (samples or c not in SAMPLE_COLUMNS)]


def _with_run_columns(history: pd.DataFrame, facts: list[list[Any]]) -> pd.DataFrame:
    """RUN_COLUMNS from each row's run manifest, and RUN_INDEX dropped."""
    import pandas as pd

    runs = history.pop(RUN_INDEX).to_numpy(dtype=int) if RUN_INDEX in history else None
    table = pd.DataFrame(facts or [[None] * 3], columns=RUN_COLUMNS, dtype=object)
    for column in RUN_COLUMNS:
        history[column] = table[column].to_numpy()[runs] if runs is not None and len(runs) else None
    return history


def wanted_columns(
    present: list[str],
    asked: Sequence[str] | None,
    samples: bool,
    seen: list[Sequence[str]],
    optional: Sequence[str] = (),
    columns: Sequence[str] | None = None,
) -> list[str]:
    """The columns a history holds, in order: the documented ones, the run's, then any a file added
    (in the order the runs show them); or exactly those asked (the `optional` ones where a file
    holds them). A name neither documented nor in any file is a BadValue."""
    if asked is not None:
        asked = [c for c in asked if c not in optional or c in (columns or ()) or any(c in names for names in seen)]
        unknown = [c for c in asked if c not in present and c not in COLUMNS and not any(c in s for s in seen)]
        if unknown:
            raise BadValue("history column", unknown[0], "name a column of docs/results-schema.md")
        return [c for c in asked if samples or c not in SAMPLE_COLUMNS]
    extra = dict.fromkeys(c for names in seen for c in names if c not in COLUMNS and c not in RUN_COLUMNS)
    extra = {c: None for c in extra if c not in RENAMED_FROM and c != RUN_INDEX}
    return [c for c in [*COLUMNS, *RUN_COLUMNS, *extra] if samples or c not in SAMPLE_COLUMNS]


def _shaped(history: pd.DataFrame, wanted: list[str]) -> pd.DataFrame:
    """The wanted columns in order, those missing empty; counts are nullable integers."""
    import pandas as pd

    missing = [c for c in wanted if c not in history]
    if missing:
        history = pd.concat([history, pd.DataFrame(None, index=history.index, columns=missing, dtype=object)], axis=1)
    for column in (c for c in INTEGER_COLUMNS if c in wanted and history[c].dtype != "Int64"):
        history[column] = pd.to_numeric(history[column]).astype("Int64")
    return history[wanted]


# Old names of renamed columns: never shown beside their new names.
RENAMED_FROM = {old for renames in RENAMED.values() for old in renames}


def not_runs(root: Path) -> list[str]:
    """Folders under `root` that are not readable runs, each with why (dot-folders excepted):
    a folder left by a run id with '/' in it, or one this user may not read, is named, not hidden."""
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name
    ):
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


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise BadValue("export format", fmt, f"use one of {', '.join(FORMATS)}")


def export(frame: pd.DataFrame, fmt: str, out: Path | None) -> bytes | None:
    """Write the frame as csv, parquet or json to `out`; without `out`, return the bytes."""
    check_format(fmt)
    if fmt == "parquet":
        if out is None:
            return frame.to_parquet(index=False)
        frame.to_parquet(out, index=False)
        return None
    if fmt == "csv":
        flat = frame.copy()
        # Lists (raw samples) as JSON text, so the CSV round-trips through any reader. A column
        # holds one kind of value: its first present value tells whether it holds lists.
        for column in flat.columns:
            if flat[column].dtype != object:
                continue
            present = flat[column][flat[column].notna()]
            first = present.iloc[0] if len(present) else None
            if hasattr(first, "__len__") and not isinstance(first, str):
                flat[column] = flat[column].map(_json_list)
        data = flat.to_csv(index=False).encode()
    else:
        data = frame.to_json(orient="records", double_precision=15, indent=1).encode()
    if out is None:
        return data
    out.write_bytes(data)
    return None


def _json_list(value: Any) -> str | None:
    """A cell of a list column (a list or array of floats, or None/NaN when missing) as JSON text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return json.dumps([float(v) for v in value])
