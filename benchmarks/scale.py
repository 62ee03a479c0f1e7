"""A year of nightly data: how `history`, `report --compare`, a night's farm verdicts and the HTML
report grow with the results folder (10, 100, 365 and 1 000 runs of 600 cells).

The rows are replicated, not measured: one real run (`scale.py RUN_ID`, a run in results/; by
default the committed CI run of tests/data, measured on this machine) is copied to 600 cells
(its cells × model copies × phone copies) and to one run per night, each night's copy shifted in
time and its latencies scaled by a small fixed factor. Each command runs in its own process:
its wall time and peak RSS (the kernel's maxrss of that process) are what the table gives.
"""

from __future__ import annotations

import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pocketbench
from _results_md import load_note, saved_run, write_section
from matplotlib.figure import Figure
from pocketbench.results.store import COLUMNS, atomic_write_parquet, read_run

# Runs per results folder; POCKETBENCH_SCALE_RUNS=10,100 measures fewer (a busy machine).
SCALES = tuple(int(n) for n in os.environ.get("POCKETBENCH_SCALE_RUNS", "10,100,365,1000").split(","))
CELLS, PHONES = 600, 15
FARM = "scale"
PLOT = Path(__file__).with_name("scale.png")
SOURCE = Path(__file__).parent.parent / "tests" / "data" / "ci_run"
# What each command should take over a year of nights (365 runs × 600 cells), wall time.
TARGETS = {
    "history (all rows, summary table)": "≤ 2 s, ≤ 1 GB",
    "history --format parquet (all rows)": "≤ 2 s, ≤ 1 GB",
    "history --model M --since 30d --format csv": "≤ 0.5 s",
    "report NEWEST --compare PREVIOUS": "≤ 2 s",
    "farm verdicts of the newest night": "≤ 5 s",
    "report NEWEST --compare PREVIOUS --format html": "≤ 10 s",
}
LATENCY = ["latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_mean_ms", "latency_min_ms", "latency_max_ms"]


def template(real: pd.DataFrame) -> pd.DataFrame:
    """600 cells from the real run's: each of its cells on PHONES phone copies and as many model
    copies as fill 600 (names say they are replicas: `phone-07`, `digits_cnn-r03`)."""
    models = CELLS // (PHONES * len(real))
    copies = []
    for phone in range(PHONES):
        for copy in range(models):
            copies.append(real.assign(device=f"phone-{phone:02d}", model=real["model"] + f"-r{copy:02d}"))
    frame = pd.concat(copies, ignore_index=True)
    assert len(frame) == CELLS, f"{len(real)} real cells do not fill {CELLS}"
    return frame


def write_nights(pool: Path, cells: pd.DataFrame, nights: int) -> list[Path]:
    """One finished farm run per night, the newest last night: manifest.json and results.parquet
    (what every reader of a finished run opens; its cells/ files are left out to save disk),
    results.parquet last modified when the night's cells were done."""
    today = datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0)
    folders = []
    for night in range(nights):
        created = today - timedelta(days=nights - 1 - night)
        run_id = created.strftime("%Y%m%d-%H%M%S-") + f"{night:06x}"
        factor = 1.0 + 0.01 * ((night * 7) % 5 - 2)  # a fixed wander: -2 % … +2 %
        frame = cells.copy()
        frame["run_id"] = run_id
        frame["started_at"] = [(created + timedelta(seconds=i)).isoformat() for i in range(len(frame))]
        for column in LATENCY:
            frame[column] = frame[column] * factor
        samples = frame["latency_samples_ms"]
        frame["latency_samples_ms"] = [None if s is None else [v * factor for v in s] for s in samples]
        folder = pool / run_id
        folder.mkdir(parents=True)
        config = {"kind": "farm", "farm": FARM, "replicated_from": "benchmarks/scale.py"}
        manifest = {
            "schema_version": 2,
            "run_id": run_id,
            "created": created.isoformat(),
            "git_sha": None,
            "host": {"node": "replica"},
            "versions": {},
            "devices": {},
            "config": config,
        }
        (folder / "manifest.json").write_text(json.dumps(manifest))
        atomic_write_parquet(frame, folder / "results.parquet")
        # Written when the night's last cell was done, as a nightly farm leaves it.
        finished = (created + timedelta(seconds=len(frame))).timestamp()
        os.utime(folder / "results.parquet", (finished, finished))
        folders.append(folder)
    return folders


