"""`pocketbench tune` against its "Done when" → the "tune" section of benchmarks/RESULTS.md.

Runs `pocketbench tune -m MODEL -d local --max-accuracy-drop 1 --time TIME` (MODEL from
$POCKETBENCH_TUNE_MODEL, default mobilenet_v2; TIME from $POCKETBENCH_TUNE_TIME, default 60m) into
results/, then writes the section from that run's own data: its rows (trials, hand-written recipes,
the re-measured front and baselines), its study (tune.db) and front.json. `python
benchmarks/tune.py RUN_ID` writes the section again from a saved run without measuring.

The claim checked: a front member at most 1 point below fp32 and at least 1.3× faster (p50, the
two CIs apart) than the fastest hand-written recipe of the compression table that is also within
1 point, measured in the same run; and no hand-written recipe dominating a front member.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from _results_md import load_note, write_section
from pocketbench.results.store import read_cells
from pocketbench.tune import study as studies

MODEL = os.environ.get("POCKETBENCH_TUNE_MODEL", "mobilenet_v2")
TIME = os.environ.get("POCKETBENCH_TUNE_TIME", "60m")
DROP = 1.0
SPEEDUP = 1.3
RESULTS = Path("results")
RELATED = (
    "**Beside the published searches.** AMC (He et al., ECCV 2018) searches per-layer channel-prune ratios"
    " with a reinforcement-learning agent under a FLOPs budget, rewarded with the pruned network's accuracy"
    " before fine-tuning; it reports 1.81–1.95× measured on a Pixel 1 for MobileNet-V1 at −0.1 point top-1."
    " HAQ (Wang et al., CVPR 2019) searches per-layer weight and activation bit widths with the latency and"
    " energy of a hardware simulator (its code ships lookup tables), 1.4–1.95× over fixed 8-bit. NetAdapt"
    " (Yang et al., ECCV 2018) shrinks one layer at a time until a latency budget, driven by latency tables"
    " measured on the target device, up to 1.7× at equal or better accuracy on MobileNets. This search is"
    " smaller in what it changes (quantization, observers, fp32 layers kept, a channel budget spread by"
    " measured sensitivity, batch-norm recalibration and distillation) and its signal is the p50 of every"
    " candidate measured on the device itself, with the front measured again beside the hand-written recipes."
)


def run_search() -> Path:
    """`pocketbench tune` as a user runs it; the run folder it wrote."""
    from pocketbench.results.store import new_run_id

    run_id = f"tune-{MODEL}-{new_run_id()}"
    command = [
        sys.executable, "-m", "pocketbench", "tune", "-m", MODEL, "-d", "local", "--max-accuracy-drop", f"{DROP:g}",
        "--time", TIME, "--run-id", run_id, "--results", str(RESULTS),
    ]  # fmt: skip
    print("$", " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True)
    return RESULTS / run_id


def _latest(folder: Path, name: str) -> Path:
    """`name`, or the last `stem-N` a resumed run wrote."""
    stem, suffix = name.rsplit(".", 1)
    found = sorted(folder.glob(f"{stem}*.{suffix}"), key=lambda p: (len(p.name), p.name))
    if not found:
        sys.exit(f"{folder}: no {name}: the search did not reach its front")
    return found[-1]


def _ms(row: Any) -> str:
    low, high = row.get("latency_p50_ci_low_ms"), row.get("latency_p50_ci_high_ms")
    ci = f" [{low:.3g}, {high:.3g}]" if _number(low) and _number(high) else " (no CI)"
    return f"{row['latency_p50_ms']:.3g} ms{ci}"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not math.isnan(value)


def _apart_and_faster(fast: Any, slow: Any) -> tuple[float, bool]:
    """(p50 speedup of `fast` over `slow`, whether their p50 CIs do not overlap)."""
    speedup = float(slow["latency_p50_ms"]) / float(fast["latency_p50_ms"])
    high, low = fast.get("latency_p50_ci_high_ms"), slow.get("latency_p50_ci_low_ms")
    return speedup, _number(high) and _number(low) and float(high) < float(low)


def _dominates(a: Any, b: Any) -> bool:
    """`a` at least as accurate and as fast as `b` (p50), and better in one."""
    acc_a, acc_b = float(a["accuracy"]), float(b["accuracy"])
    ms_a, ms_b = float(a["latency_p50_ms"]), float(b["latency_p50_ms"])
    return acc_a >= acc_b and ms_a <= ms_b and (acc_a > acc_b or ms_a < ms_b)


def _choices(params: dict[str, Any]) -> str:
    quant = params.get("quantization", "none")
    if quant == "int8":
        quant = f"int8 ({params.get('observer', 'minmax')} observer)"
    kept = params.get("keep_fp32", 0) if params.get("quantization") == "int8" else "—"
    ratio = float(params.get("prune_ratio", 0.0))
    prune = f"{ratio:.0%} of channels ({params.get('prune_allocation', 'sensitivity')})" if ratio else "none"
    if ratio:
        epochs = int(params.get("distill_epochs", 0))
        recovery = "recalibration" + (f" + {epochs} distillation epoch(s)" if epochs else "")
    else:
        recovery = "—"
    return f"{quant} | {kept} | {prune} | {recovery}"


@dataclass
class Run:
    """What the section is computed from: the run's rows, its study and front.json."""

    folder: Path
    config: dict[str, Any]
    roles: dict[str, Any]
    cells: pd.DataFrame
    trials: list[Any]
    again: pd.DataFrame  # the re-measured front and baselines, by variant
    ref: float  # fp32's accuracy, points

    @staticmethod
    def load(folder: Path) -> Run:
        config = json.loads((folder / "manifest.json").read_text())["config"]
        roles = json.loads(_latest(folder, "front.json").read_text())
        cells = read_cells(folder)
        url = config["settings"].get("storage") or f"sqlite:///{(folder / studies.STUDY_DB).resolve()}"
        study = optuna.load_study(study_name=roles["study"], storage=studies.open_storage(url))
        again = cells[cells["tune_phase"] == "front"].drop_duplicates("variant", keep="last").set_index("variant")
        ref = 100 * float(again.loc["fp32"]["accuracy"])
        return Run(folder, config, roles, cells, study.get_trials(deepcopy=False), again, ref)

    def ok(self, name: str) -> bool:
        return name in self.again.index and self.again.loc[name]["status"] == "ok"

    def accuracy(self, name: str) -> float:
        return 100 * float(self.again.loc[name]["accuracy"])

    def p50(self, name: str) -> float:
        return float(self.again.loc[name]["latency_p50_ms"])

    def params(self, name: str) -> dict[str, Any] | None:
        number = self.roles["front_trials"].get(name)
        found = [t for t in self.trials if t.number == number]
        return found[0].params if found else None

    def fastest_hand_written(self) -> str | None:
        """The fastest re-measured hand-written recipe (fp32, int8, the best one) within the drop."""
        within = [b for b in self.roles["baselines"] if self.ok(b) and self.accuracy(b) >= self.ref - DROP]
        return min(within, key=self.p50, default=None)


