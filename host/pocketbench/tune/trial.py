"""One trial on one device: screen the recipe, build it (watching distillation), measure it with
the short protocol, save its row, and tell the study.

Screening pays before the device does: the pruned model's accuracy before any distillation
(AMC's reward) must be within the credit of the floor when distillation follows (`recovery_credit`
points, or the most distillation has recovered in the study so far when that is more),
or at the floor without it; during distillation each epoch's accuracy is kept on the trial and
the trial stops once even the best per-epoch gain so far, kept up for the epochs left, cannot
reach the floor. Optuna's pruners refuse multi-objective studies (`Trial.report` raises), so this
rule is ours; the trial ends CellStatus.PRUNED either way and its row says why.

The row is written before the study is told, so a kill in between leaves a row the next run
turns into the trial's result (study.recover) rather than measuring the recipe twice.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pocketbench.compress.context import StopCompression, watching_epochs
from pocketbench.compress.recipe import ChannelPrune, Distill, Prune, Recipe
from pocketbench.devices.base import Device, DeviceInfo
from pocketbench.measure.cell import measure_cell
from pocketbench.measure.model import ModelContext, build_variant
from pocketbench.measure.protocol import DeviceTelemetry
from pocketbench.measure.rows import base_row, failed_row
from pocketbench.progress import Reporter
from pocketbench.results.cell_status import CellStatus
from pocketbench.results.store import RunStore
from pocketbench.tune.goal import OBJECTIVES, TuneSettings
from pocketbench.tune.space import Space, recipe_from, recipe_key

if TYPE_CHECKING:
    import optuna
    import torch

# torch export is neither fast nor thread-safe: one build at a time in a process.
BUILD_LOCK = threading.Lock()
TWIN_POLL_S = 1.0
TWIN_WAIT_S = 900.0


@dataclass
class Worker:
    """What a trial needs from the worker running it: its device and the run around it."""

    device: Device
    info: DeviceInfo | None
    telemetry: DeviceTelemetry
    context: ModelContext
    space: Space
    settings: TuneSettings
    store: RunStore
    scratch: Path
    reporter: Reporter
    reference_accuracy: float  # fp32's, in points
    # Hand-written recipes by their steps: a trial with the same steps builds under that name, so
    # the artifact built for it is reused (the cache folder is named after the recipe).
    hand_written: dict[str, Recipe] = field(default_factory=dict)
    floor: float = field(init=False)  # the accuracy (points) a feasible trial keeps at least
    # (whether it pruned, distillation epochs, seconds) of each trial this process built and
    # measured to the end: what the next is expected to take, so none starts that would outlast --time.
    timings: list[tuple[bool, int, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.floor = self.reference_accuracy - self.settings.max_accuracy_drop


def suggest(trial: optuna.Trial, space: Space) -> dict[str, Any]:
    """The trial's choices: each dimension that applies given the ones before it."""
    chosen: dict[str, Any] = {}
    for dim in space.dimensions():
        if dim.applies(chosen):
            chosen[dim.name] = trial.suggest_categorical(dim.name, list(space.choices[dim.name]))
    return chosen


