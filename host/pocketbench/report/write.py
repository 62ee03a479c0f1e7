"""`pocketbench report --format …`: a run (and its baseline) to markdown, CSV, JSON or HTML text."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from pocketbench.report.verdict_table import VerdictTable
from pocketbench.results.compare import compare_runs, latest_attempts, timing_mismatches

REPORT_FORMATS = ("table", "md", "csv", "json", "html", "llama-bench")
Run = tuple[pd.DataFrame, dict[str, Any], Path]


def with_baseline(frame: pd.DataFrame, baseline: Run | None) -> tuple[pd.DataFrame, str | None]:
    """The run's rows with the comparison columns against `baseline` (None: unchanged)."""
    if baseline is None:
        return frame, None
    return compare_runs(frame, baseline[0]), str(baseline[1]["run_id"])


def baseline_notes(frame: pd.DataFrame, baseline: Run | None) -> list[str]:
    """Lines about the comparison itself: cells whose baseline is another kind of timing."""
    return [] if baseline is None else timing_mismatches(frame, baseline[0])


def write_report(
    fmt: str,
    frame: pd.DataFrame,
    manifest: dict[str, Any],
    root: Path,
    baseline: Run | None,
    out: Path | None,
    notes: Sequence[str] = (),
    profiles: pd.DataFrame | None = None,
    verdicts: VerdictTable | None = None,
    folder: Path | None = None,
) -> str:
    """Render the run as `fmt` (md, csv, json, html, llama-bench); written to `out` when given, else returned.
    `notes` are warnings about the run itself (see results.run_notes); `profiles` are its
    `--profile` events (results.read_profiles) and `verdicts` a farm run's (report.verdicts),
    both shown after the markdown and HTML tables; `folder` is the run's (default: under `root`)."""
    from pocketbench.report.markdown import render_markdown
    from pocketbench.report.table import run_json
    from pocketbench.results.history import export

    run_id = str(manifest["run_id"])
    compared, baseline_id = with_baseline(frame, baseline)
    notes = [*notes, *baseline_notes(frame, baseline)]
    if fmt == "md":
        from pocketbench.report.profile_view import profiles_markdown

        text = render_markdown(compared, run_id, baseline_id, notes, verdicts)
        if profiles is not None and not profiles.empty:
            text = text.rstrip("\n") + "\n\n" + profiles_markdown(profiles)
    elif fmt == "json":
        document = run_json(compared, run_id, folder or root / run_id, baseline_id, notes)
        text = json.dumps(document, indent=1, ensure_ascii=False) + "\n"
    elif fmt == "llama-bench":
        from pocketbench.report.llama_bench import llama_bench_markdown

        text = llama_bench_markdown(latest_attempts(frame))
    elif fmt == "csv":
        text = (export(latest_attempts(compared), "csv", None) or b"").decode()
    else:
        text = _html(compared, manifest, root, baseline, notes, profiles, verdicts)
    if out is not None:
        out.write_text(text, encoding="utf-8")
    return text


def _html(
    frame: pd.DataFrame,
    manifest: dict[str, Any],
    root: Path,
    baseline: Run | None,
    notes: Sequence[str],
    profiles: pd.DataFrame | None,
    verdicts: VerdictTable | None,
) -> str:
    """The HTML page, with trends over every saved run of these models (plus the two runs shown),
    drawn from one p50 per cell and run: history is read without its raw samples."""
    from pocketbench.report.html import render_html
    from pocketbench.report.sparklines import TREND_COLUMNS
    from pocketbench.results.history import load_history
    from pocketbench.results.history_arrow import NotColumnar, as_frame, load_history_table
    from pocketbench.results.scan import Filters

    models = sorted(set(frame["model"]))
    try:  # read as Arrow, one file at a time: a year of runs is a few columns of each
        trend = load_history_table(root, Filters(models=models), columns=TREND_COLUMNS, samples=False)
        history = as_frame(trend.table)
    except NotColumnar:
        history = load_history(root, models=models, columns=TREND_COLUMNS)
    shown = [frame] + ([baseline[0]] if baseline is not None else [])
    known = set(history["run_id"])
    missing = [f[TREND_COLUMNS] for f in shown if not f.empty and f["run_id"].iloc[0] not in known]
    if missing:
        history = pd.concat([history, *missing], ignore_index=True).sort_values("run_id", kind="stable")
    baseline_frame, baseline_id = (baseline[0], str(baseline[1]["run_id"])) if baseline is not None else (None, None)
    return render_html(frame, manifest, baseline_frame, baseline_id, history, notes, profiles, verdicts)
