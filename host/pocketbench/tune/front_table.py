"""What `pocketbench tune` prints: the re-measured front beside the baselines, then the search."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from pocketbench.report.terminal import render
from pocketbench.tune.search import TuneRun

# recipe (the row name), accuracy and Δ, p50 with CI, speedup, size, energy (blank where unmeasured)
FRONT_COLUMNS = ["accuracy", "p50", "speedup", "size", "energy", "pareto"]
DASHBOARD = "optuna-dashboard {storage}"


def render_front(run: TuneRun) -> Group:
    """The front (variants named `tuned-…`) and the baselines, measured together, and how to go on."""
    result = run.result
    roles = [f"front: {', '.join(result.front) or 'empty'}", f"baselines: {', '.join(result.baselines)}"]
    if result.best_hand_written:
        roles.append(f"best hand-written meeting the constraints: {result.best_hand_written}")
    parts: list[Group | Text] = [render(result.frame, run.run_id, notes=result.notes, columns=FRONT_COLUMNS)]
    parts.append(Text("; ".join(roles)))
    searched = f"study {run.study!r} in {run.storage}: {run.trials} trials with rows ({run.pruned} pruned early)"
    parts.append(Text(searched))
    if result.tuned_toml is not None:
        toml = result.tuned_toml
        same = f" --threads {result.threads}" if result.threads is not None else ""
        parts.append(Text(f"front as a sweep file: {toml} (reproduce: pocketbench bench --sweep {toml}{same})"))
    dashboard = DASHBOARD.format(storage=run.storage)
    parts.append(Text(f"every trial and the front: {result.report}; the study: {dashboard}"))
    return Group(*parts)
