"""A search from start to end: checks, the hand-written candidates, one worker per device over
the shared study until the budget is spent, then the front measured again beside the baselines.

Every trial is an ordinary recipe with an ordinary row in this run's folder (tagged with its
study and trial number), so `history` and `report --compare` see the search like any run.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pocketbench.compress.recipe import Recipe, parse_variant
from pocketbench.devices.base import Device, DeviceInfo
from pocketbench.devices.local import LocalDevice
from pocketbench.errors import PocketbenchError
from pocketbench.measure.cell import measure_cell, probe_telemetry
from pocketbench.measure.model import ModelContext, build_variant, load_model
from pocketbench.measure.plan import measure_seconds
from pocketbench.measure.protocol import DeviceTelemetry
from pocketbench.measure.rows import base_row
from pocketbench.progress import FAILED, Reporter, Tally
from pocketbench.results.cell_status import CellStatus
from pocketbench.results.store import RunStore, read_cells
from pocketbench.tune import study as studies
from pocketbench.tune.front import BASELINES, FrontResult, best_hand_written, measure_front
from pocketbench.tune.goal import OBJECTIVES, TuneSettings
from pocketbench.tune.space import Space, recipe_from, recipe_key
from pocketbench.tune.trial import BUILD_LOCK, Worker, expected_seconds, run_trial, suggest

if TYPE_CHECKING:
    import optuna

# Consecutive trials the sampler proposes that were all run before: the space is exhausted.
MAX_REPEATS = 25


@dataclass
class TuneRun:
    """What a finished search leaves: the study and the re-measured front beside the baselines."""

    run_id: str
    folder: Path
    storage: str
    study: str
    trials: int  # trials with a row of their own, across every worker on the study
    pruned: int
    result: FrontResult


def check_devices(
    devices: list[Device], settings: TuneSettings, reporter: Reporter
) -> tuple[dict[str, DeviceInfo | None], dict[str, DeviceTelemetry]]:
    """Each device's identity and telemetry, read once; devices of different models (unless
    allowed) and an energy objective on a device that measures none are refused here."""
    infos: dict[str, DeviceInfo | None] = {d.device_id: d.info() for d in devices}
    models = {info.model for info in infos.values() if info is not None}
    if len(models) > 1 and not settings.allow_mixed_devices:
        raise PocketbenchError(
            f"devices of different models ({', '.join(sorted(models))}) would mix their latencies in one study:"
            " tune each model on its own, or pass --allow-mixed-devices"
        )
    telemetry = {d.device_id: probe_telemetry(d, reporter) for d in devices}
    if settings.objective == "energy":
        for device_id, seen in telemetry.items():
            if not seen.energy.sources:
                raise PocketbenchError(
                    f"--objective energy: device {device_id} measures no energy ({seen.energy.describe()});"
                    " use --objective latency or size there"
                )
    return infos, telemetry


def run_tune(
    model: str,
    devices: list[Device],
    settings: TuneSettings,
    space: Space,
    store: RunStore,
    hand_written: list[str | Recipe],
    reporter: Reporter | None = None,
    resume: bool = False,
    checked: tuple[dict[str, DeviceInfo | None], dict[str, DeviceTelemetry]] | None = None,
) -> TuneRun:
    """Search `model` on `devices` (one worker each) into `store`, then measure the front.
    `checked`: what `check_devices` found, when the caller checked before claiming the store."""
    reporter = reporter or Reporter()
    # `--time` is what the whole command may take: the hand-written recipes, the search and the front.
    deadline = time.monotonic() + settings.time_s if settings.time_s is not None else None
    settings = offered_threads(settings, devices)
    infos, telemetry = checked or check_devices(devices, settings, reporter)
    store.record_devices({k: asdict(v) if v else None for k, v in infos.items()})
    with _claimed(store.folder):
        url = studies.storage_url(settings, store.folder)
        storage = studies.open_storage(url)
        name = settings.study or studies.DEFAULT_STUDY
        with tempfile.TemporaryDirectory(prefix="pocketbench-tune-") as scratch:
            context = load_model(model, Path(scratch), reporter)
            if context.bundle.score is None:
                raise PocketbenchError(f"model {model!r} has no labelled held-out set: tune needs its accuracy")
            study = studies.open_study(storage, name, settings.seed, studies.identity(model, settings, space))
            reference = _reference_accuracy(context)
            studies.agree(study, "fp32_accuracy", reference, "the fp32 accuracy", "every host needs the same model")
            for info in infos.values():
                if info is not None and not settings.allow_mixed_devices:
                    fix = "use a study per device model or --allow-mixed-devices"
                    studies.agree(study, "device_model", info.model, "the device model", fix)
            shared = not studies.private(url, store.folder)
            finished, queued = studies.recover(study, store.folder, shared)
            if finished or queued:
                said = f"{finished} trial(s) finished from their rows, {queued} run again"
                reporter.note(f"trials a killed run left: {said}")
            floor = reference - settings.max_accuracy_drop
            first = devices[0]
            candidates = _hand_written(
                context, first, infos[first.device_id], telemetry[first.device_id], hand_written, settings, store,
                Path(scratch), reporter,
            )  # fmt: skip
            named = [v if isinstance(v, Recipe) else parse_variant(v) for v in hand_written]
            if not study.trials:
                best = best_hand_written(candidates, floor, settings)
                _warm_start(study, space, next((r for r in named if r.name == best), None), reporter)
            twins = {recipe_key(r): r for r in reversed(named)}
            workers = [
                Worker(
                    d,
                    infos[d.device_id],
                    telemetry[d.device_id],
                    context,
                    space,
                    settings,
                    store,
                    Path(scratch),
                    reporter,
                    reference,
                    twins,
                )
                for d in devices
            ]
            search_ends = deadline - front_seconds(settings) if deadline is not None else None
            _search(workers, storage, name, settings, space, reporter, resume or bool(settings.storage), search_ends)
            result = measure_front(study, model, devices, candidates, floor, settings, store, reporter)
        trials = [t for t in study.get_trials(deepcopy=False) if studies.measured(t)]
        pruned = sum(1 for t in trials if t.state.name == "PRUNED")
        return TuneRun(store.run_id, store.folder, studies.safe_url(url), name, len(trials), pruned, result)


def offered_threads(settings: TuneSettings, devices: list[Device]) -> TuneSettings:
    """The protocols with as many threads as this computer lets the runner use (its CPU affinity:
    one under `taskset -c 1`), when every device is this computer and no thread count was given:
    a recipe is chosen for the cores it will run on, and the baselines and the front share them.
    A phone keeps its own policy (one thread per pinned core)."""
    if not devices or not all(isinstance(d, LocalDevice) for d in devices):
        return settings
    cores = len(os.sched_getaffinity(0))
    chosen = {
        name: replace(protocol, threads=cores)
        for name in ("trial_protocol", "front_protocol")
        if (protocol := getattr(settings, name)).threads is None
    }
    return replace(settings, **chosen) if chosen else settings


@contextmanager
def _claimed(folder: Path) -> Iterator[None]:
    """The run folder held by this process, and Optuna's per-trial log lines off (they would break the bar)."""
    import optuna

    claim = studies.hold(folder)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)
        claim.close()


