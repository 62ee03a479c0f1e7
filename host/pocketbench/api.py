"""pocketbench from Python: `bench(models, variants, devices=...)` returns the run as a DataFrame.

The same run the `pocketbench bench` command makes (the command calls this function): names are
checked before any work, every cell is saved as it finishes in a new run folder (`results/<run
id>/`, never overwritten), and a failed cell is a row with its status and error, not an exception.
Settings are keyword arguments with the defaults of measure/settings.py's ProtocolSettings.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pocketbench.errors import PocketbenchError, interruption
from pocketbench.measure.settings import ProtocolSettings as _Defaults

if TYPE_CHECKING:
    import pandas as pd

    from pocketbench.compress.recipe import Recipe
    from pocketbench.devices.base import Device
    from pocketbench.progress import Reporter

DEFAULT_VARIANTS = ("fp32", "int8", "int8-dynamic")
RESULTS_ENV = "POCKETBENCH_RESULTS"


def bench(
    models: str | Sequence[str],
    variants: str | Sequence[str | Recipe] = DEFAULT_VARIANTS,
    devices: str | Device | Sequence[str | Device] = "auto",
    *,
    iterations: int = _Defaults.iterations,
    warmup: int = _Defaults.warmup,
    min_seconds: float = _Defaults.min_seconds,
    threads: int | None = _Defaults.threads,
    repetitions: int | None = _Defaults.repetitions,
    ci_target: float = _Defaults.ci_target,
    cell_budget_s: float = _Defaults.cell_budget_s,
    batch_min_ms: float = _Defaults.batch_min_ms,
    energy_window_s: float = _Defaults.energy_window_s,
    allow_charging: bool = _Defaults.allow_charging,
    cooldown_timeout_s: float = _Defaults.cooldown_timeout_s,
    profile: bool = _Defaults.profile,
    profile_iterations: int = _Defaults.profile_iterations,
    prompt_tokens: int = _Defaults.prompt_tokens,
    decode_tokens: int = _Defaults.decode_tokens,
    results: str | Path | None = None,
    run_id: str | None = None,
    wait_for_device: float = 0.0,
    progress: bool | Reporter = False,
    plan: Callable[[list[tuple[str, str, str]]], None] | None = None,
) -> pd.DataFrame:
    """Compress, lower and measure every model × variant × device; save the run and return its rows.

    `models`, `variants` and `devices` take one name, a comma-separated string or a list; a variant
    may also be a `Recipe`, a device an opened `Device` (left open: it is yours). Devices are
    `auto` (the single attached phone, else this computer), `local`, `tcp:HOST:PORT`,
    `usb:SERIAL` or `adb:SERIAL`. The run goes to `results` (default $POCKETBENCH_RESULTS, else
    ./results) under `run_id` (default: UTC time + a random suffix); `frame.attrs` holds
    `run_id` and `folder`. `progress=True` shows bars on stderr; a `Reporter` gets the progress.
    `plan`, once every name and device is checked and before any work, gets the cells as (model,
    variant, device id): it may say what the run will do, or raise to stop it.
    """
    from pocketbench.devices.base import ClosableDevice
    from pocketbench.devices.select import check_runners, open_devices
    from pocketbench.lower.export import versions
    from pocketbench.measure.settings import ProtocolSettings
    from pocketbench.measure.sweep import check_names, run_sweep
    from pocketbench.names import safe_name
    from pocketbench.results.store import RunStore, new_run_id

    settings = ProtocolSettings(
        warmup=warmup, iterations=iterations, min_seconds=min_seconds, threads=threads, repetitions=repetitions,
        ci_target=ci_target, cell_budget_s=cell_budget_s, batch_min_ms=batch_min_ms,
        energy_window_s=energy_window_s, allow_charging=allow_charging, cooldown_timeout_s=cooldown_timeout_s,
        profile=profile, profile_iterations=profile_iterations, prompt_tokens=prompt_tokens,
        decode_tokens=decode_tokens,
    )  # fmt: skip
    if run_id is not None:
        safe_name(run_id, "run id")
    model_names = _names(models, "models")
    planned = _names(variants, "variants")
    variant_names = [v if isinstance(v, str) else v.name for v in planned]
    if len(set(variant_names)) != len(variant_names):
        raise PocketbenchError(f"variants {', '.join(variant_names)}: a name appears twice; rename one")
    check_names(model_names, planned)
    given = [devices] if isinstance(devices, str) or not isinstance(devices, Sequence) else list(devices)
    specs = [d.strip() for spec in given if isinstance(spec, str) for d in spec.split(",") if d.strip()]
    notes: list[str] = []  # how `auto` chose: shown as progress notes and kept in frame.attrs
    opened = open_devices(specs, wait_for_device, notes) if specs else []
    try:
        chosen = [*opened, *(d for d in given if not isinstance(d, str))]
        if not chosen:
            raise PocketbenchError("no devices given: use e.g. devices='local' or 'tcp:HOST:PORT'")
        check_runners(chosen)
        if plan is not None:
            plan([(m, v, d.device_id) for m in model_names for v in variant_names for d in chosen])
        root = Path(results if results is not None else os.environ.get(RESULTS_ENV) or "results")
        store = RunStore(root, run_id or new_run_id())
        config = {
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
                run_sweep(model_names, planned, chosen, settings, store, reporter)
        except Exception:
            store.finish()  # whatever was measured is saved, even if the sweep failed
            raise
        except BaseException as stop:  # Ctrl-C, SIGTERM: the run is marked interrupted, not finished
            store.mark_interrupted(interruption(stop))
            raise
        frame = store.finish()
    finally:
        for device in opened:  # a phone's lease ends with the run, not with the process
            if isinstance(device, ClosableDevice):
                device.close()
    frame.attrs.update(run_id=store.run_id, folder=store.folder, notes=notes)
    return frame


def _names(given: Any, what: str) -> list[Any]:
    """One name, a comma-separated string or a list (whose items may be Recipes) as a list."""
    items = given.split(",") if isinstance(given, str) else list(given)
    names = [i.strip() if isinstance(i, str) else i for i in items]
    names = [n for n in names if not isinstance(n, str) or n]
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