def results_table(run: Run) -> list[str]:
    fastest = run.fastest_hand_written()
    lines = [
        "| recipe | role | accuracy (Δ pts) | p50 [95% CI] | speedup vs fp32 | vs fastest hand-written within 1 pt |",
        "|---|---|---|---|---|---|",
    ]
    for name in [*run.roles["baselines"], *run.roles["front"]]:
        role = "front" if name in run.roles["front"] else "baseline"
        if name in run.roles["front_as_baselines"]:
            role += " (also on the front)"
        if name == run.roles.get("best_hand_written"):
            role += "; best hand-written meeting the constraint (trial protocol)"
        if not run.ok(name):
            status = run.again.loc[name]["status"] if name in run.again.index else "not measured"
            lines.append(f"| {name} | {role} | {status} | | | |")
            continue
        row = run.again.loc[name]
        acc = run.accuracy(name)
        vs_hand = ""
        if fastest is not None:
            speed, apart = _apart_and_faster(row, run.again.loc[fastest])
            vs_hand = f"{speed:.2f}×" + (" (CIs apart)" if apart else "")
        speedup = run.p50("fp32") / run.p50(name)
        lines.append(
            f"| {name} | {role} | {acc:.1f}% ({acc - run.ref:+.1f}) | {_ms(row)} | {speedup:.2f}× | {vs_hand} |"
        )
    return lines