def _reference_accuracy(context: ModelContext) -> float:
    import torch

    assert context.bundle.score is not None
    return round(100.0 * float(context.bundle.score([torch.from_numpy(r) for r in context.reference])), 6)


def _warm_start(study: optuna.Study, space: Space, best: Recipe | None, reporter: Reporter) -> None:
    """Queue fp32 and plain int8 first (the sampler starts from both ends), then the best
    hand-written recipe that meets the constraints and that recipe pushed further (the next
    larger prune ratios), where the space holds them: a search of a few trials starts from the
    best a person wrote rather than from random corners. A seed equal to a hand-written recipe
    reuses its artifact, so it costs only its measurement."""
    starts: list[dict[str, Any]] = [
        {"prune_ratio": 0.0, "quantization": "none"},
        {"prune_ratio": 0.0, "quantization": "int8", "observer": "minmax", "keep_fp32": 0},
    ]
    if best is not None and (chosen := space.choices_of(best)) is not None:
        further = space.pushed_further(chosen)
        starts += [chosen, *further]
        named = ", ".join(recipe_from(c).name for c in further) or "nothing further"
        reporter.note(f"the search starts from the best hand-written recipe, {best.name}, and {named}")
    queued = set()
    for params in starts:
        fits = all(name in space.choices and value in space.choices[name] for name, value in params.items())
        key = recipe_key(recipe_from(params))
        if fits and key not in queued:
            queued.add(key)
            study.enqueue_trial(params)


