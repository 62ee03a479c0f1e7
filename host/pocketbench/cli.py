"""The `pocketbench` command: a thin typer layer over library functions.

Heavy imports (torch, executorch, pandas) happen inside commands, so `pocketbench --help`
stays instant.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from pocketbench.api import DEFAULT_VARIANTS as API_VARIANTS
from pocketbench.crash import EXIT_CODES_HELP
from pocketbench.emulator.command import emulator_command
from pocketbench.errors import (
    SHOWN_CHARS,
    BadValue,
    Interrupted,
    PocketbenchError,
    first_line,
    request_interrupt,
    shown,
)
from pocketbench.measure.settings import ProtocolSettings as Defaults
from pocketbench.measure.settings import settings_table
from pocketbench.results.cell_status import CellStatus

if TYPE_CHECKING:  # imported inside commands: `pocketbench --help` stays instant
    import pandas as pd

    from pocketbench.compress.recipe import Recipe

app = typer.Typer(
    help="Compress PyTorch models, lower them to ExecuTorch + XNNPACK, and benchmark every variant.\n\n"
    + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Logs and CI captures are not terminals: give tables room instead of rich's 80-column default.
stderr = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
stdout = Console(width=None if sys.stdout.isatty() else 160)

DEFAULT_MODELS = ["digits_cnn", "mobilenet_v2"]
SUMMARY_ROWS = 50  # history's table: a screenful; the whole frame is an export away
DEFAULT_VARIANTS = ",".join(API_VARIANTS)

ResultsOption = Annotated[
    Path, typer.Option("--results", help="Folder holding one sub-folder per run.", envvar="POCKETBENCH_RESULTS")
]
OutOption = Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")]
RunIdOption = Annotated[
    str | None, typer.Option("--run-id", help="Name of the new run's folder (default: UTC time + a random suffix).")
]
WaitOption = Annotated[
    float,
    typer.Option(
        "--wait-for-device", help="Seconds to wait for a phone that is not attached yet (default: fail at once)."
    ),
]
# The measurement settings a command receives (with_setting_options): field → value.
SettingValues = dict[str, Any] | None
JsonOption = Annotated[bool, typer.Option("--json", help="Print the run as JSON on stdout (tables go to stderr).")]
ColumnsOption = Annotated[
    str | None,
    typer.Option(
        "--columns",
        help="Table columns to show, e.g. p50,speedup,size,p90 (default: the most important that fit the terminal).",
    ),
]
WideOption = Annotated[bool, typer.Option("--wide", help="Show every table column, even wider than the terminal.")]
YesOption = Annotated[
    bool,
    typer.Option(
        "--yes", "-y", help="Start a large run (over 100 cells or about 30 min) from a terminal without asking."
    ),
]


_debug = os.environ.get("POCKETBENCH_DEBUG", "") not in ("", "0")


def _show_version(value: bool) -> None:
    if value:
        from pocketbench import __version__

        stdout.print(f"pocketbench {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback of any error (also POCKETBENCH_DEBUG=1).")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print pocketbench's version and exit."),
    ] = False,
) -> None:
    global _debug
    _debug = _debug or debug


def _quiet_libraries() -> None:
    """torch/torchao/executorch log and warn freely at import and export; users need our output."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)


def with_setting_options(command: Callable[..., None]) -> Callable[..., None]:
    """`command` with one option per measurement setting, made from the settings table
    (measure/settings.py: its help, flag and default), so a new setting needs no edit here; the
    command receives them as `protocol`, a dict of field → value."""
    table = settings_table()
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "protocol"]
    options = [
        inspect.Parameter(
            s.name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=s.default,
            annotation=Annotated[s.type, typer.Option(s.flag, help=s.help)],
        )
        for s in table
    ]

    @functools.wraps(command)
    def with_settings(**given: Any) -> None:
        command(
            **{k: v for k, v in given.items() if k not in {s.name for s in table}},
            protocol={s.name: given[s.name] for s in table},
        )

    cut = next((i for i, p in enumerate(own) if p.name == "run_id"), len(own))  # after what is measured
    with_settings.__signature__ = inspect.Signature([*own[:cut], *options, *own[cut:]])  # type: ignore[attr-defined]
    return with_settings


