"""After a farm run: the history of the same farm, the verdicts, and the summary table.

The history is every earlier run of the same farm name under the results root (bench runs
and other farms are left out: their settings differ). Verdicts are saved beside the run as
`verdicts.parquet`; an earlier run's flagged regressions never serve as baselines.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

import pandas as pd
from rich.markup import escape as markup_escape
from rich.table import Table
from rich.text import Text

from pocketbench.farm.matrix import Matrix
from pocketbench.farm.regress import IMPROVEMENT, INSUFFICIENT, NO_CHANGE, REGRESSION, verdicts
from pocketbench.farm.run import NOT_RUN, FarmRun
from pocketbench.results.store import atomic_write_parquet, load_run, read_run

VERDICTS_FILE = "verdicts.parquet"
REPORT_FILES = {"md": "report.md", "html": "report.html"}
_STYLE = {REGRESSION: "bold red", IMPROVEMENT: "green"}


def farm_runs(root: Path, farm: str) -> list[Path]:
    """Run folders of the farm named `farm` under `root`, oldest first (by creation: run ids
    may be chosen by the user and need not sort by time)."""
    found = []
    for manifest in root.glob("*/manifest.json"):
        data = json.loads(manifest.read_text())
        config = data.get("config") or {}
        if config.get("kind") == "farm" and config.get("farm") == farm:
            found.append((str(data.get("created", "")), manifest.parent))
    return [folder for _, folder in sorted(found)]


def load_history(root: Path, farm: str) -> tuple[pd.DataFrame, set[tuple[str, str, str, str, str]]]:
    """All rows of the farm's runs, and the (run, device, model, variant, metric) flagged before."""
    frames, flagged = [], set()
    for folder in farm_runs(root, farm):
        frames.append(read_run(folder))
        saved = folder / VERDICTS_FILE
        if saved.exists():
            table = pd.read_parquet(saved)
            table = table[table["verdict"] == REGRESSION]
            flagged |= {(folder.name, r.device, r.model, r.variant, r.metric) for r in table.itertuples()}
    history = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return history, flagged


def judge(run: FarmRun, matrix: Matrix, root: Path) -> pd.DataFrame:
    """Verdicts of `run` against its farm's history, saved beside the run."""
    history, flagged = load_history(root, matrix.name)
    flagged = {f for f in flagged if f[0] != run.run_id}  # a resumed run is judged afresh
    settings = matrix.regression
    table = verdicts(history, run.run_id, settings.thresholds, settings.alpha, settings.min_samples, flagged)
    atomic_write_parquet(table, run.folder / VERDICTS_FILE)
    return table


def summary_table(table: pd.DataFrame, run: FarmRun) -> Table:
    """Regressions, then improvements; counts of the rest (and why data was short) below."""
    shown = table[table["verdict"].isin([REGRESSION, IMPROVEMENT])].copy()
    shown["_rank"] = shown["verdict"].map({REGRESSION: 0, IMPROVEMENT: 1})
    counts = table["verdict"].value_counts()
    short = table.loc[table["verdict"] == INSUFFICIENT, "detail"].value_counts()
    frame = run.frame
    caption = [
        f"{counts.get(REGRESSION, 0)} regression(s), {counts.get(IMPROVEMENT, 0)} improvement(s), "
        f"{counts.get(NO_CHANGE, 0)} unchanged, {counts.get(INSUFFICIENT, 0)} without enough data",
        f"cells: {int((frame['status'] == 'ok').sum())} ok, {int((frame['status'] == NOT_RUN).sum())} not run, "
        f"{int(((frame['status'] != 'ok') & (frame['status'] != NOT_RUN)).sum())} failed"
        + (f"; {run.skipped} complete from before" if run.skipped else ""),
    ]
    caption += [f"[yellow]not judged ({n}): {markup_escape(str(why))}[/]" for why, n in short.items()]
    caption += [f"[red]{markup_escape(f'{name}: {reason}')}[/]" for name, reason in run.quarantined.items()]
    result = Table(
        "device",
        "model",
        "variant",
        "metric",
        "verdict",
        "change",
        "p",
        "detail",
        title=f"farm verdicts — {run.run_id}",
        title_justify="left",
        caption="\n".join(caption),
        caption_justify="left",
    )
    for row in shown.sort_values(["_rank", "device", "model", "variant", "metric"]).itertuples():
        style = _STYLE[row.verdict]
        change = "" if pd.isna(row.change) else f"{row.change:+.1%}"
        p = "" if pd.isna(row.p_value) else f"{row.p_value:.2g}"
        cells = [row.device, row.model, row.variant, row.metric, row.verdict, change, p, str(row.detail)]
        result.add_row(*(Text(str(c), style=style if i == 4 else "") for i, c in enumerate(cells)))
    return result


def write_reports(run: FarmRun, table: pd.DataFrame, matrix: Matrix, root: Path) -> list[Path]:
    """The markdown and HTML reports of the run (issue 8's renderers, compared with the farm's
    previous run) with the verdicts appended, written beside the results."""
    from pocketbench.report.write import write_report

    frame, manifest, folder = load_run(str(run.folder), root)
    runs = [f.name for f in farm_runs(root, matrix.name)]
    earlier = runs[: runs.index(run.run_id)] if run.run_id in runs else []
    baseline = load_run(str(root / earlier[-1]), root) if earlier else None
    judged = table[table["verdict"].isin([REGRESSION, IMPROVEMENT])]
    written = []
    for fmt, name in REPORT_FILES.items():
        text = write_report(fmt, frame, manifest, root, baseline, None)
        text = _with_verdicts_md(text, judged) if fmt == "md" else _with_verdicts_html(text, judged)
        (folder / name).write_text(text, encoding="utf-8")
        written.append(folder / name)
    return written


def _verdict_rows(judged: pd.DataFrame) -> list[list[str]]:
    return [
        [r.device, r.model, r.variant, r.metric, r.verdict, "" if pd.isna(r.change) else f"{r.change:+.1%}", r.detail]
        for r in judged.itertuples()
    ]


_VERDICT_HEADERS = ["device", "model", "variant", "metric", "verdict", "change", "detail"]


def _with_verdicts_md(text: str, judged: pd.DataFrame) -> str:
    lines = ["", "## Regression verdicts", ""]
    if judged.empty:
        lines.append("No significant change against the last good nightly.")
    else:
        lines += ["| " + " | ".join(_VERDICT_HEADERS) + " |", "|" + "---|" * len(_VERDICT_HEADERS)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in _verdict_rows(judged)]
    return text.rstrip("\n") + "\n" + "\n".join(lines) + "\n"


def _with_verdicts_html(text: str, judged: pd.DataFrame) -> str:
    if judged.empty:
        section = "<h2>Regression verdicts</h2><p>No significant change against the last good nightly.</p>"
    else:
        head = "".join(f"<th>{escape(h)}</th>" for h in _VERDICT_HEADERS)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in _verdict_rows(judged)
        )
        section = f"<h2>Regression verdicts</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return text.replace("</body></html>", section + "\n</body></html>", 1)