def _hand_written(
    context: ModelContext,
    device: Device,
    info: DeviceInfo | None,
    telemetry: DeviceTelemetry,
    variants: list[str | Recipe],
    settings: TuneSettings,
    store: RunStore,
    scratch: Path,
    reporter: Reporter,
) -> list[dict[str, Any]]:
    """The compression table's recipes measured with the trials' short protocol (once per run:
    a resumed run reuses its rows), to pick the best hand-written one that meets the constraints."""
    done = read_cells(store.folder)
    if "tune_phase" in done:
        done = done[done["tune_phase"] == "hand-written"]
        have = {str(v): r for v, r in zip(done["variant"], done.to_dict("records"), strict=True)}
    else:
        have = {}
    rows = []
    for variant in reporter.track(variants, "hand-written recipes (short protocol)"):
        recipe = variant if isinstance(variant, Recipe) else parse_variant(variant)
        if recipe.name in have:
            rows.append(have[recipe.name])
            continue
        row = base_row(store.run_id, context.spec.name, recipe.name, device.device_id, info)
        row["tune_phase"] = "hand-written"
        with BUILD_LOCK:
            row, artifact = build_variant(context, recipe, row, reporter)
        if artifact is not None:
            row = measure_cell(context, artifact, device, telemetry, settings.trial_protocol, row, scratch, reporter)
        row["recipe"] = row.get("recipe") or recipe.to_json()
        store.write_cell(row)
        if row["status"] != CellStatus.OK:
            reporter.note(f"hand-written {recipe.name}: {row['error']}", FAILED)
        rows.append(row)
    return rows


def _search(
    workers: list[Worker],
    storage: optuna.storages.RDBStorage,
    name: str,
    settings: TuneSettings,
    space: Space,
    reporter: Reporter,
    shared: bool,
    deadline: float | None,
) -> None:
    """One thread per worker asking the study for trials until the budget is spent: `trials`, or
    `deadline` (time.monotonic()), by which every trial started must have ended."""
    import optuna

    budget = settings.budget_trials
    if deadline is not None and time.monotonic() >= deadline:
        reporter.note("the hand-written recipes used the whole --time budget: no trial is run", FAILED)
        return
    probe = optuna.load_study(study_name=name, storage=storage)
    used = sum(1 for t in probe.get_trials(deepcopy=False) if _uses_budget(t))
    limit = f"{budget} trials" if budget is not None else ""
    if deadline is not None:
        left = max(deadline - time.monotonic(), 0)
        limit += (" and " if limit else "") + (f"{left:.0f} s left" if left < 120 else f"{left / 60:.0f} min left")
    errors: list[BaseException] = []
    stop = threading.Event()
    with reporter.tally(f"trials ({limit})", total=budget, done=min(used, budget or used)) as tally:
        threads = []
        for index, worker in enumerate(workers):
            # Each worker samples with its own seed (one seed would make workers propose alike);
            # the first worker of a study of its own keeps `seed` itself, so such a run repeats.
            seed = settings.seed + index + (zlib.crc32(worker.store.run_id.encode()) % 10_000 if shared else 0)
            args = (worker, storage, name, seed, budget, deadline, space.size(), tally, stop, errors)
            threads.append(threading.Thread(target=_work, args=args, name=f"tune-{worker.device.device_id}"))
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.5)
        except KeyboardInterrupt:
            stop.set()
            raise
    if errors:
        raise errors[0]