@app.command()
@with_setting_options
def bench(
    ctx: typer.Context,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="Built-in name, file.py:factory or module:factory (repeatable)."),
    ] = None,
    variants: Annotated[
        str | None,
        typer.Option(
            "--variants",
            "-v",
            help=f"Comma-separated variants, e.g. fp32,int8,prune50+distill+int8 [{DEFAULT_VARIANTS}].",
        ),
    ] = None,
    sweep: Annotated[
        Path | None,
        typer.Option("--sweep", help="TOML file of named variants with step parameters (and optionally models)."),
    ] = None,
    device: Annotated[
        list[str] | None,
        typer.Option(
            "--device",
            "-d",
            help="auto (the single phone on any route, else local), local, tcp:HOST:PORT, usb:SERIAL, adb:SERIAL,"
            " adb://HOST:PORT/SERIAL (a phone of another host's adb server) or adb://HOST:PORT (all its phones).",
        ),
    ] = None,
    run_id: RunIdOption = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            help="Continue an interrupted bench run (id, `latest` or folder): the cells not yet measured, with"
            " the run's own models, variants, devices and settings.",
        ),
    ] = None,
    wait_for_device: WaitOption = 0.0,
    results: ResultsOption = Path("results"),
    as_json: JsonOption = False,
    columns: ColumnsOption = None,
    wide: WideOption = False,
    yes: YesOption = False,
    protocol: SettingValues = None,
) -> None:
    """Compress, lower and measure every model × variant × device; save and show the run.

    Exit codes: 0 every cell measured; 1 bad input (nothing run); 2 unexpected error (traceback
    in a log); 4 no or partial data: a cell failed or is partial (the others are saved).
    """
    _quiet_libraries()
    from pocketbench import crash
    from pocketbench.api import bench as run_bench
    from pocketbench.api import saved_bench
    from pocketbench.measure.settings import SettingsError
    from pocketbench.names import inside
    from pocketbench.progress import RichReporter
    from pocketbench.results.store import new_run_id, resolve_run

    shown_columns = _columns(columns)
    if resume is not None:
        _only_output_options(ctx, "--resume continues the run it names with its models, variants, devices and settings")
        folder = resolve_run(resume, results)
        run_id, results = folder.name, folder.parent
        planned: list[str | Recipe] = []
        file_models: list[str] = []
    else:
        planned, file_models = _variants(variants, sweep)
        run_id = run_id or new_run_id()
    crash.run_folder = inside(results, run_id, "run id")  # a crash log goes there once the run claimed it
    results_flag = "" if results == Path("results") else f" --results {results}"
    crash.resume_hint = f"pocketbench bench --resume {run_id}{results_flag}"
    protocol = protocol or {}
    try:
        settings = Defaults(**protocol) if resume is None else saved_bench(results / run_id, resume)[3]
        chosen_models = model or file_models or DEFAULT_MODELS

        def state_plan(cells: list[tuple[str, str, str]]) -> None:
            _state_plan(cells, settings, results, yes, "bench")

        with _device_choice_named_by_options(), RichReporter(stderr) as reporter:
            frame = run_bench(
                None if resume else chosen_models,
                planned,
                device or ["auto"],
                **({} if resume else protocol),
                results=results,
                run_id=None if resume else run_id,
                wait_for_device=wait_for_device,
                progress=reporter,
                plan=state_plan,
                resume=resume and str(crash.run_folder),
            )
    except SettingsError as exc:  # the library names the setting; here it came from a flag
        raise PocketbenchError(exc.naming(setting_flag)) from exc
    folder = frame.attrs["folder"]
    _show(frame, frame.attrs["run_id"], folder, as_json, shown_columns, wide)
    if settings.llama_bench:  # with --json on stderr, like the tables (the JSON rows carry its mean ± sd)
        from pocketbench.report.llama_bench import llama_bench_markdown

        console = stderr if as_json else stdout
        console.print(llama_bench_markdown(frame), markup=False, highlight=False, crop=False)
    failures = int((frame["status"] != CellStatus.OK).sum())
    if failures:
        stderr.print(
            Text.assemble(
                (f"{failures} cell(s) failed or are partial", "red"), f"; all that was measured is in {folder}"
            )
        )
        raise typer.Exit(crash.EXIT_INCOMPLETE)


def _state_plan(
    cells: Sequence[tuple[str, str, str | None]], settings: Defaults, results: Path, yes: bool, command: str
) -> None:
    """Say what the run will do before it starts; from a terminal, a large plan waits for --yes."""
    from pocketbench.measure.plan import estimate

    plan = estimate(cells, settings, results)
    stderr.print(plan.describe(), highlight=False, markup=False, soft_wrap=True)
    if plan.big and not yes and sys.stdin.isatty() and sys.stderr.isatty():
        raise PocketbenchError(
            f"nothing was started: this {command} is {plan.cells} cells, about {plan.duration}; add --yes to start it"
        )


def setting_flag(field: str) -> str:
    """The option that sets a setting: a protocol setting's own (`cell_budget_s` → `--cell-budget`),
    else the same rule (tune's `time_s` → `--time`)."""
    flags = {s.name: s.flag for s in settings_table()}
    return flags.get(field) or "--" + field.removesuffix("_s").replace("_", "-")


def _columns(spec: str | None) -> list[str] | None:
    """`--columns` as report keys."""
    from pocketbench.report.terminal import parse_columns

    try:
        return parse_columns(spec)
    except BadValue as exc:
        raise PocketbenchError(exc.naming("--columns")) from exc


