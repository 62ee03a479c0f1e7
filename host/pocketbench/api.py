"""pocketbench from Python: `bench(models, variants, devices=...)` returns the run as a DataFrame;
`tune(model, devices, ...)` searches recipes and returns the re-measured Pareto front.

The same run the `pocketbench bench` command makes (the command calls this function): names are
checked before any work, every cell is saved as it finishes in a new run folder (`results/<run
id>/`, never overwritten), and a failed cell is a row with its status and error, not an exception.
Settings are keyword arguments with the defaults of measure/settings.py's ProtocolSettings.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pocketbench.errors import PocketbenchError, interruption
from pocketbench.measure.settings import ProtocolSettings as _Defaults

if TYPE_CHECKING:
    import pandas as pd

    from pocketbench.compress.recipe import Recipe
    from pocketbench.devices.base import Device
    from pocketbench.progress import Reporter
    from pocketbench.tune.search import TuneRun
    from pocketbench.tune.space import Space

DEFAULT_VARIANTS = ("fp32", "int8", "int8-dynamic")
RESULTS_ENV = "POCKETBENCH_RESULTS"


def _with_setting_keywords(function: Callable[..., Any]) -> None:
    """Show `function`'s `**setting_values` as one keyword per measurement setting (its signature
    and docstring, which help() and the API page read), made from the settings table."""
    import inspect
    from dataclasses import fields

    from pocketbench.measure.settings import settings_table

    table = settings_table()
    written = {f.name: f.type for f in fields(_Defaults)}  # as written: "int | None"
    signature = inspect.signature(function)
    parameters = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    keywords = [
        inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY, default=s.default, annotation=written[s.name])
        for s in table
    ]
    function.__signature__ = signature.replace(parameters=[*parameters, *keywords])  # type: ignore[attr-defined]
    lines = [f"    - `{s.name}` (default `{s.default!r}`): {s.help}" for s in table]
    function.__doc__ = (function.__doc__ or "") + "\n    Measurement settings:\n\n" + "\n".join(lines) + "\n"


def bench(
    models: str | Sequence[str] | None = None,
    variants: str | Sequence[str | Recipe] = DEFAULT_VARIANTS,
    devices: str | Device | Sequence[str | Device] = "auto",
    *,
    results: str | Path | None = None,
    run_id: str | None = None,
    wait_for_device: float = 0.0,
    progress: bool | Reporter = False,
    plan: Callable[[list[tuple[str, str, str]]], None] | None = None,
    resume: str | None = None,
    **setting_values: Any,
) -> pd.DataFrame:
    """Compress, lower and measure every model × variant × device; save the run and return its rows.

    `models`, `variants` and `devices` take one name, a comma-separated string or a list; a variant
    may also be a `Recipe`, a device an opened `Device` (left open: it is yours). Devices are
    `auto` (the single attached phone, else this computer), `local`, `tcp:HOST:PORT`,
    `usb:SERIAL`, `adb:SERIAL`, `adb://HOST:PORT/SERIAL` or `adb://HOST:PORT` (every phone of
    that host's adb server). The run goes to `results` (default $POCKETBENCH_RESULTS, else
    ./results) under `run_id` (default: UTC time + a random suffix); `frame.attrs` holds
    `run_id` and `folder`. `progress=True` shows bars on stderr; a `Reporter` gets the progress.
    `plan`, once every name and device is checked and before any work, gets the cells as (model,
    variant, device id): it may say what the run will do, or raise to stop it. Every measurement
    setting is a keyword (listed below, from `ProtocolSettings`).

    `resume` continues an interrupted or partly failed bench run (id, `latest` or folder) with its
    own models, variants, devices and settings (leave `models` and the settings out): cells whose
    last attempt is ok are kept as they are, the others are measured as a next attempt, so no
    complete cell is measured twice. The frame has one row per cell, its last attempt
    (results.parquet keeps all).
    """
    from pocketbench.compress.recipe import variant_list
    from pocketbench.devices.base import ClosableDevice
    from pocketbench.devices.select import check_runners, open_devices
    from pocketbench.measure.plan import check_names
    from pocketbench.measure.settings import protocol_settings
    from pocketbench.names import safe_name
    from pocketbench.results.compare import latest_attempts
    from pocketbench.results.store import RunStore, new_run_id, resolve_run

    root = Path(results if results is not None else os.environ.get(RESULTS_ENV) or "results")
    if resume is not None:
        if models is not None or run_id is not None or setting_values:
            raise PocketbenchError(
                "resume continues the run it names with its own models, variants, devices and settings:"
                " leave out models, run_id and every setting"
            )
        folder = resolve_run(resume, root)
        models, variants, devices, settings = saved_bench(folder, resume)
        run_id, root = folder.name, folder.parent
    elif models is None:
        raise PocketbenchError("no models given: name one, e.g. models='digits_cnn' (or resume a run)")
    else:
        settings = protocol_settings(setting_values)
    if run_id is not None:
        safe_name(run_id, "run id")
    model_names = _names(models, "models")
    planned = variant_list(variants)
    variant_names = [v if isinstance(v, str) else v.name for v in planned]
    check_names(model_names, planned)
    # What measures (and imports torch) only once every name is known good.
    from pocketbench.lower.export import versions
    from pocketbench.measure.sweep import run_sweep

    given = [devices] if isinstance(devices, str) or not isinstance(devices, Sequence) else list(devices)
    specs = [d.strip() for spec in given if isinstance(spec, str) for d in spec.split(",") if d.strip()]
    notes: list[str] = []  # how `auto` chose: shown as progress notes and kept in frame.attrs
    opened = open_devices(specs, wait_for_device, notes) if specs else []
    try:
        chosen = [*opened, *(d for d in given if not isinstance(d, str))]
        if not chosen:
            raise PocketbenchError("no devices given: use e.g. devices='local' or 'tcp:HOST:PORT'")
        check_runners(chosen)
        cells = [(m, v, d.device_id) for m in model_names for v in variant_names for d in chosen]
        complete: set[tuple[str, str, str]] = set()
        if resume is not None:  # claimed before the plan: a run another process writes is refused first
            store = RunStore(root, str(run_id), resume=True)
            complete = _complete_cells(store.folder)
            kept = len(complete & set(cells))
            notes.append(f"resuming {store.run_id}: {kept} of {len(cells)} cells already complete")
        if plan is not None:
            try:
                plan([c for c in cells if c not in complete])
            except BaseException:
                if resume is not None:
                    store.release()
                raise
        if resume is None:
            store = RunStore(root, run_id or new_run_id())
            config = {
                "command": "bench",
                "models": model_names,
                "variants": variant_names,
                "recipes": [v.to_dict() for v in planned if not isinstance(v, str)],
                "devices": [d.device_id for d in chosen],
                "settings": asdict(settings),
            }
            store.write_manifest(config, versions())
        try:
            with _reporting(progress) as reporter:
                for note in notes:
                    reporter.note(note)
                run_sweep(model_names, planned, chosen, settings, store, reporter, skip=complete)
        except Exception:
            store.finish()  # whatever was measured is saved, even if the sweep failed
            raise
        except BaseException as stop:  # Ctrl-C, SIGTERM: the run is marked interrupted, not finished
            store.mark_interrupted(interruption(stop))
            raise
        frame = latest_attempts(store.finish())
    finally:
        for device in opened:  # a phone's lease ends with the run, not with the process
            if isinstance(device, ClosableDevice):
                device.close()
    frame.attrs.update(run_id=store.run_id, folder=store.folder, notes=notes)
    return frame


_with_setting_keywords(bench)


def saved_bench(folder: Path, reference: str) -> tuple[list[str], list[str | Recipe], list[str], _Defaults]:
    """The models, variants (sweep-file recipes rebuilt), devices and settings a bench run was started
    with (`reference`: how the user named the run, for the error)."""
    from pocketbench.compress.recipe import Recipe

    config = json.loads((folder / "manifest.json").read_text()).get("config", {})
    # Runs saved before bench recorded its name: a config with bench's keys and no other command's.
    legacy = not {"command", "kind"} & set(config) and {"models", "variants", "devices", "settings"} <= set(config)
    made_by_bench = config.get("command") == "bench" or legacy
    if not made_by_bench:
        raise PocketbenchError(f"run {reference!r} is not a bench run: resume it with the command that made it")
    recipes = {r["name"]: Recipe.from_dict(r) for r in config.get("recipes", [])}
    variants: list[str | Recipe] = [recipes.get(v, v) for v in config["variants"]]
    return list(config["models"]), variants, list(config["devices"]), _Defaults(**config["settings"])


def _complete_cells(folder: Path) -> set[tuple[str, str, str]]:
    """(model, variant, device) of every cell whose last attempt is ok."""
    from pocketbench.results.cell_status import CellStatus
    from pocketbench.results.compare import latest_attempts
    from pocketbench.results.store import read_cells

    last = latest_attempts(read_cells(folder))
    if last.empty:
        return set()
    done = last[last["status"] == CellStatus.OK]
    return {(str(m), str(v), str(d)) for m, v, d in zip(done["model"], done["variant"], done["device"], strict=True)}


def _names(given: str | Sequence[str], what: str) -> list[str]:
    """One name or a comma-separated string or a list of names, as a list."""
    names = [n.strip() for n in (given.split(",") if isinstance(given, str) else given) if n.strip()]
    if not names:
        raise PocketbenchError(f"no {what} given")
    return names


@contextmanager
def _reporting(progress: bool | Reporter) -> Iterator[Reporter]:
    """The reporter for `progress`: a given one as is, rich bars on stderr for True, else silence."""
    from pocketbench.progress import Reporter, RichReporter

    if isinstance(progress, Reporter):
        yield progress
    elif progress:
        from rich.console import Console

        with RichReporter(Console(stderr=True)) as reporter:
            yield reporter
    else:
        yield Reporter()


def tune(
    model: str | None = None,
    devices: str | Device | Sequence[str | Device] = "local",
    *,
    objective: str = "latency",
    max_accuracy_drop: float = 1.0,
    max_size_mb: float | None = None,
    max_latency_ms: float | None = None,
    trials: int | None = None,
    time: float | str | None = None,
    seed: int = 0,
    storage: str | None = None,
    study: str | None = None,
    space: dict[str, list[Any]] | str | Path | None = None,
    baselines: str | Sequence[str | Recipe] | None = None,
    allow_mixed_devices: bool = False,
    trial_protocol: _Defaults | None = None,
    front_protocol: _Defaults | None = None,
    threads: int | None = None,
    results: str | Path | None = None,
    run_id: str | None = None,
    resume: str | None = None,
    progress: bool | Reporter = False,
) -> TuneRun:
    """Search compression recipes for `model` on `devices` and return the re-measured Pareto front.

    Maximises accuracy and minimises `objective` (latency, energy or size) with accuracy at most
    `max_accuracy_drop` points below fp32 (and optional size/latency caps), on Optuna, for
    `trials` trials and/or `time` (seconds or "60m"). Trials are stored in `storage` (an
    SQLAlchemy URL; default: tune.db in the run folder) under `study`; one worker per device.
    `space` narrows or widens the search (a `[tune]`-like mapping, or a sweep file with one);
    `baselines` are the hand-written candidates (default: the compression table's for the model).
    `threads`: runtime threads for the trials, the baselines and the front (default: on this
    computer every core the process may use; a phone's own policy). `resume` continues a run (by
    id or folder) after an interruption, with its settings. Every trial and the front are rows of
    the run; the front is also `tuned.toml` there (docs/tune.md).
    """
    from pocketbench.devices.base import ClosableDevice
    from pocketbench.devices.select import check_runners, open_devices
    from pocketbench.lower.export import versions
    from pocketbench.measure.plan import check_names
    from pocketbench.names import safe_name
    from pocketbench.results.store import RunStore, new_run_id, resolve_run
    from pocketbench.tune.goal import TRIAL_PROTOCOL, TuneSettings, parse_duration
    from pocketbench.tune.search import check_devices, run_tune
    from pocketbench.tune.space import Space

    root = Path(results if results is not None else os.environ.get(RESULTS_ENV) or "results")
    config: dict[str, Any] = {}
    if resume is not None:
        folder = resolve_run(resume, root)
        config = json.loads((folder / "manifest.json").read_text()).get("config", {})
        if config.get("command") != "tune":
            raise PocketbenchError(f"run {resume!r} is not a tune run: resume it with the command that made it")
        model, run_id, root = config["model"], folder.name, folder.parent
    if model is None:
        raise PocketbenchError("no model given: name one, e.g. model='digits_cnn'")
    if config and threads is not None:
        raise PocketbenchError("a resumed tune run keeps its threads: leave out threads (--threads)")
    seconds = parse_duration(time) if isinstance(time, str) else time
    if config:
        saved = config["settings"]
        kept = {k: v for k, v in saved.items() if k not in ("trial_protocol", "front_protocol", "trials", "time_s")}
        settings = TuneSettings(
            **kept,
            trials=trials if trials is not None else saved["trials"],
            time_s=seconds if seconds is not None else saved["time_s"],
            trial_protocol=_Defaults(**saved["trial_protocol"]),
            front_protocol=_Defaults(**saved["front_protocol"]),
        )
        chosen = Space({k: tuple(v) for k, v in config["space"].items()})
        candidates: list[str | Recipe] = list(config["baselines"])
    else:
        protocols = {k: v for k, v in (("trial_protocol", trial_protocol), ("front_protocol", front_protocol)) if v}
        if threads is not None:  # one setting for both, so the trials rank recipes on the threads of the front
            protocols["trial_protocol"] = replace(trial_protocol or TRIAL_PROTOCOL, threads=threads)
            protocols["front_protocol"] = replace(front_protocol or _Defaults(), threads=threads)
        settings = TuneSettings(
            objective=objective,
            max_accuracy_drop=max_accuracy_drop,
            max_size_mb=max_size_mb,
            max_latency_ms=max_latency_ms,
            trials=trials,
            time_s=seconds,
            seed=seed,
            storage=storage,
            study=study,
            allow_mixed_devices=allow_mixed_devices,
            **protocols,  # type: ignore[arg-type]
        )
        chosen = _tune_space(space)
        candidates = _baselines(model, baselines)
    if run_id is not None:
        safe_name(run_id, "run id")
    check_names([model], candidates)
    given = [devices] if isinstance(devices, str) or not isinstance(devices, Sequence) else list(devices)
    specs = [d.strip() for spec in given if isinstance(spec, str) for d in spec.split(",") if d.strip()]
    if not specs and not any(not isinstance(d, str) for d in given):
        specs = list(config.get("devices", []))
    opened = open_devices(specs) if specs else []
    try:
        chosen_devices = [*opened, *(d for d in given if not isinstance(d, str))]
        if not chosen_devices:
            raise PocketbenchError("no devices given: use e.g. devices='local' or 'tcp:HOST:PORT'")
        check_runners(chosen_devices)
        with _reporting(progress) as reporter:  # an energy objective without energy: refused before the run exists
            checked = check_devices(chosen_devices, settings, reporter)
        store = RunStore(root, run_id or new_run_id(), resume=resume is not None)
        if resume is None:
            store.write_manifest(
                {
                    "command": "tune",
                    "model": model,
                    "devices": [d.device_id for d in chosen_devices],
                    "settings": settings.to_config(),
                    "space": {k: list(v) for k, v in chosen.choices.items()},
                    "baselines": [b if isinstance(b, str) else b.name for b in candidates],
                },
                versions(),
            )
        with _reporting(progress) as reporter:
            return run_tune(
                model, chosen_devices, settings, chosen, store, candidates, reporter, resume is not None, checked
            )
    finally:
        for device in opened:
            if isinstance(device, ClosableDevice):
                device.close()


def _tune_space(space: dict[str, list[Any]] | str | Path | None) -> Space:
    """The search space from a `[tune]`-like mapping, a sweep file with a `[tune]` table, or the default."""
    from pocketbench.tune.space import Space, narrow

    if space is None:
        return Space.default()
    if isinstance(space, dict):
        return narrow(space, "space")
    from pocketbench.compress.sweepfile import load_sweep

    path = Path(space)
    return narrow(load_sweep(path).tune, f"sweep file {path}")


def _baselines(model: str, given: str | Sequence[str | Recipe] | None) -> list[str | Recipe]:
    from pocketbench.compress.handwritten import hand_written
    from pocketbench.compress.recipe import variant_list

    if given is None:
        return list(hand_written(model))
    return variant_list(given, "baselines")
