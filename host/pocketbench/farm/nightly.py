"""After a farm run: the history of the same farm, the verdicts, and the summary table.

The history is every earlier run of the same farm name under the results root (bench runs
and other farms are left out: their settings differ). Verdicts are saved beside the run as
`verdicts.parquet`; an earlier run's flagged regressions never serve as baselines.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from pyarrow import ArrowException

from pocketbench.farm.matrix import Matrix, RegressionSettings
from pocketbench.farm.regress import KEY, SAMPLED, sample_runs, verdict_columns, verdicts
from pocketbench.report.verdict_table import VerdictTable, build_verdict_table
from pocketbench.results.cell_status import CellStatus
from pocketbench.results.files import read_manifest, why
from pocketbench.results.history import RUN_COLUMNS, load_history
from pocketbench.results.store import COLUMNS, atomic_write_parquet, load_run
from pocketbench.results.verdicts import VERDICTS_FILE, Verdict

if TYPE_CHECKING:  # running a farm loads the measuring stack (torch); judging a saved night does not
    from pocketbench.farm.run import FarmRun

REPORT_FILES = {"md": "report.md", "html": "report.html"}


def farm_runs(root: Path, farm: str, problems: list[str] | None = None) -> list[Path]:
    """Run folders of the farm named `farm` under `root`, oldest first (by creation: run ids
    may be chosen by the user and need not sort by time)."""
    found = []
    for manifest in root.glob("*/manifest.json"):
        data, problem = read_manifest(manifest.parent)
        if problem and problems is not None:
            problems.append(f"{problem}; not known to be a run of farm {farm}")
        config = data.get("config") or {}
        config = config if isinstance(config, dict) else {}
        if config.get("kind") == "farm" and config.get("farm") == farm:
            found.append((str(data.get("created", "")), manifest.parent))
    return [folder for _, folder in sorted(found)]


def farm_history(
    root: Path, farm: str, run_id: str | None = None, columns: Sequence[str] | None = None
) -> tuple[pd.DataFrame, set[tuple[str, str, str, str, str]]]:
    """All rows of the farm's runs (files that cannot be read are named in `attrs["skipped"]`),
    and the (run, device, model, variant, metric) flagged as regressions before.

    With `run_id`, raw samples are read only for the runs its verdicts can compare (that run and
    each cell's newest earlier good run): a year of nights' samples is never loaded. With
    `columns`, only those are read (the documented ones; a device's extra facts where present)."""
    unreadable: list[str] = []
    runs = farm_runs(root, farm, unreadable)
    flagged = set()
    for folder in runs:
        saved = folder / VERDICTS_FILE
        if saved.exists():
            try:
                table = pd.read_parquet(saved, columns=["verdict", "device", "model", "variant", "metric"])
            except (OSError, ValueError, ArrowException) as exc:
                unreadable.append(f"{saved}: cannot be read ({why(exc)}): its regressions may serve as baselines")
                continue
            table = table[table["verdict"] == Verdict.REGRESSION]
            flagged |= {(folder.name, r.device, r.model, r.variant, r.metric) for r in table.itertuples()}
    if columns is None:
        history = load_history(root, runs=runs, samples=run_id is None)
    else:
        documented = [c for c in columns if c in COLUMNS or c in RUN_COLUMNS]
        extra = [c for c in columns if c not in documented]
        history = load_history(root, runs=runs, samples=run_id is None, columns=documented, optional=extra)
    skipped = [*unreadable, *history.attrs["skipped"]]
    if run_id is not None:
        compared = sample_runs(history, run_id, {f for f in flagged if f[0] != run_id})
        rows = ["run_id", *KEY, "attempt"]
        samples = load_history(root, runs=[f for f in runs if f.name in compared], columns=[*rows, *SAMPLED])
        history = history.merge(samples.drop_duplicates(rows, keep="last"), on=rows, how="left")
    history.attrs["skipped"] = skipped
    return history, flagged


def judge_run(root: Path, farm: str, run_id: str, settings: RegressionSettings) -> pd.DataFrame:
    """Verdicts of the run `run_id` against its farm's history (not saved)."""
    history, flagged = farm_history(root, farm, run_id, verdict_columns(settings.match_columns))
    flagged = {f for f in flagged if f[0] != run_id}  # a resumed run is judged afresh
    table = verdicts(
        history, run_id, settings.thresholds, settings.alpha, settings.min_samples, flagged, settings.match_columns
    )
    table.attrs["history_skipped"] = history.attrs.get("skipped", [])
    return table


def judge(run: FarmRun, matrix: Matrix, root: Path) -> pd.DataFrame:
    """Verdicts of `run` against its farm's history, saved beside the run."""
    table = judge_run(root, matrix.name, run.run_id, matrix.regression)
    skipped = table.attrs["history_skipped"]
    atomic_write_parquet(table, run.folder / VERDICTS_FILE)
    table.attrs["history_skipped"] = skipped
    return table


def verdict_table(table: pd.DataFrame, run: FarmRun) -> VerdictTable:
    """The report model of the run's verdicts, with what the farm knows of the run: its cells, the
    phones it quarantined, and earlier nights its history had to leave out."""

    status = run.frame["status"]
    ok, not_run = int((status == CellStatus.OK).sum()), int((status == CellStatus.NOT_RUN).sum())
    facts = [
        f"cells: {ok} ok, {not_run} not run, {len(status) - ok - not_run} failed"
        + (f"; {run.skipped} complete from before" if run.skipped else "")
    ]
    problems = [f"{name}: {reason}" for name, reason in run.quarantined.items()]
    problems += [f"history left out {why}" for why in table.attrs.get("history_skipped", [])]
    return build_verdict_table(table, run.run_id, facts, problems)


def write_reports(run: FarmRun, verdicts: VerdictTable, matrix: Matrix, root: Path) -> list[Path]:
    """The markdown and HTML reports of the run (`pocketbench report`'s renderers, compared with the farm's
    previous run, with the verdicts), written beside the results."""
    from pocketbench.report.write import write_report

    frame, manifest, folder = load_run(str(run.folder), root)
    runs = [f.name for f in farm_runs(root, matrix.name)]
    earlier = runs[: runs.index(run.run_id)] if run.run_id in runs else []
    baseline = load_run(str(root / earlier[-1]), root) if earlier else None
    written = []
    for fmt, name in REPORT_FILES.items():
        write_report(fmt, frame, manifest, root, baseline, folder / name, verdicts=verdicts)
        written.append(folder / name)
    return written