@contextmanager
def _device_choice_named_by_options() -> Iterator[None]:
    """The library's errors about which device to use, worded with this command's options."""
    from pocketbench.devices.adb.discover import NotPresent, SeveralPhones

    try:
        yield
    except SeveralPhones as exc:
        names = ", ".join(exc.specs)
        raise PocketbenchError(
            f"several phones are attached ({names}): pick one with --device, e.g. --device {exc.specs[0]}"
        ) from exc
    except NotPresent as exc:
        if exc.waited_s:
            raise
        raise NotPresent(f"{exc}; --wait-for-device SECONDS waits for it", serial=exc.serial, waited_s=0) from exc


# What a resumed run may still be given: where its results are and how to show them.
OUTPUT_OPTIONS = {"resume", "results", "as_json", "columns", "wide", "yes", "wait_for_device"}


def _only_output_options(ctx: typer.Context, why: str) -> None:
    """Refuse, in one line, any option given on the command line beside the output options."""
    sources = {str(param.name): ctx.get_parameter_source(str(param.name)) for param in ctx.command.params}
    given = [
        param.opts[0]
        for param in ctx.command.params
        if param.name not in OUTPUT_OPTIONS and getattr(sources[str(param.name)], "name", None) == "COMMANDLINE"
    ]
    if given:
        raise PocketbenchError(f"{why}: leave out {', '.join(given)}")


def _variants(spec: str | None, sweep: Path | None) -> tuple[list[str | Recipe], list[str]]:
    """Variant names from --variants, then recipes from --sweep; and the sweep file's models."""
    from pocketbench.compress.recipe import variant_list

    planned: list[str | Recipe] = [] if spec is None and sweep else variant_list(spec or DEFAULT_VARIANTS)
    models: list[str] = []
    if sweep is not None:
        from pocketbench.compress.sweepfile import load_sweep

        loaded = load_sweep(sweep)
        planned += loaded.variants
        models = loaded.models
    return variant_list(planned, hint="use e.g. --variants fp32,int8 or --sweep file.toml"), models


@app.command()
def farm(
    matrix: Annotated[Path, typer.Argument(help="The farm matrix TOML (see examples/farm.toml).")],
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="Resume this run: complete cells are kept, the rest redone.")
    ] = None,
    lease_wait: Annotated[float, typer.Option(help="Seconds to wait for a phone another run holds.")] = 0.0,
    max_parallel: Annotated[
        int, typer.Option(min=0, help="Phones measured at once (0: all; 1 when they share a slow USB hub).")
    ] = 0,
    wait_for_device: WaitOption = 0.0,
    results: ResultsOption = Path("results"),
    yes: YesOption = False,
) -> None:
    """Run a farm matrix on every phone in parallel and judge it against earlier nights.

    Exit codes: 0 every cell measured, no regression; 1 bad input (nothing run); 2 unexpected
    error (traceback in a log); 3 a significant regression; 4 no or partial data (a cell failed,
    was not run, or is partial; a phone that is not attached leaves its cells not run).
    """
    _quiet_libraries()
    from pocketbench import crash
    from pocketbench.farm import run_matrix
    from pocketbench.progress import RichReporter
    from pocketbench.report.terminal import render_verdicts

    def claimed(folder: Path, claimed_id: str) -> None:
        crash.run_folder = folder
        results_flag = "" if results == Path("results") else f" --results {results}"
        crash.resume_hint = f"pocketbench farm {matrix} --run-id {claimed_id}{results_flag}"

    with RichReporter(stderr) as reporter:
        outcome = run_matrix(
            matrix,
            results,
            run_id=run_id,
            lease_wait_s=lease_wait,
            max_parallel=max_parallel or None,
            wait_for_device=wait_for_device,
            reporter=reporter,
            plan=lambda cells, plan: _state_plan(cells, plan.run.protocol, results, yes, "farm"),
            started=claimed,
        )
    stdout.print(render_verdicts(outcome.verdicts))
    stdout.print(f"saved in {outcome.folder} (reports: {', '.join(p.name for p in outcome.reports)})")
    if outcome.regressed:
        raise typer.Exit(crash.EXIT_REGRESSION)
    if outcome.incomplete:
        raise typer.Exit(crash.EXIT_INCOMPLETE)


