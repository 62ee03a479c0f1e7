"""The report's figures, drawn with matplotlib (object API, no pyplot state) as PNG bytes.

Each function takes tidy rows and returns `(title, png)` pairs, or nothing when the data it
needs is absent (no accuracy, no energy column, a single run of history).
"""

from __future__ import annotations

import io

import pandas as pd
from matplotlib.figure import Figure

from pocketbench.results.cell_status import MEASURED, CellStatus

Plot = tuple[str, bytes]
CURRENT, BASELINE, FRONT = "#1f77b4", "#aaaaaa", "#d62728"


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _ok(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"].isin(MEASURED)]


def _samples(value: object) -> list[float]:
    """A cell's raw latency samples (none when it measured nothing)."""
    return [] if value is None or isinstance(value, float) else [float(v) for v in value]  # type: ignore[attr-defined]


def latency_distributions(frame: pd.DataFrame, baseline: pd.DataFrame | None = None) -> list[Plot]:
    """Per model: a box of the raw latency samples of each variant (baseline's beside it in grey)."""
    plots = []
    measured = _ok(frame)
    measured = measured.loc[measured["latency_samples_ms"].map(lambda v: len(_samples(v)) > 0).astype(bool)]
    # Each cell's baseline samples: of the baseline's last measured row of that cell, looked up once.
    earlier = _ok(baseline) if baseline is not None else None
    cells = ["model", "variant", "device", "latency_samples_ms"]
    baselines = {} if earlier is None else {tuple(r[:3]): r[3] for r in earlier[cells].itertuples(index=False)}
    for model, group in measured.groupby("model", sort=False):
        fig = Figure(figsize=(1.6 + 1.3 * len(group), 3.6))
        ax = fig.subplots()
        positions, data, colors, labels = [], [], [], []
        for i, (_, row) in enumerate(group.iterrows()):
            key = (model, row["variant"], row["device"])
            base = _samples(baselines[key]) if key in baselines else None
            if base:
                positions.append(3 * i)
                data.append(base)
                colors.append(BASELINE)
            positions.append(3 * i + 1)
            data.append(_samples(row["latency_samples_ms"]))
            colors.append(CURRENT)
            labels.append((3 * i + 0.5 if base else 3 * i + 1, str(row["variant"])))
        boxes = ax.boxplot(data, positions=positions, widths=0.8, patch_artist=True, showfliers=True)
        for patch, color in zip(boxes["boxes"], colors, strict=True):
            patch.set_facecolor(color)
        ax.set_xticks([x for x, _ in labels], [name for _, name in labels])
        ax.set_yscale("log")  # a few slow outliers must not flatten every box
        ax.set_ylabel("latency per inference (ms, log scale)")
        ax.set_title(f"{model}: latency samples" + (" (grey: baseline)" if BASELINE in colors else ""))
        ax.grid(axis="y", alpha=0.3)
        plots.append((f"{model} latency distribution", _png(fig)))
    return plots


def pareto(frame: pd.DataFrame, column: str, label: str, higher_is_better: bool, scale: float = 1.0) -> list[Plot]:
    """Per model: `column` (× scale) against p50 latency; the Pareto front (variants no other
    variant beats on both) ringed and joined in red."""
    plots = []
    ok = _ok(frame).dropna(subset=[column, "latency_p50_ms"])
    for model, group in ok.groupby("model", sort=False):
        fig = Figure(figsize=(5.2, 3.6))
        ax = fig.subplots()
        ys = group[column].astype(float) * scale
        ax.scatter(group["latency_p50_ms"], ys, color=CURRENT, zorder=3)
        for (_, row), y in zip(group.iterrows(), ys, strict=True):
            ax.annotate(
                str(row["variant"]), (row["latency_p50_ms"], y), textcoords="offset points", xytext=(4, 4), fontsize=8
            )
        front = pareto_front(group, column, higher_is_better)
        ax.plot(
            front["latency_p50_ms"],
            front[column].astype(float) * scale,
            color=FRONT,
            drawstyle="steps-post",
            marker="o",
            markersize=11,
            markerfacecolor="none",
            label="Pareto front",
        )
        ax.set_xlabel("p50 latency (ms)")
        ax.set_ylabel(label)
        ax.set_title(f"{model}: {label} vs latency")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        plots.append((f"{model} {label} vs latency", _png(fig)))
    return plots


def pareto_front(frame: pd.DataFrame, column: str, higher_is_better: bool) -> pd.DataFrame:
    """Rows not dominated by a faster-or-equal row that is at least as good in `column`."""
    ordered = frame.sort_values(["latency_p50_ms", column], ascending=[True, not higher_is_better])
    keep, best = [], None
    for index, value in ordered[column].items():
        if best is None or (value > best if higher_is_better else value < best):
            keep.append(index)
            best = value
    return ordered.loc[keep]


def bars(frame: pd.DataFrame, columns: dict[str, tuple[str, float]], title: str) -> list[Plot]:
    """Per model: one bar chart per present column (name → (axis label, scale)), side by side,
    each on its own scale (peak RSS and planned memory differ by orders of magnitude)."""
    ok = _ok(frame)
    present = {c: spec for c, spec in columns.items() if c in ok and ok[c].notna().any()}
    plots = []
    for model, group in ok.groupby("model", sort=False):
        if not present:
            break
        fig = Figure(figsize=(0.6 + (1.2 + 0.9 * len(group)) * len(present), 3.4))
        axes = fig.subplots(1, len(present), squeeze=False)[0]
        for ax, (column, (label, scale)) in zip(axes, present.items(), strict=True):
            ax.bar(list(group["variant"]), group[column].astype(float) * scale, color=CURRENT)
            ax.set_ylabel(label)
            ax.set_title(column, fontsize=9)
            ax.tick_params(axis="x", labelsize=8, rotation=20)
            ax.grid(axis="y", alpha=0.3)
        fig.suptitle(f"{model}: {title}")
        plots.append((f"{model} {title}", _png(fig)))
    return plots


# What the trend figures read from history: one p50 per cell and run, never the raw samples.
TREND_COLUMNS = ["run_id", "model", "variant", "device", "status", "attempt", "latency_p50_ms"]
MAX_TICKS = 12  # run labels on a trend's x axis; a year of nights shows every 30th or so


def trends(history: pd.DataFrame) -> list[Plot]:
    """Per device: p50 latency of each model × variant over the runs (needs two runs or more)."""
    ok = _ok(history).dropna(subset=["latency_p50_ms"])
    plots = []
    for device, group in ok.groupby("device", sort=False):
        if group["run_id"].nunique() < 2:
            continue
        fig = Figure(figsize=(6.4, 3.8))
        ax = fig.subplots()
        runs = sorted(group["run_id"].unique())
        position = {run: i for i, run in enumerate(runs)}
        for (model, variant), series in group.groupby(["model", "variant"], sort=False):
            series = series.drop_duplicates("run_id", keep="last")
            many = len(series) > 60  # markers would merge into a thick line
            ax.plot(
                series["run_id"].map(position),
                series["latency_p50_ms"],
                marker="" if many else "o",
                label=f"{model} {variant}",
            )
        ticks = list(range(0, len(runs), max(1, -(-len(runs) // MAX_TICKS))))
        ax.set_xticks(ticks, [runs[i][:15] for i in ticks], rotation=30, ha="right", fontsize=7)
        ax.set_ylabel("p50 latency (ms)")
        ax.set_yscale("log")
        ax.set_title(f"{device}: p50 latency over {len(runs)} runs")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
        plots.append((f"{device} trend", _png(fig)))
    return plots


def search(frame: pd.DataFrame) -> list[Plot]:
    """A search run (`pocketbench tune`): every measured trial (short protocol) as accuracy vs
    p50, with the front and the baselines measured again with the full protocol drawn over
    them, the front joined in red."""
    if "tune_phase" not in frame:
        return []
    plots = []
    ok = _ok(frame).dropna(subset=["accuracy", "latency_p50_ms"])
    for model, group in ok.groupby("model", sort=False):
        trials = group[group["tune_phase"] == "trial"]
        again = group[group["tune_phase"] == "front"].drop_duplicates(["variant", "device"], keep="last")
        if trials.empty:
            continue
        fig = Figure(figsize=(6.4, 4.2))
        ax = fig.subplots()
        ax.scatter(
            trials["latency_p50_ms"],
            100 * trials["accuracy"],
            color=CURRENT,
            alpha=0.5,
            zorder=2,
            label=f"trials ({len(trials)}, short protocol)",
        )
        front = again[again["variant"].astype(str).str.startswith("tuned-")].sort_values("latency_p50_ms")
        baselines = again[~again.index.isin(front.index)]
        ax.plot(
            front["latency_p50_ms"],
            100 * front["accuracy"],
            color=FRONT,
            marker="o",
            markersize=9,
            drawstyle="steps-post",
            zorder=4,
            label="front, re-measured",
        )
        ax.scatter(
            baselines["latency_p50_ms"],
            100 * baselines["accuracy"],
            color=BASELINE,
            marker="s",
            s=60,
            zorder=3,
            label="baselines, re-measured",
        )
        for _, row in again.iterrows():
            ax.annotate(
                str(row["variant"]),
                (row["latency_p50_ms"], 100 * row["accuracy"]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=7,
            )
        pruned = int(
            (frame[(frame["model"] == model) & (frame["tune_phase"] == "trial")]["status"] == CellStatus.PRUNED).sum()
        )
        ax.set_xlabel("p50 latency (ms)")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"{model}: search ({pruned} trials pruned before measuring)")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        plots.append((f"{model} search: trials, front and baselines", _png(fig)))
    return plots