def _uses_budget(trial: optuna.trial.FrozenTrial) -> bool:
    return trial.state.name != "WAITING" and studies.counted(trial)


def _work(
    worker: Worker,
    storage: optuna.storages.RDBStorage,
    name: str,
    seed: int,
    budget: int | None,
    deadline: float | None,
    space_size: int,
    tally: Tally,
    stop: threading.Event,
    errors: list[BaseException],
) -> None:
    import optuna

    study = optuna.load_study(study_name=name, storage=storage, sampler=studies.sampler(seed))
    repeats = 0
    try:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            if budget is not None and sum(1 for t in study.get_trials(deepcopy=False) if _uses_budget(t)) >= budget:
                break
            trial = study.ask()
            studies.claim(trial, worker.store.folder, worker.store.run_id)
            if budget is not None and _over_budget(study, trial.number, budget):
                trial.set_user_attr("killed", "over budget: another worker took the last trial")
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                break
            if deadline is not None:
                recipe = recipe_from(suggest(trial, worker.space))
                expected = expected_seconds(recipe, worker.timings)
                if time.monotonic() + expected > deadline:
                    _give_back(study, trial, f"out of time: {recipe.name} takes about {expected / 60:.0f} min")
                    worker.reporter.note(f"{recipe.name} would end after the --time budget: queued for a resume")
                    break
            try:
                word = run_trial(trial, study, worker)
            except BaseException as exc:
                trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
                study.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
                raise
            repeats = repeats + 1 if word == "seen" else 0
            if _tried(study) >= space_size:
                worker.reporter.note(f"every one of the space's {space_size} recipes has been tried: stopping")
                break
            tally.advance()
            tally.describe(f"trials: #{trial.number} {word}; {studies.best_feasible(study)}")
            if repeats >= MAX_REPEATS:
                worker.reporter.note(f"the sampler proposed {repeats} recipes in a row that ran before: stopping")
                break
    except BaseException as exc:
        stop.set()
        errors.append(exc)


def _give_back(study: optuna.Study, trial: optuna.Trial, why: str) -> None:
    """End an asked trial unrun (failed as `killed`, not counted) and queue its choices again, so
    a resumed run or another host starts with it."""
    from optuna.trial import TrialState

    trial.set_user_attr("killed", why)
    study.tell(trial, state=TrialState.FAIL)
    study.enqueue_trial(trial.params, user_attrs={"requeued_from": trial.number}, skip_if_exists=False)


def front_seconds(settings: TuneSettings) -> float:
    """The time kept for measuring the front and the baselines at the end (at most `max_front`
    members, fp32, int8 and the best hand-written recipe), each cell at its protocol's longest."""
    return (settings.max_front + len(BASELINES) + 1) * measure_seconds(None, settings.front_protocol)


def _tried(study: optuna.Study) -> int:
    """Distinct recipes the study has finished (measured or pruned)."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    return len({t.user_attrs.get("recipe_key") for t in done})


def _over_budget(study: optuna.Study, number: int, budget: int) -> bool:
    """Whether trials numbered before this one already use the whole budget (another worker
    asked between this worker's check and its ask)."""
    before = [t for t in study.get_trials(deepcopy=False) if t.number < number and _uses_budget(t)]
    return len(before) >= budget


def objective_unit(settings: TuneSettings) -> str:
    return OBJECTIVES[settings.objective][1]