@app.command()
def tune(
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Built-in name, file.py:factory or module:factory.")
    ] = None,
    device: Annotated[
        str | None,
        typer.Option("--device", "-d", help="Device(s), comma-separated: one worker each (local, tcp:HOST:PORT, …)."),
    ] = None,
    objective: Annotated[
        str, typer.Option(help="What to minimise beside keeping accuracy: latency, energy or size.")
    ] = "latency",
    max_accuracy_drop: Annotated[
        float, typer.Option(help="Points of accuracy below fp32 a recipe may lose (a constraint).")
    ] = 1.0,
    max_size_mb: Annotated[float | None, typer.Option(help="Largest .pte in MB (a constraint).")] = None,
    max_latency_ms: Annotated[float | None, typer.Option(help="Slowest p50 in ms (a constraint).")] = None,
    trials: Annotated[
        int | None, typer.Option(help="Trials in the study, every worker's counted (default 25 without --time).")
    ] = None,
    time: Annotated[
        str | None,
        typer.Option(
            "--time", help="How long the command may take (baselines, search and front together), e.g. 90s, 60m, 1h30m."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="The sampler's seed.")] = 0,
    storage: Annotated[
        str | None,
        typer.Option(
            help="Optuna storage URL shared by several hosts, e.g. postgresql://user:pw@host/db (default:"
            " tune.db in the run folder)."
        ),
    ] = None,
    study: Annotated[str | None, typer.Option(help="Study name in --storage (every host names the same).")] = None,
    sweep: Annotated[
        Path | None, typer.Option("--sweep", help="Sweep file whose [tune] table narrows or widens the search space.")
    ] = None,
    baselines: Annotated[
        str | None,
        typer.Option(help="Hand-written recipes to beat, comma-separated (default: the compression table's)."),
    ] = None,
    allow_mixed_devices: Annotated[
        bool, typer.Option("--allow-mixed-devices", help="Let devices of different models share one study.")
    ] = False,
    threads: Annotated[
        int | None,
        typer.Option(
            help="Runtime threads for the trials, baselines and front (default: on this computer every core the"
            " process may use; on a phone one per pinned core. 0: the runtime's default)."
        ),
    ] = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Continue this tune run (id or folder) with its settings.")
    ] = None,
    run_id: RunIdOption = None,
    results: ResultsOption = Path("results"),
) -> None:
    """Search compression recipes on the device and show the Pareto front beside the baselines.

    Trials are ordinary rows of the run; the front is measured again with the full protocol in
    one sweep with fp32, int8 and the best hand-written recipe, and saved as tuned.toml.
    """
    _quiet_libraries()
    from pocketbench import crash
    from pocketbench.api import tune as run_tune
    from pocketbench.measure.settings import SettingsError
    from pocketbench.names import inside
    from pocketbench.progress import RichReporter
    from pocketbench.results.store import new_run_id

    if resume is None and model is None:
        raise PocketbenchError("name the model to tune: -m MODEL (or --resume RUN)")
    if resume is not None and run_id is not None:
        raise PocketbenchError("--resume continues the run it names: leave out --run-id")
    if resume is None:
        run_id = run_id or new_run_id()
        crash.run_folder = inside(results, run_id, "run id")
    try:
        with _device_choice_named_by_options(), RichReporter(stderr) as reporter:
            outcome = run_tune(
                model,
                device or ([] if resume else "local"),
                objective=objective,
                max_accuracy_drop=max_accuracy_drop,
                max_size_mb=max_size_mb,
                max_latency_ms=max_latency_ms,
                trials=trials,
                time=time,
                seed=seed,
                storage=storage,
                study=study,
                space=sweep,
                baselines=baselines,
                allow_mixed_devices=allow_mixed_devices,
                threads=threads,
                results=results,
                run_id=run_id,
                resume=resume,
                progress=reporter,
            )
    except SettingsError as exc:
        raise PocketbenchError(exc.naming(setting_flag)) from exc
    from pocketbench.tune.front_table import render_front

    stdout.print(render_front(outcome), crop=False)


@app.command()
def report(
    run: Annotated[str, typer.Argument(help="Run id, `latest`, `first`, or a run folder.")] = "latest",
    compare: Annotated[
        str | None, typer.Option("--compare", "-c", help="Baseline run (id, `first`, `latest` or folder).")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="table, md, csv, json, html or llama-bench (generative rows).")
    ] = "table",
    out: OutOption = None,
    results: ResultsOption = Path("results"),
    as_json: JsonOption = False,
    columns: ColumnsOption = None,
    wide: WideOption = False,
) -> None:
    """Show a saved run, optionally against a baseline run (deltas and a Mann-Whitney U test per cell)."""
    from pocketbench.report.write import REPORT_FORMATS, write_report
    from pocketbench.results.store import load_run, read_profiles

    shown_columns = _columns(columns)
    if fmt not in REPORT_FORMATS:
        raise PocketbenchError(f"--format {fmt!r}: use one of {', '.join(REPORT_FORMATS)}")
    if fmt == "table" and out is not None:
        raise PocketbenchError(
            "--out needs --format md, csv, json, html or llama-bench (the table is for the terminal)"
        )
    frame, manifest, folder = load_run(run, results)
    if as_json and compare is not None and fmt != "llama-bench":
        fmt = "json"
    if compare is None and fmt == "table":
        _show(frame, manifest["run_id"], folder, as_json, shown_columns, wide)
        return
    baseline = load_run(compare, results) if compare is not None else None
    events = read_profiles(folder)
    notes = _run_notes(folder, frame, events, baseline[0] if baseline is not None else None)
    if fmt == "table":
        from pocketbench.report.profile_view import render_profiles
        from pocketbench.report.terminal import render
        from pocketbench.report.write import baseline_notes, with_baseline

        compared, baseline_id = with_baseline(frame, baseline)
        notes = [*notes, *baseline_notes(frame, baseline)]
        stdout.print(render(compared, manifest["run_id"], baseline_id, notes, shown_columns, wide), crop=False)
        profiles = render_profiles(events)
        if profiles is not None:
            stdout.print(profiles)
        return
    if as_json and fmt == "llama-bench":  # the one JSON document on stdout, the table where tables go
        table = write_report(fmt, frame, manifest, results, baseline, out, notes, events, folder=folder)
        if out is None:
            stderr.print(table, markup=False, highlight=False, crop=False, end="")
        else:
            stderr.print(f"wrote {out}")
        fmt, out = "json", None
    text = write_report(fmt, frame, manifest, results, baseline, out, notes, events, folder=folder)
    if out is None:
        sys.stdout.write(text)
    else:
        stderr.print(f"wrote {out}")