def run_trial(trial: optuna.Trial, study: optuna.Study, worker: Worker) -> str:
    """Evaluate one asked trial to its end; returns a word for the progress line."""
    from optuna.trial import TrialState

    recipe = recipe_from(suggest(trial, worker.space))
    key = recipe_key(recipe)
    attrs = {"variant": recipe.name, "recipe": recipe.to_json(), "recipe_key": key, "device": worker.device.device_id}
    for name, value in attrs.items():
        trial.set_user_attr(name, value)
    earlier = _finished_twin(study, key, trial.number)
    if earlier is not None:  # the sampler asked again: the answer is known, nothing is run twice
        trial.set_user_attr("duplicate_of", earlier.number)
        study.tell(trial, earlier.values if earlier.state == TrialState.COMPLETE else None, state=earlier.state)
        return "seen"
    started = time.monotonic()
    row = base_row(worker.store.run_id, worker.context.spec.name, recipe.name, worker.device.device_id, worker.info)
    row.update(tune_study=study.study_name, tune_trial=trial.number, tune_phase="trial", recipe=recipe.to_json())
    screened: list[float] = []
    try:
        with BUILD_LOCK:
            screen = _screen(worker, recipe, screened, _recovery_credit(study, worker.settings))
            if screen is not None and key not in worker.hand_written:  # a hand-written twin is built already
                raise StopCompression(screen)
            with watching_epochs(_epoch_watcher(worker, recipe, screened)):
                built = worker.hand_written.get(key, recipe)
                row, artifact = build_variant(worker.context, built, {**row}, worker.reporter)
                row["recipe"] = recipe.to_json()
    except StopCompression as exc:
        row = failed_row({**row, "tune_screen_accuracy": screened or None}, CellStatus.PRUNED, f"screened out: {exc}")
        worker.store.write_cell(row)
        trial.set_user_attr("screened", screened)
        study.tell(trial, state=TrialState.PRUNED)
        return CellStatus.PRUNED
    row["tune_screen_accuracy"] = screened or None
    if artifact is not None:
        row = measure_cell(
            worker.context,
            artifact,
            worker.device,
            worker.telemetry,
            worker.settings.trial_protocol,
            row,
            worker.scratch,
            worker.reporter,
        )
    values = _values(row, worker.settings)
    if values is not None:
        limits = _constraints(row, values, worker)
        row.update(tune_values=values, tune_constraints=json.dumps(limits))
        for which, excess in limits.items():
            trial.set_constraint(which, excess)
    worker.store.write_cell(row)
    if values is None:
        trial.set_user_attr("error", f"{row['status']}: {row.get('error')}")
        study.tell(trial, state=TrialState.FAIL)
        return "failed"
    if screened and any(isinstance(s, Distill) for s in recipe.steps):
        trial.set_user_attr("recovered", values[0] - screened[0])  # what distillation gave this model
    study.tell(trial, values)
    if not row.get("artifact_reused"):
        worker.timings.append((_prunes(recipe), _epochs(recipe), time.monotonic() - started))
    return "measured"


def _epochs(recipe: Recipe) -> int:
    return sum(s.epochs for s in recipe.steps if isinstance(s, Distill))


def _prunes(recipe: Recipe) -> bool:
    return any(isinstance(s, (ChannelPrune, Prune)) for s in recipe.steps)


def expected_seconds(recipe: Recipe, timings: list[tuple[bool, int, float]]) -> float:
    """How long `recipe` should take, from trials measured before: the longest that pruned alike
    with as many distillation epochs, else the nearest one that distilled, scaled by epochs; 0
    when nothing comparable ran yet (the first such trial is always started)."""
    prunes, wanted = _prunes(recipe), _epochs(recipe)
    same = [seconds for pruned, epochs, seconds in timings if (pruned, epochs) == (prunes, wanted)]
    if same:
        return max(same)
    trained = [(abs(epochs - wanted), seconds / epochs) for _, epochs, seconds in timings if epochs > 0]
    return (
        min(trained, key=lambda t: (t[0], -t[1]))[1] * wanted if wanted > 0 and trained else 0.0
    )  # the slowest nearest


