"""The end of a search: the front measured again with the full protocol, interleaved with the
baselines (fp32, int8 and the best hand-written recipe that meets the constraints) in one sweep,
and written as `tuned.toml`, a sweep file that `pocketbench bench --sweep` reproduces."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pocketbench.atomic import write_new_bytes
from pocketbench.compress.recipe import Recipe, parse_variant
from pocketbench.compress.sweepfile import sweep_text
from pocketbench.devices.base import Device
from pocketbench.measure.sweep import run_sweep
from pocketbench.progress import Reporter
from pocketbench.report.write import write_report
from pocketbench.results.cell_status import CellStatus
from pocketbench.results.store import RunStore
from pocketbench.tune import study as studies
from pocketbench.tune.goal import OBJECTIVES, TuneSettings
from pocketbench.tune.space import recipe_key

if TYPE_CHECKING:
    import optuna

TUNED_TOML = "tuned.toml"
FRONT_JSON = "front.json"  # which re-measured rows are the front and which the baselines
REPORT_HTML = "report.html"
BASELINES = ("fp32", "int8")


@dataclass
class FrontResult:
    """The re-measured rows (front members and baselines) and where the sweep file went."""

    frame: pd.DataFrame
    front: list[str]  # variant names of the front members, best accuracy first
    baselines: list[str]
    best_hand_written: str | None
    tuned_toml: Path | None
    report: Path  # the run's HTML report: every trial and the front (report/plots.search)
    notes: list[str]
    threads: int | None = None  # what the front was measured with (None: the device's policy)


def best_hand_written(rows: list[dict[str, Any]], floor: float, settings: TuneSettings) -> str | None:
    """The hand-written recipe with the best objective among those meeting every constraint."""
    column, _, _ = OBJECTIVES[settings.objective]
    fits = []
    for row in rows:
        if row.get("status") != CellStatus.OK or _missing(row.get("accuracy")) or _missing(row.get(column)):
            continue
        if 100.0 * float(row["accuracy"]) < floor:
            continue
        if settings.max_size_mb is not None and float(row["size_bytes"]) / 1e6 > settings.max_size_mb:
            continue
        if settings.max_latency_ms is not None and float(row["latency_p50_ms"]) > settings.max_latency_ms:
            continue
        fits.append((float(row[column]), str(row["variant"])))
    return min(fits)[1] if fits else None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def spread(members: list[Any], most: int) -> list[Any]:
    """At most `most` members, evenly spaced along the front (its two ends always kept)."""
    if len(members) <= most:
        return members
    if most == 1:
        return members[:1]
    step = (len(members) - 1) / (most - 1)
    return [members[round(i * step)] for i in range(most)]


def measure_front(
    study: optuna.Study,
    model: str,
    devices: list[Device],
    candidates: list[dict[str, Any]],
    floor: float,
    settings: TuneSettings,
    store: RunStore,
    reporter: Reporter,
) -> FrontResult:
    """Measure the front and the baselines in one interleaved sweep with the full protocol."""
    notes: list[str] = []
    members = spread(studies.front(study), settings.max_front)
    if len(studies.front(study)) > len(members):
        notes.append(f"the front has {len(studies.front(study))} members; {len(members)} spread along it re-measured")
    best = best_hand_written(candidates, floor, settings)
    if best is None:
        notes.append(f"no hand-written recipe keeps accuracy ≥ {floor:.1f}% (and the other constraints)")
    baselines = list(dict.fromkeys([*BASELINES, *([best] if best else [])]))
    same = {recipe_key(parse_variant(b)): b for b in baselines}
    recipes, as_baselines = [], []
    for trial in members:
        recipe = Recipe.from_json(trial.user_attrs["recipe"])
        if recipe_key(recipe) in same:  # measured once, under the baseline's name
            as_baselines.append(same[recipe_key(recipe)])
            notes.append(f"front member {recipe.name} is the baseline {as_baselines[-1]}")
            continue
        recipes.append(recipe)
    if not members:
        notes.append("no trial met the constraints: only the baselines are measured")
    previous = dict(store.tags)
    store.tags = {**previous, "tune_phase": "front", "tune_study": study.study_name}
    try:
        run_sweep([model], [*baselines, *recipes], devices, settings.front_protocol, store, reporter)
    finally:
        store.tags = previous
    frame = store.finish()
    again = frame[frame.get("tune_phase") == "front"] if "tune_phase" in frame else frame.iloc[0:0]
    again = again.drop_duplicates(["variant", "device"], keep="last")
    trial_of = {t.user_attrs["variant"]: t.number for t in members}
    again = again.assign(tune_trial=[trial_of.get(v) for v in again["variant"]])
    notes += [
        f"front member {r['variant']} on {r['device']}: {r['status']}: {r['error']}"
        for _, r in again.iterrows()
        if r["status"] != CellStatus.OK
    ]
    toml = None
    if members:  # front members that are baselines are in it under the baseline's name
        threads = settings.front_protocol.threads
        toml = write_tuned_toml(_fresh(store.folder / TUNED_TOML), model, recipes, baselines, study.study_name, threads)
    report = _fresh(store.folder / REPORT_HTML)
    manifest = json.loads((store.folder / "manifest.json").read_text())
    write_new_bytes(report, write_report("html", frame, manifest, store.root, None, None, notes).encode())
    front = [r.name for r in recipes]
    threads = settings.front_protocol.threads
    roles = {
        "study": study.study_name, "front": front, "front_trials": trial_of, "front_as_baselines": as_baselines,
        "baselines": baselines, "best_hand_written": best, "floor": floor, "threads": threads, "notes": notes,
    }  # fmt: skip
    write_new_bytes(_fresh(store.folder / FRONT_JSON), json.dumps(roles, indent=2).encode())
    return FrontResult(again.reset_index(drop=True), front, baselines, best, toml, report, notes, threads)


def _fresh(path: Path) -> Path:
    """`path`, or `tuned-2.toml`, `tuned-3.toml`… when a resumed run wrote the earlier ones."""
    n = 1
    candidate = path
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def write_tuned_toml(
    path: Path, model: str, front: list[Recipe], baselines: list[str], study: str, threads: int | None = None
) -> Path:
    """The front (and the baselines it was measured with) as a sweep file; never overwrites."""
    same = f" --threads {threads}" if threads is not None else ""
    head = (
        f"# The Pareto front of study {study!r} and its baselines, re-measured together.\n"
        f"# Reproduce: pocketbench bench --sweep tuned.toml -d <the same device>{same}\n"
    )
    recipes = [Recipe(b, parse_variant(b).steps) for b in baselines] + front
    write_new_bytes(path, (head + sweep_text(recipes, [model])).encode())
    return path