@app.command()
def history(
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Only this model (repeatable).")] = None,
    variant: Annotated[
        list[str] | None, typer.Option("--variant", "-v", help="Only this variant (repeatable).")
    ] = None,
    device: Annotated[list[str] | None, typer.Option("--device", "-d", help="Only this device (repeatable).")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only cells started since a date (2026-11-01), a time, or an age (7d, 12h).")
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", "-f", help="csv, parquet or json (default: a summary table).")
    ] = None,
    samples: Annotated[
        bool, typer.Option("--samples", help="Export the raw sample lists too (the bulk of the data).")
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", min=0, help="Rows the summary table shows, newest last (0: every row).")
    ] = SUMMARY_ROWS,
    out: OutOption = None,
    results: ResultsOption = Path("results"),
) -> None:
    """Every saved run as one DataFrame (schema: docs/results-schema.md): a summary, or exported."""
    from pocketbench.results.history import parse_since

    if fmt == "parquet" and out is None:
        raise PocketbenchError("--format parquet writes a binary file: add --out FILE.parquet")
    try:
        start = parse_since(since) if since is not None else None
        where: dict[str, Any] = {"models": model, "variants": variant, "devices": device, "since": start}
        if fmt is None:
            _history_summary(results, where, limit)
            return
        rows, skipped, data = _history_export(results, where, samples, fmt, out)
    except BadValue as exc:
        options = {"start time": "--since", "export format": "--format"}
        raise PocketbenchError(exc.naming(options.get(exc.what, exc.what))) from exc
    _print_skipped(skipped)
    if data is not None:
        sys.stdout.buffer.write(data)
    else:
        stderr.print(f"wrote {rows} rows to {out}")


def _print_skipped(skipped: list[str]) -> None:
    for line in skipped:
        stderr.print(Text.assemble(("skipped", "yellow"), f" {line}"), soft_wrap=True, highlight=False)


def _history_summary(results: Path, where: dict[str, Any], limit: int) -> None:
    """The newest `limit` rows of the history matching `where` (load_history's filters), as a table."""
    from pocketbench.report.history_table import SUMMARY_COLUMNS, interrupted_runs, summary_table
    from pocketbench.results.history import load_history
    from pocketbench.results.history_arrow import NotColumnar, as_frame, load_history_table
    from pocketbench.results.scan import Filters

    try:  # only the shown rows become a pandas frame
        history = load_history_table(results, Filters(**where), columns=SUMMARY_COLUMNS, samples=False)
        table, skipped = history.table, history.skipped
        run_ids = [r for r in table["run_id"].unique().to_pylist() if r is not None]
        rows, shown = table.num_rows, as_frame(table.slice(max(0, table.num_rows - limit)) if limit else table)
    except NotColumnar:
        frame = load_history(results, **where, columns=SUMMARY_COLUMNS)
        skipped, run_ids = frame.attrs["skipped"], frame["run_id"].dropna().unique().tolist()
        rows, shown = len(frame), frame.tail(limit) if limit else frame
    _print_skipped(skipped)
    stdout.print(summary_table(shown, rows, len(run_ids), interrupted_runs(results, run_ids)))


def _history_export(
    results: Path, where: dict[str, Any], samples: bool, fmt: str, out: Path | None
) -> tuple[int, list[str], bytes | None]:
    """Rows written, files skipped, and the bytes (None: written to `out`). csv and parquet are
    written straight from Arrow (a year of runs never becomes a pandas frame); json, and history
    with a column type the Arrow writer does not print as pandas would, from the frame."""
    from pocketbench.results.history import check_format, export, load_history
    from pocketbench.results.scan import Filters

    check_format(fmt)
    if fmt in ("csv", "parquet"):
        from pocketbench.results.history_arrow import (
            NotColumnar,
            export_table,
            load_history_table,
            write_history_parquet,
        )

        if fmt == "parquet" and out is not None:
            try:  # a run at a time
                return (*write_history_parquet(results, out, Filters(**where), samples=samples), None)
            except NotColumnar:
                pass
        try:
            history = load_history_table(results, Filters(**where), samples=samples)
            return history.table.num_rows, history.skipped, export_table(history, fmt, out)
        except NotColumnar:
            pass
    frame = load_history(results, **where, samples=samples)
    return len(frame), frame.attrs["skipped"], export(frame, fmt, out)