def _finished_twin(study: optuna.Study, key: str, number: int) -> optuna.trial.FrozenTrial | None:
    """An earlier trial of the same recipe: a finished one, or one another worker is running
    (waited for, so two workers never measure one recipe; the lower number always runs)."""
    from optuna.trial import TrialState

    give_up = time.monotonic() + TWIN_WAIT_S
    while True:
        twins = [
            t
            for t in study.get_trials(deepcopy=False)
            if t.number < number
            and t.user_attrs.get("recipe_key") == key
            and "duplicate_of" not in t.user_attrs
            and "killed" not in t.user_attrs
        ]
        ended = [t for t in twins if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        if ended:
            return ended[0]
        if not any(t.state == TrialState.RUNNING for t in twins) or time.monotonic() > give_up:
            return None  # (a twin still running this long is likely on a host that died)
        time.sleep(TWIN_POLL_S)


def _values(row: dict[str, Any], settings: TuneSettings) -> list[float] | None:
    """(accuracy in points, objective in its unit) of a measured row; None when either is missing."""
    column, _, scale = OBJECTIVES[settings.objective]
    accuracy, cost = row.get("accuracy"), row.get(column)
    if row.get("status") != CellStatus.OK or accuracy is None or cost is None or cost != cost:
        return None
    return [100.0 * float(accuracy), float(cost) * scale]


def _constraints(row: dict[str, Any], values: list[float], worker: Worker) -> dict[str, float]:
    """Each constraint as `value − limit` (≤ 0: met): the accuracy floor, and the size and
    latency caps when given."""
    s = worker.settings
    out = {"accuracy": worker.floor - values[0]}
    if s.max_size_mb is not None:
        out["size"] = float(row["size_bytes"]) / 1e6 - s.max_size_mb
    if s.max_latency_ms is not None:
        out["latency"] = float(row["latency_p50_ms"]) - s.max_latency_ms
    return out


def eager_accuracy(context: ModelContext, module: torch.nn.Module) -> float:
    """Points on the held-out set, computed by `module` on this host (no export)."""
    import torch

    assert context.bundle.score is not None  # checked before the search starts
    outputs = []
    with torch.no_grad():
        for inputs in context.bundle.eval_inputs:
            out = module(*inputs)
            outputs.append(out[0] if isinstance(out, (tuple, list)) else out)
    return 100.0 * float(context.bundle.score(outputs))


def _recovery_credit(study: optuna.Study, settings: TuneSettings) -> float:
    """Points distillation is credited with: the most it has recovered on this study's model so
    far (measured trials, hand-written twins included), at least `recovery_credit`. A network
    that a prune leaves at chance and distillation brings back (mobilenet_v2: 11 % → 99 %) is
    not judged by a fixed guess."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return max(
        [settings.recovery_credit, *(float(t.user_attrs["recovered"]) for t in trials if "recovered" in t.user_attrs)]
    )


def _screen(worker: Worker, recipe: Recipe, screened: list[float], credit: float) -> str | None:
    """Why the recipe is hopeless before distillation, or None. Only recipes that change the
    model before quantization are screened (quantization alone is judged on the device)."""
    from pocketbench.compress.pipeline import apply_recipe

    split = next((i for i, s in enumerate(recipe.steps) if isinstance(s, Distill) or s.graph_level), None)
    before = recipe.steps[:split] if split is not None else recipe.steps
    if not before:
        return None
    module = apply_recipe(worker.context.bundle, Recipe(recipe.name, tuple(before)), worker.reporter).module
    accuracy = eager_accuracy(worker.context, module)
    screened.append(round(accuracy, 3))
    distills = any(isinstance(s, Distill) for s in recipe.steps)
    credit = credit if distills else 0.0
    if accuracy + credit < worker.floor:
        gives = f", with {credit:g} points credited to distillation" if credit else ""
        return f"accuracy before distillation {accuracy:.1f}% cannot reach {worker.floor:.1f}%{gives}"
    return None


def _epoch_watcher(worker: Worker, recipe: Recipe, screened: list[float]) -> Any:
    """Stop a distillation whose accuracy cannot reach the floor in the epochs it has left."""

    def watch(epoch: int, epochs: int, module: torch.nn.Module) -> None:
        accuracy = eager_accuracy(worker.context, module)
        screened.append(round(accuracy, 3))
        gains = [b - a for a, b in itertools.pairwise(screened)]
        reach = accuracy + max([*gains, 0.0]) * (epochs - epoch)
        if reach < worker.floor:
            raise StopCompression(
                f"distillation epoch {epoch}/{epochs} reached {accuracy:.1f}%; at its best gain so far it"
                f" cannot reach {worker.floor:.1f}%"
            )

    return watch


def trial_rows(frame: Any, study: str) -> Any:
    """The rows of a study's trials in a run's frame."""
    if "tune_trial" not in frame:
        return frame.iloc[0:0]
    return frame[(frame["tune_phase"] == "trial") & (frame["tune_study"] == study)]


def describe_choices(trial: optuna.trial.FrozenTrial) -> str:
    return json.dumps(trial.params, sort_keys=True)
