"""The farm's Python API: one call runs a matrix end to end — checked, planned, measured on every
phone at once, judged against earlier nights, its reports written. `pocketbench farm` is this call
plus a terminal; a scheduler or a notebook calls it the same way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pocketbench.farm.matrix import Matrix, load_matrix
from pocketbench.farm.regress import REGRESSION
from pocketbench.progress import FAILED, Reporter
from pocketbench.report.verdict_table import VerdictTable
from pocketbench.results.cell_status import CellStatus


@dataclass(frozen=True)
class FarmResult:
    """What one farm run measured and concluded."""

    run_id: str
    folder: Path
    frame: pd.DataFrame  # every row of the run, each attempt included
    judged: pd.DataFrame  # one verdict per cell and metric, against the farm's history (saved too)
    verdicts: VerdictTable  # the same, as the terminal and the reports show it
    reports: list[Path]  # the markdown and HTML written beside the run
    hosts_down: dict[str, str] = field(default_factory=dict)  # [[servers]] that listed no phone: name → why

    @property
    def regressed(self) -> bool:
        """A significant regression against earlier nights."""
        return bool((self.judged["verdict"] == REGRESSION).any())

    @property
    def incomplete(self) -> bool:
        """No rows, a cell that failed, was not run or is partial, or a lab host whose phones
        could not be listed."""
        return self.frame.empty or bool((self.frame["status"] != CellStatus.OK).any()) or bool(self.hosts_down)


def run_matrix(
    matrix: Path | Matrix,
    results: Path,
    *,
    run_id: str | None = None,
    lease_wait_s: float = 0.0,
    max_parallel: int | None = None,
    wait_for_device: float = 0.0,
    reporter: Reporter | None = None,
    plan: Callable[[Sequence[tuple[str, str, str | None]], Matrix], None] | None = None,
    started: Callable[[Path, str], None] | None = None,
) -> FarmResult:
    """Run `matrix` (a TOML path or a parsed Matrix) into `results`, resuming `run_id` when given.

    `plan` gets the cells (model, variant, device) and the matrix once every name is checked and
    before any phone is opened: it may say what the run will do, or raise to stop it. `started`
    gets the run's folder and id once the folder is claimed (where a crash log would go). The
    phones of a [[servers]] entry no [[devices]] names are the ones its adb server lists now; a
    server that lists none is said through `reporter`, and the other hosts' phones still run.
    """
    from pocketbench.devices.select import check_runners
    from pocketbench.farm.hosts import list_server_phones
    from pocketbench.measure.plan import check_names
    from pocketbench.names import safe_name
    from pocketbench.results.store import RunStore, new_run_id

    if run_id is not None:
        safe_name(run_id, "run id")
    parsed, hosts_down = list_server_phones(load_matrix(matrix) if isinstance(matrix, Path) else matrix)
    reporter = reporter or Reporter()
    for server, why in hosts_down.items():
        reporter.note(f"server {server}: {why}", FAILED)
    check_names(list(parsed.models), [v for variants in parsed.models.values() for v in variants])
    if plan is not None:
        plan([(c.model, c.variant, c.device) for c in parsed.expand()], parsed)
    # What measures and judges (torch, the plots) only once the names and the plan stand.
    from pocketbench.farm.nightly import judge, verdict_table, write_reports
    from pocketbench.farm.run import open_farm_devices, run_farm

    devices, absent = open_farm_devices(parsed, wait_for_device)
    check_runners(list(devices.values()))
    store = RunStore(results, run_id or new_run_id(), resume=run_id is not None)
    if started is not None:
        started(store.folder, store.run_id)
    outcome = run_farm(
        parsed,
        store,
        devices,
        reporter,
        lease_wait_s=lease_wait_s,
        max_parallel=max_parallel,
        absent=absent,
    )
    outcome.quarantined.update({f"server {name}": why for name, why in hosts_down.items()})
    judged = judge(outcome, parsed, results)
    table = verdict_table(judged, outcome)
    reports = write_reports(outcome, table, parsed, results)
    return FarmResult(outcome.run_id, outcome.folder, outcome.frame, judged, table, reports, hosts_down)