@app.command()
def models() -> None:
    """List the built-in models (add your own as file.py:factory or module:factory)."""
    from rich.table import Table

    from pocketbench.models.registry import describe_builtins

    table = Table("model", "description", title="built-in models", title_justify="left")
    for name, description in describe_builtins():
        table.add_row(Text(name), Text(description))
    stdout.print(table)


@app.command()
def devices(
    probe: Annotated[
        list[str] | None,
        typer.Option(
            "--device",
            "-d",
            help="Also probe these phones: tcp:HOST:PORT, or adb://HOST:PORT for every phone of another host's"
            " adb server (a section each); with --check, check only the phones named.",
        ),
    ] = None,
    farm_matrix: Annotated[
        Path | None, typer.Option("--farm", help="Also list the [[servers]] of this farm matrix, a section each.")
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Push the runner to the phones named with -d (none named: every usable phone listed), run a"
            " tiny model there and compare with this computer.",
        ),
    ] = False,
) -> None:
    """List every phone, one line each with the routes that reach it (adb server, USB, tcp:), its
    state, runner and fix, and this computer; then one section per other host's adb server."""
    from pocketbench.devices.adb.discover import find_phones
    from pocketbench.devices.adb.server_address import is_server_spec, parse_server_spec
    from pocketbench.devices.local import LocalDevice
    from pocketbench.devices.select import PHONE_ROUTES, expand_servers

    named = probe or []
    servers = [(str(address), address) for address in (parse_server_spec(s)[0] for s in named if is_server_spec(s))]
    if farm_matrix is not None:
        from pocketbench.farm import load_matrix

        servers += [(f"{s.name} ({s.address})", s.address) for s in load_matrix(farm_matrix).servers]
    found, notes = find_phones([s for s in named if s.startswith("tcp:")])
    # One line per phone: routes reaching the same phone (its ro.serialno) are merged into it.
    lines = _phone_lines(found)
    info = LocalDevice().info()
    table = _devices_table("devices", lines)
    table.add_row(*map(Text, (info.device_id, "device", info.model, info.abi, info.os, info.cpu, "", "")))
    stdout.print(table)
    stdout.print("searched: " + "; ".join(notes), highlight=False, markup=False)
    for title, address in dict.fromkeys(servers):
        _server_section(title, address, lines)
    if check:
        usable = [routes[0] for routes, cells in lines.values() if cells[0] == "device"]
        if named:
            bad = [s for s in named if not s.startswith(PHONE_ROUTES)]
            if bad:
                raise PocketbenchError(f"--device {bad[0]!r}: --check takes phones (tcp:, adb:, adb://, usb:)")
            specs, which = expand_servers(named), "the phones named with -d"
        else:
            specs, which = usable, "every usable phone listed above (name some with -d)"
        _check_phones(specs, which)


PhoneLines = dict[str, tuple[list[str], tuple[str, ...]]]


def _phone_lines(found: list[Any], lines: PhoneLines | None = None) -> PhoneLines:
    """One line per phone (key: its ro.serialno, else its spec) → its routes and its cells (state,
    model, abi, os, cpu, runner, fix); usable phones are asked who they are."""
    from pocketbench.devices.adb.device import AdbDevice
    from pocketbench.devices.adb.runner_choice import choose_runner

    lines = {} if lines is None else lines
    for phone in found:
        key = phone.spec
        cells: tuple[str, ...] = (phone.state, "", "", "", "", "", phone.fix)
        if phone.usable:
            device = AdbDevice(phone.spec, reconnect_wait_s=5)
            try:
                info = device.info()
                key = f"serial {info.extra['serial']}" if info.extra.get("serial") else phone.spec
                try:
                    runner = choose_runner(info.abi).describe()
                except PocketbenchError as exc:
                    runner = str(exc)
                model_name = f"{info.model} (emulated: {info.emulation})" if info.emulated else info.model
                cells = (phone.state, model_name, info.abi, info.os, info.cpu, runner, "")
            except PocketbenchError as exc:
                key, cells = phone.spec, ("error", "", "", "", "", "", str(exc))
            finally:
                device.close()
        lines.setdefault(key, ([], cells))[0].append(phone.spec)
    return lines


def _devices_table(title: str, lines: PhoneLines) -> Any:
    from rich.table import Table

    table = Table("device", "state", "model", "abi", "os", "cpu", "runner", "fix", title=title, title_justify="left")
    for routes, cells in lines.values():
        table.add_row(*map(Text, (", ".join(routes), *cells)))
    return table


def _server_section(title: str, address: Any, lines: PhoneLines) -> None:
    """Another host's adb server: its phones, each with its state and fix (or why it is silent);
    its usable phones join `lines` for --check."""
    from pocketbench.devices.adb.discover import list_server

    found, note = list_server(address)
    own = _phone_lines(found, {})
    for key, (routes, cells) in own.items():
        lines.setdefault(f"{address} {key}", (routes, cells))
    shown = {key: ([route.rsplit("/", 1)[-1] for route in routes], cells) for key, (routes, cells) in own.items()}
    stdout.print(_devices_table(f"adb server {title} (each phone: {address.spec}/SERIAL)", shown))
    stdout.print(note, highlight=False, markup=False, style=None if found else "red")