def newest(pool: list[Path], runs: int, root: Path) -> Path:
    """A results folder holding the newest `runs` nights (their files hard-linked from the pool:
    run folders reached through a symbolic link are refused)."""
    for folder in pool[-runs:]:
        (root / folder.name).mkdir(parents=True)
        for path in folder.iterdir():
            os.link(path, root / folder.name / path.name)
    return root


Measured = tuple[float, float, float]  # wall seconds, CPU seconds, peak RSS MB


# Started by a small Python that has loaded nothing: the kernel's peak RSS of a process counts the
# memory it inherited at fork, so a command forked by this benchmark (pandas and a year of nights
# loaded) would show this benchmark's size, not its own.
LAUNCHER = """
import json, os, subprocess, sys, time
started = time.perf_counter()
process = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
error = process.stderr.read().decode()
_, status, usage = os.wait4(process.pid, 0)
seconds = time.perf_counter() - started
print(json.dumps([status, error, seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024]))
"""


TIMES = 3  # each command runs this many times: the median wall and CPU time, the largest peak RSS


def measured(args: list[str], out: Path | None = None) -> Measured:
    """Wall seconds, CPU seconds (user + system: the work itself, which other jobs on a shared
    machine do not stretch) and peak RSS (MB) of one command, each run in its own process: the
    median of TIMES runs (one run's figure moves by a tenth on this shared machine), the largest
    RSS. `out`, the file the command writes, is removed before each run (nothing is overwritten)."""
    runs = []
    for _ in range(TIMES):
        if out is not None:
            out.unlink(missing_ok=True)
        launcher = subprocess.run([sys.executable, "-c", LAUNCHER, *args], capture_output=True, text=True, check=True)
        status, error, seconds, cpu, rss = json.loads(launcher.stdout)
        if status != 0:
            raise SystemExit(f"{' '.join(args)} failed: {error}")
        runs.append((seconds, cpu, rss))
    return (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs), max(r[2] for r in runs))


VERDICTS = """
import sys
from pathlib import Path
from pocketbench.farm.matrix import RegressionSettings
from pocketbench.farm.nightly import judge_run
root, run_id = Path(sys.argv[1]), sys.argv[2]
table = judge_run(root, "scale", run_id, RegressionSettings())
assert len(table) > 0, "no verdicts"
"""


def commands(root: Path, scratch: Path) -> dict[str, list[str]]:
    pb = [sys.executable, "-m", "pocketbench"]
    runs = sorted(p.name for p in root.iterdir())
    model = "digits_cnn-r00"
    return {
        "history (all rows, summary table)": [*pb, "history", "--results", str(root)],
        "history --format parquet (all rows)": [
            *pb,
            "history",
            "--results",
            str(root),
            "--format",
            "parquet",
            "--out",
            str(scratch / f"h{len(runs)}.parquet"),
        ],
        "history --model M --since 30d --format csv": [
            *pb,
            "history",
            "--results",
            str(root),
            "--model",
            model,
            "--since",
            "30d",
            "--format",
            "csv",
        ],
        "report NEWEST --compare PREVIOUS": [*pb, "report", runs[-1], "--compare", runs[-2], "--results", str(root)],
        "farm verdicts of the newest night": [sys.executable, "-c", VERDICTS, str(root), runs[-1]],
        "report NEWEST --compare PREVIOUS --format html": [
            *pb,
            "report",
            runs[-1],
            "--compare",
            runs[-2],
            "--format",
            "html",
            "--results",
            str(root),
            "--out",
            str(scratch / f"r{len(runs)}.html"),
        ],
    }