def choices_table(run: Run) -> list[str]:
    lines = [
        "| front member | quantization | fp32 layers kept | channel pruning | recovery |",
        "|---|---|---|---|---|",
    ]
    for name in run.roles["front_trials"]:
        params = run.params(name)
        if params is not None:
            lines.append(f"| {name} | {_choices(params)} |")
    return lines


def verdict(run: Run) -> str:
    """Whether the Done-when holds, from the re-measured rows (and the trial-protocol rows of every
    hand-written recipe for dominance, since only the best of them is re-measured)."""
    fastest = run.fastest_hand_written()
    winners = []
    for name in run.roles["front"]:
        if fastest is None or not run.ok(name) or run.accuracy(name) < run.ref - DROP:
            continue
        speed, apart = _apart_and_faster(run.again.loc[name], run.again.loc[fastest])
        if speed >= SPEEDUP and apart:
            winners.append(f"{name} ({speed:.2f}×)")
    members = [m for m in run.roles["front"] + run.roles["front_as_baselines"] if run.ok(m)]
    dominated = [
        f"{b} dominates {m}"
        for m in members
        for b in run.roles["baselines"]
        if b != m and run.ok(b) and _dominates(run.again.loc[b], run.again.loc[m])
    ]
    trial_rows = run.cells[run.cells["tune_phase"] == "trial"]
    hand = run.cells[(run.cells["tune_phase"] == "hand-written") & (run.cells["status"] == "ok")]
    for name, number in run.roles["front_trials"].items():
        mine = trial_rows[(trial_rows["tune_trial"] == number) & (trial_rows["status"] == "ok")]
        if mine.empty:
            continue
        dominated += [
            f"{row['variant']} dominates {name} (trial protocol)"
            for _, row in hand.iterrows()
            if _dominates(row, mine.iloc[-1])
        ]
    holds = bool(winners) and not dominated
    return (
        f"**Done when: {'met' if holds else 'not met'}.** Fastest hand-written recipe within {DROP:g} point"
        f" (re-measured): {fastest or 'none'}. Front members within {DROP:g} point and ≥ {SPEEDUP}× faster"
        f" with the CIs apart: {', '.join(winners) or 'none'}. Hand-written recipes dominating a front member:"
        f" {', '.join(dominated) or 'none'}."
    )


def cpu_note(run: Run) -> str:
    """Which int8 instructions this CPU has, what int8 bought in this run, and what the fastest
    member chose."""
    flags = set(_cpu_flags())
    has = {f: "yes" if f in flags else "no" for f in ("avx2", "avx512_vnni", "avx_vnni")}
    note = f"This CPU: AVX2 {has['avx2']}, AVX-512 VNNI {has['avx512_vnni']}, AVX-VNNI {has['avx_vnni']}."
    if run.ok("int8"):
        speed = run.p50("fp32") / run.p50("int8")
        note += f" Static int8 ran at {speed:.2f}× fp32's p50 in this run: quantization " + (
            "pays here, so a policy can take int8 broadly."
            if speed >= 1.1
            else "alone does not pay here, so speed must come from removing work (channels) or where int8 helps."
        )
    fastest = min((m for m in run.roles["front"] if run.ok(m)), key=run.p50, default=None)
    params = run.params(fastest) if fastest is not None else None
    if params is not None:
        note += f" The fastest front member, {fastest}, chose: {_choices(params).replace(' | ', '; ')}."
    return note