def _check_phones(specs: list[str], which: str) -> None:
    """`devices --check`: PASS or FAIL with the reason per phone; exit 1 when any phone fails."""
    from pocketbench.devices.adb.self_check import run_checks

    if not specs:
        raise PocketbenchError("no usable phone to check: attach one (see `pocketbench devices` above for the fix)")
    _quiet_libraries()
    stdout.print(f"checking {', '.join(specs)}: {which}", highlight=False, markup=False, soft_wrap=True)
    with stderr.status(f"checking {', '.join(specs)}: pushing the runner and running the self-check model"):
        results = run_checks(specs)
    for result in results:
        style = "green" if result.passed else "red"
        stdout.print(result.line(), style=style, markup=False, highlight=False, soft_wrap=True)
    if not all(r.passed for r in results):
        raise typer.Exit(1)


def _show(
    frame: pd.DataFrame, run_id: str, folder: Path, as_json: bool, columns: list[str] | None = None, wide: bool = False
) -> None:
    from pocketbench.report.profile_view import render_profiles
    from pocketbench.report.table import run_json
    from pocketbench.report.terminal import render
    from pocketbench.results.store import read_profiles

    events = read_profiles(folder)
    notes = _run_notes(folder, frame, events)
    shown = [render(frame, run_id, notes=notes, columns=columns, wide=wide)]
    profiles = render_profiles(events)
    if profiles is not None:
        shown.append(profiles)
    console = stderr if as_json else stdout
    for part in shown:
        console.print(part, crop=False)  # --wide: lines past the terminal's edge, not cut off
    if as_json:
        print(json.dumps(run_json(frame, run_id, folder, notes=notes)))
    else:
        console.print(f"saved in {folder}")


def _run_notes(
    folder: Path, frame: pd.DataFrame, events: pd.DataFrame, baseline: pd.DataFrame | None = None
) -> list[str]:
    """What to say about the run: interrupted, and every file of it (or of its baseline) left out."""
    from pocketbench.results.store import run_notes

    notes = [*run_notes(folder, frame), *(f"unreadable: {line}" for line in events.attrs.get("skipped", []))]
    if baseline is not None:
        notes += [f"unreadable (baseline): {line}" for line in baseline.attrs.get("skipped", [])]
    return notes