def main() -> None:
    chosen = saved_run(sys.argv[1:])
    name, real = (chosen[0], chosen[1]) if chosen else (f"tests/data/{SOURCE.name}", read_run(SOURCE))
    real = real[[c for c in real.columns if c in COLUMNS or c.startswith("device_")]]
    cells = template(real)
    samples = int(real["latency_samples_ms"].map(lambda s: 0 if s is None else len(s)).max())
    results: dict[str, dict[int, Measured]] = {}
    sizes: dict[int, float] = {}
    # An installed pocketbench has its bytecode (pip compiles it at install): the commands are timed,
    # not Python compiling the package's source, which a tree run with PYTHONDONTWRITEBYTECODE redoes
    # in every process.
    compileall.compile_dir(Path(pocketbench.__file__).parent, quiet=1)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        pool = write_nights(Path(scratch) / "pool", cells, max(SCALES))
        for runs in SCALES:
            root = newest(pool, runs, Path(scratch) / f"results-{runs}")
            for label, args in commands(root, Path(scratch)).items():
                out = Path(args[args.index("--out") + 1]) if "--out" in args else None
                results.setdefault(label, {})[runs] = (seconds, cpu, rss) = measured(args, out)
                print(f"{runs:5d} runs  {label}: {seconds:.2f} s ({cpu:.2f} s CPU), {rss:.0f} MB", flush=True)
            sizes[runs] = (Path(scratch) / f"r{runs}.html").stat().st_size / 1e6
    load_after = os.getloadavg()[0]
    plot(results)
    header = "| command | target at 365 runs | " + " | ".join(f"{r} runs ({r * CELLS:,} rows)" for r in SCALES) + " |"
    lines = [header, "|---|---|" + "---|" * len(SCALES)]
    for label, by_runs in results.items():
        cells = (f"{s:.2f} s ({c:.2f} s CPU), {m:.0f} MB" for s, c, m in by_runs.values())
        lines.append(f"| `{label}` | {TARGETS.get(label, '')} | " + " | ".join(cells) + " |")
    lines.append("| HTML report size | ≤ 5 MB | " + " | ".join(f"{sizes[r]:.2f} MB" for r in SCALES) + " |")
    body = "\n".join(
        [
            f"Replicated, not measured: the {len(real)} real cells of `{name}` ({samples} raw samples each) copied "
            f"to {CELLS} cells per run ({PHONES} phone copies × model copies) and to one farm run per night, "
            "each night shifted in time and its latencies scaled by a fixed factor between 0.98 and 1.02. "
            "The copies repeat each real cell's figures, so a night holds fewer distinct values than a real "
            "one (the csv export prints each distinct number once). "
            "Each command runs three times, each in its own process at normal priority, pocketbench's "
            "bytecode compiled first as an install leaves it: the median wall time and CPU time (user + "
            "system), and the largest peak RSS. The runs hold "
            "manifest.json and results.parquet (the files a reader of a finished run opens), the latter "
            "last modified when its night's cells were done, as a nightly farm leaves it (`--since` "
            "leaves unopened the files written over a day before it).",
            "",
            load_note(load_before, load_after),
            "",
            *lines,
            "",
            f"![time against rows]({PLOT.name})",
        ]
    )
    write_section("scale", "Scale: a year of nightly data", body)
    print(body)


def plot(results: dict[str, dict[int, Measured]]) -> None:
    """Left: CPU seconds against rows (wall time on a shared machine measures the other jobs too),
    log-log, with a line of slope 1 (linear growth) for reference. Right: peak RSS against rows."""
    fig = Figure(figsize=(12, 4.5))
    seconds, memory = fig.subplots(1, 2, gridspec_kw={"wspace": 0.3})
    rows = [r * CELLS for r in SCALES]
    for label, by_runs in results.items():
        seconds.plot(rows, [by_runs[r][1] for r in SCALES], marker="o", label=label)
        memory.plot(rows, [by_runs[r][2] for r in SCALES], marker="o", label=label)
    top = max(by_runs[SCALES[-1]][1] for by_runs in results.values())
    seconds.plot(rows, [top * r / rows[-1] for r in rows], color="#999", linestyle="--", label="linear growth")
    for ax, label in ((seconds, "CPU time (s)"), (memory, "peak RSS (MB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rows in the results folder (600 per run)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    seconds.set_title("time against rows (replicated nightly runs)")
    memory.set_title("peak memory against rows")
    seconds.legend(fontsize=7, loc="upper left")
    fig.savefig(PLOT, dpi=90, bbox_inches="tight")


if __name__ == "__main__":
    main()