def ours(run: Run) -> str:
    """This run's result in the terms of the paragraph above."""
    fastest = run.fastest_hand_written()
    members = [m for m in run.roles["front"] if run.ok(m) and run.accuracy(m) >= run.ref - DROP]
    if fastest is None or not members:
        return "This run: no front member of its own within the accuracy drop to compare."
    best = min(members, key=run.p50)
    return (
        f"This run: {best} at {run.accuracy(best) - run.ref:+.1f} point, {run.p50(fastest) / run.p50(best):.2f}× the"
        f" fastest hand-written recipe within {DROP:g} point ({fastest}) and {run.p50('fp32') / run.p50(best):.2f}×"
        " fp32 (p50, re-measured together on this CPU)."
    )


def section(folder: Path) -> str:
    run = Run.load(folder)
    settings = run.config["settings"]
    measured = [t for t in run.trials if studies.measured(t)]
    states = pd.Series([t.state.name for t in measured], dtype=object).value_counts().to_dict()
    repeats = sum(1 for t in run.trials if "duplicate_of" in t.user_attrs)
    threads = sorted({int(t) for t in run.again["threads"].dropna()})
    budget = f"{settings['time_s'] / 60:g}m" if settings.get("time_s") else f"{settings.get('trials')} trials"
    hand = run.cells[run.cells["tune_phase"] == "hand-written"]["variant"].drop_duplicates()
    model = run.config["model"]
    space = "; ".join(f"{k} ∈ {{{', '.join(map(str, v))}}}" for k, v in run.config["space"].items())
    return "\n".join(
        [
            f"Command: `pocketbench tune -m {model} -d {','.join(run.config['devices'])} --max-accuracy-drop"
            f" {settings['max_accuracy_drop']:g} --time {budget}` (run `{folder.name}`; again with"
            f" `POCKETBENCH_TUNE_MODEL={model} POCKETBENCH_TUNE_TIME={budget} just benchmark tune`, or"
            f" `python benchmarks/tune.py {folder.name}` from the saved run).",
            "",
            f"Budget: {budget} for the whole command (hand-written recipes, search and front). Runtime threads:"
            f" {', '.join(map(str, threads)) or 'the device policy'}"
            f" (the cores the process may use). Trials with a row: {len(measured)} — completed"
            f" {states.get('COMPLETE', 0)}, pruned early {states.get('PRUNED', 0)}, failed {states.get('FAIL', 0)};"
            f" {repeats} proposals repeated a finished recipe (answered from it, not run). Hand-written recipes"
            f" measured with the trial protocol first: {', '.join(map(str, hand))}. Space searched: {space}.",
            "",
            f"fp32 held-out accuracy {run.ref:.1f}%; the floor is {run.ref - DROP:.1f}%. The front and the"
            " baselines below were measured together, interleaved, with the full default protocol in the same run.",
            "",
            *results_table(run),
            "",
            "What the front's recipes chose:",
            "",
            *choices_table(run),
            "",
            cpu_note(run),
            "",
            verdict(run),
            "",
            *(f"- {note}" for note in run.roles.get("notes", [])),
            "",
            f"{RELATED} {ours(run)}",
        ]
    )


def _cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    return next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])


def main() -> None:
    saved = [RESULTS / a for a in sys.argv[1:] if (RESULTS / a / "manifest.json").is_file()]
    load_before = os.getloadavg()[0]
    folder = saved[0] if saved else run_search()
    note = load_note(load_before, os.getloadavg()[0]) if not saved else ""
    model = json.loads((folder / "manifest.json").read_text())["config"]["model"]
    title = f"Search with the device in the loop: pocketbench tune on {model}"
    write_section("tune", title, f"{note}\n\n{section(folder)}")
    print("wrote the tune section of benchmarks/RESULTS.md", flush=True)


if __name__ == "__main__":
    main()