# `pocketbench emulator --port N`: an emulated phone for demos and CI without a device.
app.command("emulator")(emulator_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every failure becomes one line and an exit code, never a traceback
    (`--debug` shows it): crash.py lists the codes. With no `argv` this is the process's own
    entry: the signal handling stays until the process ends (see _signals_interrupt)."""
    from pocketbench import crash

    crash.run_folder, crash.resume_hint = None, None
    try:
        with _signals_interrupt(process=argv is None) as signals:
            _main(argv, signals)
    except Interrupted as stop:  # landed as the handlers went in, before the command started
        _interrupted(stop)


def _main(argv: list[str] | None, signals: _Signals) -> None:
    from pocketbench import crash

    try:
        try:
            code = app(args=argv, prog_name="pocketbench", standalone_mode=False)
        finally:
            signals.finished = True  # from here on only the answer is written: a signal changes nothing
    except (typer.Abort, KeyboardInterrupt, Interrupted) as stop:
        _interrupted(stop)
    except PocketbenchError as exc:
        _debug_traceback()
        _error(str(exc))
        sys.exit(crash.EXIT_ERROR)
    except OSError as exc:  # the environment refused (a path, the disk, the network): say which
        _debug_traceback()
        saved = sum(_saved_cells())
        if saved:  # a full disk mid-run: what was measured before it is kept, and the code says partial
            _error(f"{_os_error(exc)}; {saved} cell(s) measured before it are kept in {crash.run_folder}")
            sys.exit(crash.EXIT_INCOMPLETE)
        _error(_os_error(exc))
        sys.exit(crash.EXIT_ERROR)
    except Exception as exc:
        if _is_usage_error(exc):
            _usage(exc)
        _debug_traceback()
        command = _command_name(argv if argv is not None else sys.argv[1:])
        try:
            log = crash.write_log(exc, command)
        except OSError:
            log = None
        _error(crash.crash_line(exc, command, log))
        sys.exit(crash.EXIT_INTERNAL)
    sys.exit(code or 0)


class _Signals:
    """Whether the command has finished: a signal after that is ignored (its answer is being
    written, or the interpreter is shutting down) instead of raising where nothing catches it."""

    finished = False


@contextmanager
def _signals_interrupt(process: bool = False) -> Iterator[_Signals]:
    """Ctrl-C and SIGTERM raise Interrupted in the main thread while the command runs: every
    `with` and `finally` on the way out runs (scratch folders removed, the run marked
    interrupted), and typer, which would turn a KeyboardInterrupt into a bare exit 130, lets it
    through to main. Once the command has finished, a signal is ignored. Called in-process, the
    previous handlers come back afterwards; as the process's entry (`process`) the signals are
    ignored from then on, so one while the interpreter shuts down ends in neither a traceback nor
    a death by the signal."""
    import signal
    import threading

    signals = _Signals()
    if threading.current_thread() is not threading.main_thread():
        yield signals
        return

    def stop(signum: int, _frame: object) -> None:
        if signals.finished:
            return
        interrupted = Interrupted(signum, signal.Signals(signum).name)
        request_interrupt(interrupted)  # raised again where work is saved, should this one be swallowed
        raise interrupted

    def quiet(unraisable: sys.UnraisableHookArgs) -> None:
        """A signal that landed where Python cannot raise (a callback at fork) is raised again later:
        no `Exception ignored … Traceback` for it."""
        if not isinstance(unraisable.exc_value, Interrupted):
            default_hook(unraisable)

    request_interrupt(None)
    default_hook, sys.unraisablehook = sys.unraisablehook, quiet
    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield signals
    finally:
        signals.finished = True
        if process:
            # The interpreter's shutdown puts the default handlers back, under which a late Ctrl-C
            # would kill the process by the signal; an ignored signal it leaves ignored.
            for signum in previous:
                signal.signal(signum, signal.SIG_IGN)
        else:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            sys.unraisablehook = default_hook


def _interrupted(stop: BaseException) -> None:
    """One line: how many cells the run kept and how to carry on; exit 128 + the signal."""
    from pocketbench import crash

    signum = stop.signum if isinstance(stop, Interrupted) else 2
    done, cut = _saved_cells()
    if crash.run_folder is None or not crash.run_folder.is_dir():
        line = "interrupted: nothing was measured"
    else:
        carry_on = (
            f"resume with `{crash.resume_hint}`"
            if crash.resume_hint
            else f"`pocketbench report {crash.run_folder.name}` shows them; rerun the command for the rest"
        )
        partial = f" (and {cut} cut short: partial)" if cut else ""
        line = f"interrupted: {done} cell(s) measured{partial} and kept in {crash.run_folder}; {carry_on}"
    stderr.print(Text(line.translate(_CONTROL), style="yellow"), soft_wrap=True, highlight=False)
    sys.exit(128 + signum)


def _saved_cells() -> tuple[int, int]:
    """Cells the run under way has kept: (finished, partial); none when no run claimed its folder."""
    from pocketbench import crash

    folder = crash.run_folder
    if folder is None or not folder.is_dir():
        return 0, 0
    from pocketbench.results.store import saved_cells

    try:
        return saved_cells(folder)
    except OSError:
        return 0, 0


def _is_usage_error(exc: Exception) -> bool:
    """Click's errors about the command line (typer vendors click, so match by class name)."""
    return any(c.__name__ == "ClickException" for c in type(exc).__mro__)


def _usage(exc: Exception) -> None:
    """A bad command line: one line naming the option and where the options are listed."""
    if type(exc).__name__ == "NoArgsIsHelpError":  # bare `pocketbench`: the help, as --help shows it
        exc.show()  # type: ignore[attr-defined]
        sys.exit(0)
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "pocketbench"
    _error(f"{exc.format_message()} (`{command} --help` lists the options)")  # type: ignore[attr-defined]
    sys.exit(1)


# C0 and C1 controls and the Unicode line separators, each shown as its escape.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(32), *range(0x7F, 0xA0))} | {
    0x2028: "\\u2028", 0x2029: "\\u2029", ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"
}  # fmt: skip


# The longest error line shown: the values it quotes are cut to SHOWN_CHARS where they enter it,
# and this catches a message that quotes a user's value some other way (a library's own text).
ERROR_LINE_MAX = 2000


def _error(message: str) -> None:
    """One line whatever the message quotes: control characters (a newline in a path) are shown
    escaped, and a line longer than ERROR_LINE_MAX is cut, saying by how much."""
    if len(message) > ERROR_LINE_MAX:
        message = f"{message[:ERROR_LINE_MAX]}… ({len(message) - ERROR_LINE_MAX} more characters cut)"
    stderr.print(Text.assemble(("error:", "red"), " " + message.translate(_CONTROL)), soft_wrap=True, highlight=False)


def _debug_traceback() -> None:
    if _debug:
        import traceback

        stderr.print(traceback.format_exc(), markup=False, highlight=False, soft_wrap=True)


def _os_error(exc: OSError) -> str:
    what = exc.strerror or first_line(exc)
    if exc.filename is not None:
        name = str(exc.filename)
        return f"{name if len(name) <= SHOWN_CHARS else shown(name)}: {what}"
    return f"{type(exc).__name__}: {what}"


def _command_name(argv: list[str]) -> str:
    return next((a for a in argv if not a.startswith("-")), "")
